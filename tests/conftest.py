"""Shared fixtures. `smoke_data`: a tiny synthetic dataset, its keyframe cache and one split;
`smoke_workflow`: one finished Snakemake run of presets/smoke.yaml (see docs/development.md).

Both are built once per test session. `smoke_data` uses library calls only (no Snakemake), in a
few seconds, so the model and active-learning tests run on real pipeline files instead of
hand-made ones; `smoke_workflow` is the one end-to-end run every workflow test reads.
`labelstudio_server` (tests/labelstudio_server.py): one real Label Studio per session for the
tests of marker `labelstudio`, started only when such a test asks for it.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from labelstudio_server import labelstudio_server  # noqa: F401  (a fixture, shared)

from alnsfw.schema import SCHEMA_PATH

REPO = Path(__file__).resolve().parents[1]


def validated_config(overrides: dict[str, Any] | None = None, preset: str = "smoke") -> dict:
    """presets/<preset>.yaml plus `overrides` (deep-merged), validated with schema defaults."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "presets" / f"{preset}.yaml").read_text())

    def merge(dst: dict, src: dict) -> None:
        for key, value in src.items():
            if isinstance(value, dict) and isinstance(dst.get(key), dict):
                merge(dst[key], value)
            else:
                dst[key] = copy.deepcopy(value)

    merge(config, overrides or {})
    validate(config, str(SCHEMA_PATH))
    return config


@dataclass(frozen=True)
class SmokeData:
    """Paths of the smoke dataset; `config` is the validated config that produced them."""

    root: Path  # dataset root in the NPDI layout (Database/, test/, training/, frame_labels.csv)
    keyframes: Path  # keyframes.h5 (docs/CONTRACT.md)
    manifest: Path  # manifest.csv
    split: Path  # splits/fold0/seed0.json
    shards: tuple[Path, ...]
    config: dict


SMOKE_OVERRIDES = {
    "data": {"root": "<set by the fixture>"},
    "synthetic": {
        "seed": 3,
        "videos": {"vPorn": 6, "vNonPornEasy": 3, "vNonPornDifficulty": 3},
        "shots_per_video": [3, 4],
        "frames_per_shot": 3,
        "frame_size": [48, 36],
        "porn_shot_flip": 0.2,
        "nonporn_shot_flip": 0.1,
    },
    "keyframes": {"size": 32},
    "splits": {"folds": [0], "seeds": [0]},
}


def build_smoke_data(base: Path, overrides: dict[str, Any] | None = None) -> SmokeData:
    """Generate, extract, merge and split a tiny dataset under `base` (library calls only)."""
    from alnsfw.data import stages
    from alnsfw.data.layout import frame_labels_path, planned_videos

    merged = copy.deepcopy(SMOKE_OVERRIDES)
    merged["data"]["root"] = str(base / "dataset")
    for section, values in (overrides or {}).items():
        merged.setdefault(section, {}).update(values)
    config = validated_config(merged)
    data, splits = config["data"], config["splits"]
    stages.synthesize_dataset(
        data["root"], config["synthetic"], splits["n_folds"], data["test_list"], data["train_list"]
    )
    shards = []
    for video in planned_videos(config):
        shard = base / "keyframes" / "shards" / f"{video.name}.h5"
        stages.extract_keyframes(
            video.name, video.video_class, video.source, video.inputs, shard, config["keyframes"]
        )
        shards.append(shard)
    h5, manifest = base / "keyframes" / "keyframes.h5", base / "keyframes" / "manifest.csv"
    stages.merge_keyframes(shards, h5, manifest, frame_labels_path(config), data["on_missing"])
    split = base / "splits" / "fold0" / "seed0.json"
    stages.make_splits(manifest, split, 0, 0, data, splits)
    return SmokeData(Path(data["root"]), h5, manifest, split, tuple(shards), config)


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory: pytest.TempPathFactory) -> SmokeData:
    """A tiny synthetic dataset (12 videos, ~40 keyframes of 32x32) with keyframes.h5 and the
    fold 0 / seed 0 split. Session-scoped and read-only: copy files before changing them."""
    return build_smoke_data(tmp_path_factory.mktemp("smoke_data"))


# --- three workers (pytest-xdist, `-n 3 --dist loadgroup` in pyproject.toml) --------------------
# A fixture is built once per worker, so every test that uses an expensive shared fixture carries
# its xdist_group mark and its group runs on one worker: each fixture is still built once a run.
# A test with no mark is grouped with its module (module-scoped fixtures: once too).
EXPENSIVE_FIXTURES = {  # fixture -> the xdist_group its tests must carry
    "smoke_workflow": "smoke_workflow",  # ~2 min: presets/smoke.yaml end to end
    "exported": "exported",  # a trained and exported model (.keras, .onnx)
    "jax_workdir": "jax_workdir",  # ~3 min: the model jobs of the workflow on JAX
    "pretrained": "pretrained",  # two proxy pretrainings of ResNet50V2
}
# Groups handed out first, longest first, so the workers finish together: the smoke workflow
# and the JAX one each take minutes and start at once, on different workers, and the many small
# modules after these fill the last minute instead of one long module closing the run alone
# (before this list went past the fixtures' groups, tests/test_model_learner.py, 111 s, was
# handed out at 244 s and ran alone for the last 26 s). The order follows `make profile-tests`
# (wall seconds of each group on three workers, 2026-12-06); a group not named goes after them.
FIRST_GROUPS = (
    "smoke_workflow",  # 180 s (the fixture and the tests that rerun its copies)
    "jax_workdir",  # 113
    "jax_learner",  # 111
    "test_model_learner",  # 111
    "pretrained",  # 62
    "test_al_learner",  # 59
    "exported",  # 56
    "test_report_workflow",  # 48
    "test_al_strategies_learner",  # 31
    "test_open_nsfw",  # 29
    "test_model_network",  # 27
    "test_data_real_footage",  # 23
    "test_al_workflow",  # 19
    "test_workflow_faults",  # 18
    "test_gpu_packing",  # 16
    "test_config_coerce",  # 13
)


