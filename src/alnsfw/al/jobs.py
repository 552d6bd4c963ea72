"""One Snakemake job = one call here: read the inputs, build the learner, run, write the outputs.

The functions take plain paths and the config sections the rule passes as params, so they run the
same from scripts/active_learning.py, from a test, or from a shell. `build` makes the learner;
by default it is alnsfw.model.learner.build_learner, and tests pass a NumPy fake.

Checkpoints live in `<run folder>/checkpoint/` beside the outputs (not a declared output, so a
killed job keeps it). It is removed once the outputs are written: a finished run is described by
its outputs, a rerun (outputs deleted, config changed) must start afresh anyway, and keeping one
per run (75 runs in the paper's grid) would only use disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from alnsfw.al.baseline import baseline_patience, run_full_supervision
from alnsfw.al.checkpoint import CheckpointStore
from alnsfw.al.loop import LoopModel, LoopSettings, Split, run_active_learning
from alnsfw.al.seeding import RunSeeds, seed_python_numpy
from alnsfw.al.strategies import VIDEO_IDS, get_strategy
from alnsfw.io import write_csv
from alnsfw.video_eval import VideoIndex, VideoSettings

log = logging.getLogger(__name__)

LearnerFactory = Callable[[dict[str, Any], str, str | None, str | None, int], LoopModel]
CHECKPOINT_DIR = "checkpoint"


def build_network_learner(
    config: dict[str, Any], keyframes: str, features: str | None, bank: str | None, seed: int
) -> LoopModel:
    """The ResNet50V2 learner (alnsfw.model.learner.build_learner), seeded with `seed`.

    Selects `compute.backend` before Keras is imported (or verifies it, if it already is), and
    build_learner then sets threads, seeds and determinism itself, so nothing Keras-related may
    run before it. Imported lazily so the loop, its tests and the fake learner never load Keras.
    """
    from alnsfw.model.backend import select_from_config

    select_from_config(config)
    from alnsfw.model.learner import build_learner

    return build_learner(config, keyframes, features, bank, seed)


def read_labels(keyframes: str) -> np.ndarray:
    """Per-frame labels (1 = porn) of all keyframe rows: the annotator's answers and test truth."""
    with h5py.File(keyframes, "r") as h5:
        return np.asarray(h5["label"][:], dtype=np.int8)


def read_video_index(keyframes: str, config: dict[str, Any]) -> VideoIndex | None:
    """Video name and video label of every keyframe row, for the video-level columns.

    None (with a warning) for a keyframes.h5 without them (the tests' tiny NumPy datasets);
    the workflow's keyframes.h5 always has them. Settings: config section `video`.
    """
    with h5py.File(keyframes, "r") as h5:
        if "video" not in h5 or "video_label" not in h5:
            log.warning("%s has no video / video_label: video-level columns left empty", keyframes)
            return None
        video = np.asarray(h5["video"].asstr()[:], dtype=object)
        video_label = np.asarray(h5["video_label"][:], dtype=np.int64)
    return VideoIndex(video, video_label, VideoSettings.from_config(config))


def save_final_weights(learner: Any, outputs: Mapping[str, str]) -> None:  # noqa: ANN401
    """The trained weights of the finished run, when the rule asks for them (outputs weights)."""
    if outputs.get("weights"):
        learner.save_weights(outputs["weights"])


def read_video_ids(keyframes: str) -> np.ndarray:
    """An integer id per keyframe row, one per video (dataset `video`), for al.max_per_video
    and strategies that declare video ids; ids only compare equal within this file."""
    with h5py.File(keyframes, "r") as h5:
        if "video" not in h5:
            raise ValueError(
                f"{keyframes} has no dataset 'video', which al.max_per_video needs; rebuild it "
                "(rule merge_keyframes) or set al.max_per_video: null"
            )
        names = h5["video"].asstr()[:] if h5["video"].dtype.kind in "OS" else h5["video"][:]
    return np.unique(np.asarray(names), return_inverse=True)[1].astype(np.int64)


