"""The active-learning loop and baseline with the real ResNet50V2 Learner on tiny smoke data.

Feature-cache + bank mode (the demo's default) at 32 px with a He-normal trunk: the run builds the
real network, trains its top, and checkpoints real weights, optimizer and RNG state. The
kill-and-resume check kills a real process with SIGKILL after its first checkpoint. Also runnable
as a script (the process that gets killed).
"""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from alnsfw.al.jobs import (
    active_learning_job,
    build_network_learner,
    fold_seed_runs,
    full_supervision_job,
)
from alnsfw.al.loop import TIMING_COLUMNS
from alnsfw.schema import schema_defaults

pytest.importorskip("alnsfw.model.learner")

CONFIG = {
    "al": {
        "initial_fraction": 0.2,
        "query_size": 10,
        "warm_start": True,
        "mc_samples": 20,
        "max_per_video": None,
    },
    "baseline": {"epochs": 3, "patience": None},
    "model": {
        "weights": "he_normal",
        "weights_seed": 0,
        "input_size": 32,
        "trainable_from": "conv5_block3_1",
        "head": {"batchnorm": True, "dense": [16], "dropout": 0.2},
    },
    "training": {
        "learning_rate": 0.001,
        "batch_size": 16,
        "max_epochs": 2,
        "patience": 1,
        "augment": "bank",
        "bank_views": 2,
        "augmentation": schema_defaults("training", "augmentation"),
    },
    "compute": {
        "feature_cache": True,
        "feature_dtype": "float16",
        "jit_compile": False,
        "threads": 1,
    },
}
N, SIZE = 72, 32
FILES = {"keyframes": "h5", "split": "json", "features": "h5", "bank": "h5"}


def smoke_paths(folder: Path) -> dict[str, str]:
    """Paths of the smoke files in `folder`."""
    return {name: str(Path(folder) / f"{name}.{ext}") for name, ext in FILES.items()}