def xdist_group(item: pytest.Item) -> str:
    """The item's explicit xdist_group name, else its module's name."""
    mark = item.get_closest_marker("xdist_group")
    return str(mark.args[0]) if mark else item.path.stem


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    # Before every other implementation, xdist's included: marks, the check, the order.
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
        for fixture, group in EXPENSIVE_FIXTURES.items():
            if fixture in item.fixturenames and xdist_group(item) != group:
                raise pytest.UsageError(
                    f"{item.nodeid} uses the fixture {fixture!r}: mark it "
                    f"@pytest.mark.xdist_group({group!r}) (tests/conftest.py)"
                )
    first = {name: rank for rank, name in enumerate(FIRST_GROUPS)}
    items.sort(key=lambda item: first.get(xdist_group(item), len(FIRST_GROUPS)))
    result = yield
    # After: xdist 3.8.0 sends the group to its scheduler as a suffix it appends to
    # `item._nodeid` ("<id>@<group>"), which pytest 9.2 no longer reads (node ids are structured
    # NodeId objects), so --dist loadgroup silently grouped nothing (pytest-xdist issue 1386; the
    # fix, PR 1388, is not released). Carry the suffix into the id pytest reports, as that PR does.
    for item in items:
        legacy = item.__dict__.get("_nodeid")
        if legacy and legacy != item.nodeid and hasattr(item, "_id"):
            from _pytest.nodeid import NodeId

            item._id = NodeId.parse(legacy)
    return result


# --- the smoke workflow: presets/smoke.yaml end to end through Snakemake, once per session ------

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SMOKE_PRESET = REPO / "presets" / "smoke.yaml"


def smoke_snakemake(
    workdir: Path,
    *args: str,
    check: bool = True,
    timeout: int = 900,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run this checkout's Snakefile on presets/smoke.yaml in `workdir` (2 cores).

    `check`: fail the test with the end of the output if Snakemake fails; `env`: variables
    added to this process's environment for Snakemake and its jobs."""
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(SMOKE_PRESET), "--cores", "2", *args]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=workdir,
        env=os.environ | env if env else None,
    )
    if check:
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done


@pytest.fixture(scope="session")
def smoke_workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of one finished `snakemake` run of presets/smoke.yaml (every rule,
    about a minute of CPU on 2 cores), shared by every test that only reads its outputs or
    dry-runs against it. Read-only: a test that changes a file works on `copy_smoke_workflow`."""
    work = tmp_path_factory.mktemp("smoke-workflow")
    smoke_snakemake(work)
    return work


def copy_smoke_workflow(smoke_workflow: Path, dest: Path) -> Path:
    """A private copy of the finished smoke run (outputs, inputs, .snakemake metadata; file
    times kept, so Snakemake sees it up to date), for tests that change files and rerun."""
    shutil.copytree(smoke_workflow, dest, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    return dest


def train_and_export(smoke_data: Any, cfg: dict, root: Path, model: Path) -> dict:  # noqa: ANN401
    """The feature cache, a full-supervision run and its export (.keras at `model`, .onnx and
    JSON beside it) of the smoke data under `cfg`, in `root`; the run's outputs and the JSON."""
    from alnsfw.al.jobs import full_supervision_job
    from alnsfw.model.features import compute_features
    from alnsfw.predict.export import export_model

    features = root / "features.h5"
    compute_features(smoke_data.keyframes, features, cfg)
    run = root / "runs" / "full"
    outputs = {k: str(run / f"{k}.csv") for k in ("metrics", "history", "predictions")}
    outputs["weights"] = str(run / "final_weights.h5")
    full_supervision_job(
        str(smoke_data.keyframes), str(smoke_data.split), outputs, cfg, 0, 0, features=str(features)
    )
    meta = export_model(
        config=cfg,
        weights=outputs["weights"],
        results=outputs["metrics"],
        predictions=outputs["predictions"],
        keyframes=str(smoke_data.keyframes),
        outputs={
            "model": str(model),
            "onnx": str(model.with_suffix(".onnx")),
            "meta": str(model.with_suffix(".json")),
        },
        run={"fold": 0, "seed": 0, "method": "full"},
        split=str(smoke_data.split),
    )
    return {"outputs": outputs, "meta": meta}


@pytest.fixture(scope="session")
def exported(smoke_data, tmp_path_factory):
    """A trained full-supervision run of the smoke data, exported as .keras, .onnx and JSON
    (operating point: accuracy); returns paths and config. Read-only: copy before changing."""
    root = tmp_path_factory.mktemp("export")
    cfg = copy.deepcopy(smoke_data.config)
    cfg["training"].update(augment="online", max_epochs=2)
    cfg["compute"].update(feature_dtype="float32", threads=1)
    cfg["baseline"]["epochs"] = 2
    model = root / "models" / "full.keras"
    done = train_and_export(smoke_data, cfg, root, model)
    return {"model": model, "cfg": cfg, "root": root} | done
