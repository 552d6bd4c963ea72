"""Ingestion that never drops a video silently: odd names, odd list entries, empty sets, absent
and truncated videos, a data root with only Frames/ (issue 10)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import validated_config

from alnsfw.config import check_config
from alnsfw.data import stages
from alnsfw.data.errors import DataError
from alnsfw.data.folds import check_before_jobs, load_folds
from alnsfw.data.keyframes import KeyframeSettings, extract_from_video
from alnsfw.data.layout import planned_videos
from alnsfw.data.splits import make_split
from alnsfw.data.store import read_manifest
from alnsfw.data.synthetic import write_video

REPO = Path(__file__).resolve().parents[1]
TEST, TRAIN = "test/fold{fold}_video.txt", "training/fold{others}_video.txt"


def keyframe_settings(**section: object) -> KeyframeSettings:
    """The schema's keyframe settings with `section` over them, at 32 px."""
    return KeyframeSettings.from_config({"keyframes": {"size": 32, **section}})


def npdi_copy(smoke_data, dest: Path) -> Path:
    """The smoke dataset as an 'existing' NPDI copy (videos and fold lists)."""
    for sub in ("Database", "test", "training"):
        shutil.copytree(smoke_data.root / sub, dest / sub)
    return dest


def names_in(smoke_data) -> set[str]:
    return set(read_manifest(smoke_data.manifest)["video"])


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["vPorn 1", "vPornç1"])
def test_unsafe_video_name_stops_the_scan_naming_file_and_rename(smoke_data, tmp_path, bad):
    root = npdi_copy(smoke_data, tmp_path / "npdi")
    os.rename(root / "Database/vPorn/vPorn1.avi", root / f"Database/vPorn/{bad}.avi")
    config = validated_config({"data": {"source": "npdi", "root": str(root)}})
    with pytest.raises(DataError, match="Rename") as err:
        planned_videos(config)
    assert f"{bad}.avi" in str(err.value) and "vPorn_1.avi" in str(err.value).replace("c", "_")


# --- fold-list entries -------------------------------------------------------------------------


def test_list_entries_with_extension_whitespace_crlf_and_bom_are_matched(smoke_data, tmp_path):
    root = npdi_copy(smoke_data, tmp_path / "npdi")
    test0 = root / "test/fold0_video.txt"
    names = test0.read_text().split()
    odd = ["\ufeff" + names[0] + ".mp4", "  " + names[1] + ".AVI  ", *(f"{n}\t" for n in names[2:])]
    test0.write_bytes("\r\n".join(odd).encode() + b"\r\n")
    plan = load_folds(root, TEST, TRAIN, 5, names_in(smoke_data), on_missing="warn")
    assert plan.test[0] == names and plan.missing == {}


# --- empty sets --------------------------------------------------------------------------------


def test_empty_test_fold_is_an_error_naming_fold_and_lists(smoke_data, tmp_path):
    root = npdi_copy(smoke_data, tmp_path / "npdi")
    (root / "test/fold1_video.txt").write_text("vPorn998\nvPorn999\n")
    plan = load_folds(root, TEST, TRAIN, 5, names_in(smoke_data), on_missing="warn")
    with pytest.raises(DataError, match=r"test set of fold 1 is empty.*fold1_video\.txt.*fold0234"):
        check_before_jobs(plan, [0, 1], "warn")
    manifest = read_manifest(smoke_data.manifest)
    with pytest.raises(DataError, match=r"test set of fold 1 is empty.*fold1_video\.txt"):
        make_split(manifest, plan, 1, 0)


def test_empty_pool_or_validation_is_an_error_naming_the_fold(smoke_data, tmp_path):
    root = npdi_copy(smoke_data, tmp_path / "npdi")
    train = root / "training/fold1234_video.txt"
    one = train.read_text().split()[0]
    manifest = read_manifest(smoke_data.manifest)
    train.write_text("vPorn999\n")  # nothing to train on
    plan = load_folds(root, TEST, TRAIN, 5, names_in(smoke_data), on_missing="warn")
    with pytest.raises(DataError, match=r"training pool of fold 0 is empty.*fold1234_video\.txt"):
        make_split(manifest, plan, 0, 0)
    train.write_text(f"{one}\n")  # one video: the video-level draw cannot leave a pool
    plan = load_folds(root, TEST, TRAIN, 5, names_in(smoke_data), on_missing="warn")
    with pytest.raises(DataError, match=r"of fold 0 is empty"):
        make_split(manifest, plan, 0, 0, val_fraction=0.2, val_unit="video")


# --- absent videos -----------------------------------------------------------------------------


def test_absent_videos_get_one_summary_line_with_count_and_first_names(smoke_data, tmp_path):
    root = npdi_copy(smoke_data, tmp_path / "npdi")
    with open(root / "test/fold2_video.txt", "a") as f:
        f.write("".join(f"vPorn{900 + i}\n" for i in range(7)))
    plan = load_folds(root, TEST, TRAIN, 5, names_in(smoke_data), on_missing="warn")
    line = check_before_jobs(plan, [0], "warn")
    assert line.startswith("WARNING: 7 video(s)") and "vPorn900, vPorn901" in line
    assert "and 2 more" in line