def make_smoke(folder: Path) -> dict[str, str]:
    """keyframes.h5 (images, label), split.json, features.h5 and bank.h5 in `folder`."""
    from alnsfw.model.features import compute_bank, compute_features

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = (rng.random(N) < 0.6).astype(np.int8)
    images = rng.integers(0, 80, (N, SIZE, SIZE, 3)).astype(np.uint8)
    for i in np.flatnonzero(labels):  # "porn": a large warm blob somewhere
        y, x = rng.integers(0, SIZE // 2, 2)
        images[i, y : y + SIZE // 2, x : x + SIZE // 2] = (220, 150, 120)
    paths = smoke_paths(folder)
    with h5py.File(paths["keyframes"], "w") as h5:
        h5["images"] = images
        h5["label"] = labels
    rows = rng.permutation(N)
    parts = {"pool": rows[:42], "val": rows[42:54], "test": rows[54:]}
    split = {name: sorted(part.tolist()) for name, part in parts.items()}
    Path(paths["split"]).write_text(json.dumps(split))
    compute_features(paths["keyframes"], paths["features"], CONFIG)
    compute_bank(paths["keyframes"], paths["bank"], CONFIG)
    return paths


def slowed(sleep: float):
    """build_network_learner whose fit first sleeps, so a kill lands between checkpoints."""

    def build(*args):
        learner = build_network_learner(*args)
        fit = learner.fit

        def slow_fit(*a, **k):
            time.sleep(sleep)
            return fit(*a, **k)

        learner.fit = slow_fit
        return learner

    return build


def run(paths: dict[str, str], run_dir: Path, strategy: str, sleep: float = 0.0) -> None:
    active_learning_job(
        keyframes=paths["keyframes"],
        split=paths["split"],
        outputs={k: str(run_dir / f"{k}.csv") for k in ("cycles", "queries", "predictions")},
        config=CONFIG,
        fold=0,
        seed=0,
        strategy=strategy,
        features=paths["features"],
        bank=paths["bank"],
        build=slowed(sleep) if sleep else build_network_learner,
    )


def start(folder: Path, run_dir: Path, sleep: float) -> subprocess.Popen:
    # This checkout's src first (the venv may hold an editable install of another checkout).
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, __file__, str(folder), str(run_dir), "entropy", str(sleep)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smoke")
    return folder, make_smoke(folder)


def cycles(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "cycles.csv").drop(columns=TIMING_COLUMNS)


def max_relative_difference(a: Path, b: Path) -> dict[str, float]:
    """Per file, the largest |x - y| / max(|x|, tiny) over the float columns of two run folders."""
    out = {}
    for name in ("cycles", "queries", "predictions"):
        x, y = (pd.read_csv(d / f"{name}.csv") for d in (a, b))
        cols = [c for c in x.columns if x[c].dtype.kind == "f" and c not in TIMING_COLUMNS]
        diff = (x[cols] - y[cols]).abs() / x[cols].abs().clip(lower=1e-12)
        out[name] = float(np.nanmax(diff.to_numpy())) if cols else 0.0
    return out


def test_real_learner_kill_and_resume(smoke, tmp_path):
    """Uninterrupted here; killed and resumed in two other processes; same CSVs."""
    folder, paths = smoke
    run(paths, tmp_path / "whole", "entropy")
    killed_dir = tmp_path / "killed"
    killed = start(folder, killed_dir, 0.5)
    first = killed_dir / "checkpoint" / "state-0000.json.sha256"
    deadline = time.monotonic() + 240
    while not first.exists():
        assert killed.poll() is None, killed.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    committed = sorted((killed_dir / "checkpoint").glob("state-*.json.sha256"))[-1]
    saved = json.loads(committed.with_suffix("").read_text())
    assert not saved["finished"] and not (killed_dir / "cycles.csv").exists()

    resumed = start(folder, killed_dir, 0.0)
    output = resumed.communicate(timeout=400)[0].decode()
    assert resumed.returncode == 0, output[-3000:]
    assert f"resuming after cycle {saved['next_cycle'] - 1}" in output
    print(
        "resume: largest relative float difference",
        max_relative_difference(tmp_path / "whole", killed_dir),
    )
    pd.testing.assert_frame_equal(cycles(tmp_path / "whole"), cycles(killed_dir))
    for name in ("queries", "predictions"):
        assert (tmp_path / "whole" / f"{name}.csv").read_bytes() == (
            killed_dir / f"{name}.csv"
        ).read_bytes()
    frame = pd.read_csv(tmp_path / "whole" / "cycles.csv")
    assert frame["n_labelled"].tolist() == [8, 18, 28, 38, 42]
    assert frame["pct_labelled"].iloc[-1] == 100.0
    assert not (killed_dir / "checkpoint").exists()


def baseline_job(paths: dict[str, str], out: Path, **kwargs) -> dict[str, str]:
    outputs = {k: str(out / f"{k}.csv") for k in ("metrics", "history", "predictions")}
    full_supervision_job(
        keyframes=paths["keyframes"],
        split=paths["split"],
        outputs=outputs,
        config=CONFIG,
        fold=0,
        seed=0,
        features=paths["features"],
        bank=paths["bank"],
        **kwargs,
    )
    return outputs


def test_real_learner_baseline_and_one_process_for_all_runs(smoke, tmp_path):
    """The baseline alone, and compute.batch_runs' fold_seed_runs: the baseline and a strategy
    in one process, the network built once and restarted between runs, give the same files to
    the last digit as separate jobs (timing columns aside)."""
    _, paths = smoke
    outputs = baseline_job(paths, tmp_path)
    metrics = pd.read_csv(outputs["metrics"])
    history = pd.read_csv(outputs["history"])
    assert metrics["n_labelled"].iloc[0] == 42
    assert 1 <= metrics["epochs"].iloc[0] == len(history) <= 3
    assert history["best"].sum() == 1

    strategies = ("random",)  # one is enough: the learner is restarted after the baseline
    for strategy in strategies:
        run(paths, tmp_path / strategy, strategy)
    built = []

    def counted(*args):
        built.append(args[-1])
        return build_network_learner(*args)

    batch = tmp_path / "batch"
    names = ("cycles", "queries", "predictions")
    fold_seed_runs(
        [
            {
                "strategy": s,
                "outputs": {k: str(batch / s / f"{k}.csv") for k in names},
                "config": CONFIG,
                "log": None,
            }
            for s in strategies
        ],
        keyframes=paths["keyframes"],
        split=paths["split"],
        fold=0,
        seed=0,
        features=paths["features"],
        bank=paths["bank"],
        baseline={
            "outputs": {
                k: str(batch / "full" / f"{k}.csv") for k in ("metrics", "history", "predictions")
            },
            "config": CONFIG,
        },
        build=counted,
    )
    assert len(built) == 1, "one network for the baseline and the strategy"
    for strategy in strategies:
        for name in names:
            alone = pd.read_csv(tmp_path / strategy / f"{name}.csv")
            together = pd.read_csv(batch / strategy / f"{name}.csv")
            keep = [c for c in alone.columns if c not in TIMING_COLUMNS]
            pd.testing.assert_frame_equal(together[keep], alone[keep], check_exact=True)
        assert not (batch / strategy / "checkpoint").exists()
    for name in ("history", "predictions"):
        assert (batch / "full" / f"{name}.csv").read_bytes() == Path(outputs[name]).read_bytes()


if __name__ == "__main__":
    # python tests/test_al_learner.py <smoke folder> <run folder> <strategy> <sleep seconds>
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    smoke_dir, run_dir, strategy, sleep = sys.argv[1:5]
    run(smoke_paths(Path(smoke_dir)), Path(run_dir), strategy, float(sleep))