def read_split(path: str) -> Split:
    """The split json of a fold and seed."""
    return Split.from_json(json.loads(Path(path).read_text()))


def run_fingerprint(config: dict[str, Any], identity: dict[str, Any], inputs: list[str]) -> str:
    """Hash of the settings, the run's identity and the inputs' size and mtime.

    A checkpoint is only resumed when this matches, so a changed config or a regenerated input
    (which makes Snakemake rerun the job) starts the run afresh instead of mixing two setups.
    """
    files = []
    for path in inputs:
        stat = os.stat(path)
        files.append([str(path), stat.st_size, stat.st_mtime_ns])
    blob = json.dumps(
        {"config": config, "identity": identity, "inputs": files}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def active_learning_job(
    keyframes: str,
    split: str,
    outputs: Mapping[str, str],
    config: dict[str, Any],
    fold: int,
    seed: int,
    strategy: str,
    features: str | None = None,
    bank: str | None = None,
    build: LearnerFactory = build_network_learner,
    keep_checkpoint: bool = False,
) -> None:
    """Run (or resume) active-learning run (fold, seed, strategy) and write its four CSVs.

    `outputs` has keys cycles, queries, predictions, and optionally stopping and weights;
    `config` holds at least the `al` and `training` sections plus whatever `build` needs
    (model, compute). `keep_checkpoint`: leave the last checkpoint after the outputs are
    written (`active_learning_runs` removes it once every run of its job is done).
    """
    seeds = RunSeeds.for_run(seed, fold, strategy)
    seed_python_numpy(seeds.learner)
    inputs = [p for p in (keyframes, split, features, bank) if p]
    identity = {"fold": fold, "seed": seed, "strategy": strategy}
    store = CheckpointStore(
        Path(outputs["cycles"]).parent / CHECKPOINT_DIR,
        run_fingerprint(config, identity, inputs),
    )
    log.info("active learning fold %d seed %d strategy %s, seeds %s", fold, seed, strategy, seeds)
    learner = build(config, keyframes, features, bank, seeds.learner)
    settings = LoopSettings.from_config(config)
    needs_videos = (
        settings.max_per_video is not None
        or settings.unit != "keyframe"
        or VIDEO_IDS in get_strategy(strategy).needs
    )
    result = run_active_learning(
        learner,
        read_split(split),
        read_labels(keyframes),
        strategy,
        settings,
        seeds,
        store,
        videos=read_video_ids(keyframes) if needs_videos else None,
        video_index=read_video_index(keyframes, config),
    )
    save_final_weights(learner, outputs)
    write_csv(outputs["cycles"], result.cycles)
    write_csv(outputs["queries"], result.queries)
    write_csv(outputs["predictions"], result.predictions)
    if outputs.get("stopping"):  # optional, like weights: benchmarks and old callers omit it
        write_csv(outputs["stopping"], result.stopping)
    if not keep_checkpoint:
        store.remove()


def fold_seed_runs(
    runs: Sequence[Mapping[str, Any]],
    keyframes: str,
    split: str,
    fold: int,
    seed: int,
    features: str | None = None,
    bank: str | None = None,
    baseline: Mapping[str, Any] | None = None,
    build: LearnerFactory = build_network_learner,
    call: Callable[..., Any] | None = None,
) -> None:
    """Every run of one fold and seed, one after another in this process (compute.batch_runs):
    the full-supervision `baseline` first (the exports wait on it), then each active-learning run.

    Why: a model job pays a Python start, the TensorFlow import and the network's build and first
    graph traces, about 8 CPU-seconds, against 10 s for a demo run itself. All runs of a fold and
    seed start from the same network (RunSeeds: the learner seed depends on fold and seed only),
    so the network is built once and each later run starts from its saved initial state
    (`ReusedLearners`). The outputs are the same as from separate jobs, to the last digit
    (tests/test_al_learner.py and the smoke workflow's test compare them). Each run logs to its
    own file.

    `runs`: one mapping per run with `strategy`, `outputs` (as active_learning_job's), `config`
    and `log` (a path or None); `baseline` the same without `strategy` (full_supervision_job's
    outputs). `call(func, log, **kwargs)` runs each (the scripts pass alnsfw.entry.run_logged,
    which logs to `log`; default: a plain call). A run's last checkpoint stays until every run
    has written its outputs: Snakemake deletes all outputs of a killed job before it reruns it,
    and the finished runs then resume from their last cycle instead of training again.
    """
    call = call or _plain_call
    reuse = ReusedLearners(build)
    inputs = dict(keyframes=keyframes, split=split, fold=fold, seed=seed)
    inputs |= dict(features=features, bank=bank, build=reuse)
    if baseline is not None:
        call(
            full_supervision_job,
            baseline.get("log"),
            outputs=baseline["outputs"],
            config=baseline["config"],
            **inputs,
        )
    stores = []
    for run in runs:
        call(
            active_learning_job,
            run.get("log"),
            outputs=run["outputs"],
            config=run["config"],
            strategy=run["strategy"],
            keep_checkpoint=True,
            **inputs,
        )
        stores.append(Path(run["outputs"]["cycles"]).parent / CHECKPOINT_DIR)
    for directory in stores:
        CheckpointStore(directory, "").remove()


class ReusedLearners:
    """A LearnerFactory that builds each distinct learner once and hands it out again, restarted.

    Two requests are the same learner when the model, training and compute settings, the
    input files and the seed are equal; a repeated request gets the learner built first, put
    back to the state it had when built (`restart`: weights, optimizer state, BatchNorm
    statistics, dropout seed state, RNG), so the run is the one a fresh build would give, and its
    graph traces are reused. Learners without `restart` (the tests' NumPy fakes) are built anew.
    """

    KEYS = ("model", "training", "compute")

    def __init__(self, build: LearnerFactory) -> None:
        self.build = build
        self._built: dict[str, LoopModel] = {}

    def __call__(
        self,
        config: dict[str, Any],
        keyframes: str,
        features: str | None,
        bank: str | None,
        seed: int,
    ) -> LoopModel:
        """The learner `build(config, keyframes, features, bank, seed)` would return."""
        key = json.dumps(
            [{k: config.get(k) for k in self.KEYS}, keyframes, features, bank, int(seed)],
            sort_keys=True,
            default=str,
        )
        learner = self._built.get(key)
        if learner is not None:
            learner.restart()  # type: ignore[attr-defined]
            log.info("learner reused from this job's earlier run, restarted from its build state")
            return learner
        learner = self.build(config, keyframes, features, bank, seed)
        if hasattr(learner, "restart"):
            self._built[key] = learner
        return learner


def _plain_call(func: Callable[..., Any], log_file: str | None, **kwargs: Any) -> Any:  # noqa: ANN401, ARG001
    return func(**kwargs)


def full_supervision_job(
    keyframes: str,
    split: str,
    outputs: Mapping[str, str],
    config: dict[str, Any],
    fold: int,
    seed: int,
    features: str | None = None,
    bank: str | None = None,
    build: LearnerFactory = build_network_learner,
) -> None:
    """Train the baseline of (fold, seed) on 100% of the pool; write metrics, history, predictions.

    `config` holds at least `baseline` and `training` plus whatever `build` needs.
    """
    seeds = RunSeeds.for_run(seed, fold, "full")
    seed_python_numpy(seeds.learner)
    learner = build(config, keyframes, features, bank, seeds.learner)
    result = run_full_supervision(
        learner,
        read_split(split),
        read_labels(keyframes),
        epochs=int(config["baseline"]["epochs"]),
        patience=baseline_patience(config),
        video_index=read_video_index(keyframes, config),
    )
    save_final_weights(learner, outputs)
    write_csv(outputs["metrics"], result.metrics)
    write_csv(outputs["history"], result.history)
    write_csv(outputs["predictions"], result.predictions)