def test_absent_videos_are_counted_in_table1_and_folds(smoke_data, tmp_path):
    root = npdi_copy(smoke_data, tmp_path / "npdi")
    with open(root / "test/fold0_video.txt", "a") as f:
        f.write("vPorn900\nvPorn901\n")
    data = {**smoke_data.config["data"], "root": str(root), "on_missing": "warn"}
    splits = smoke_data.config["splits"]
    split = tmp_path / "split.json"
    stages.make_splits(smoke_data.manifest, split, 0, 0, data, splits)
    names = ("table1_csv", "table1_md", "folds_csv", "folds_md", "contact_sheet")
    out = {k: tmp_path / f"{k}.{k.rsplit('_', 1)[1].replace('sheet', 'png')}" for k in names}
    stages.ingest_report(smoke_data.keyframes, smoke_data.manifest, [split], out, data, 5)
    assert "2 video(s) named in the fold lists are not in the data" in out["table1_md"].read_text()
    assert "vPorn900, vPorn901" in out["table1_md"].read_text()
    folds = pd.read_csv(out["folds_csv"])
    assert (folds["missing_videos"] == 2).all()


# --- truncated videos --------------------------------------------------------------------------


@pytest.fixture
def truncated(tmp_path) -> Path:
    """An MJPG .avi of 60 frames whose last ~half of the bytes is cut off (header intact)."""
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (4, 48, 64, 3), dtype=np.uint8), 15, axis=0)
    path = tmp_path / "vPorn1.avi"
    write_video(path, frames, 8)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 60  # the container still says 60
    return path


@pytest.mark.parametrize("method", ["adaptive", "histogram"])
def test_truncated_video_is_an_error_by_default(truncated, method):
    threshold = {"adaptive": 3.0, "histogram": 0.35}[method]
    with pytest.raises(DataError, match=r"decodes only \d+ of the 60 frames.*on_truncated: warn"):
        extract_from_video(
            truncated, keyframe_settings(method=method, threshold={method: threshold})
        )


def test_truncated_video_with_warn_keeps_what_was_read_and_records_it(truncated, tmp_path):
    keyframes = {"size": 32, "resize": "pad", "method": "adaptive", "threshold": {"adaptive": 3.0}}
    shard = tmp_path / "vPorn1.h5"
    n = stages.extract_keyframes(
        "vPorn1", "vPorn", "video", [str(truncated)], shard, keyframes, "warn"
    )
    assert n >= 1
    with h5py.File(shard, "r") as h5:
        assert h5.attrs["truncated"] and h5.attrs["expected_frames"] == 60
        assert 0 < h5.attrs["decoded_frames"] < 60
        assert (h5["video_frame"][:] < h5.attrs["decoded_frames"]).all()
    merged = tmp_path / "keyframes.h5"
    stages.merge_keyframes([shard], merged, tmp_path / "manifest.csv", None)
    with h5py.File(merged, "r") as h5:
        assert h5.attrs["truncated_videos"] == "vPorn1"  # named in table1.md


# --- Frames/ only ------------------------------------------------------------------------------


def test_root_with_only_frames_is_accepted(smoke_data, tmp_path):
    root = tmp_path / "npdi"
    for sub in ("test", "training"):
        shutil.copytree(smoke_data.root / sub, root / sub)
    for video in planned_videos(validated_config({"data": {"root": str(smoke_data.root)}})):
        folder = root / "Frames" / video.video_class
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{video.name}#1.jpg"), np.full((30, 40, 3), 99, np.uint8))
    config = validated_config({"data": {"source": "npdi", "root": str(root)}})
    check_config(config)
    videos = planned_videos(config)
    assert len(videos) == 12 and {v.source for v in videos} == {"frames"}


# --- through Snakemake: said before any job ------------------------------------------------------


def dry_run(workdir: Path, root: Path, *extra: str) -> subprocess.CompletedProcess:
    """`snakemake -n` of the data stage on an NPDI copy, with this checkout's code."""
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, workdir / name)
    for name in ("workflow", "scripts", "presets", "profiles", "envs"):
        if not (workdir / name).exists():
            shutil.copytree(
                REPO / name, workdir / name, ignore=shutil.ignore_patterns("__pycache__")
            )
    config = ["data={source: npdi, root: " + str(root) + ", on_missing: warn}", *extra]
    cmd = [sys.executable, "-m", "snakemake", "-n", "--configfile", "presets/smoke.yaml"]
    cmd += ["--config", *config, "--", "results/splits/fold0/seed0.json"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=300, env=env)


def test_workflow_names_absent_videos_and_bad_names_before_any_job(smoke_data, tmp_path):
    root = npdi_copy(smoke_data, tmp_path / "npdi")
    with open(root / "test/fold0_video.txt", "a") as f:
        f.write("vPorn900\nvPorn901\n")
    work = tmp_path / "wf"
    work.mkdir()
    proc = dry_run(work, root)
    assert proc.returncode == 0, proc.stderr
    # said while the workflow is parsed, i.e. before the job plan (stdout) is even made
    assert "WARNING: 2 video(s) named in the fold lists" in proc.stderr
    assert "vPorn900, vPorn901" in proc.stderr and "extract_keyframes" in proc.stdout

    os.rename(root / "Database/vPorn/vPorn1.avi", root / "Database/vPorn/vPorn 1.avi")
    proc = dry_run(work, root)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Nothing to be done" not in out
    assert "vPorn 1.avi' -> 'vPorn_1.avi'" in out and "Rename" in out
    assert "MissingInputException" not in out
