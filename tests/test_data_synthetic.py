"""The synthetic dataset generator: determinism, NPDI layout, fold lists, per-frame label file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import SMOKE_OVERRIDES

from alnsfw.data.layout import CLASSES, planned_videos, synthetic_names
from alnsfw.data.synthetic import render_video, synthesize_dataset

CFG = SMOKE_OVERRIDES["synthetic"] | {"fps": 4}


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files(tmp_path, smoke_data):
    synthesize_dataset(tmp_path / "again", smoke_data.config["synthetic"])
    assert _digest(tmp_path / "again") == _digest(smoke_data.root)


def test_seed_changes_the_content():
    a = render_video("vPorn1", "vPorn", CFG)
    b = render_video("vPorn1", "vPorn", CFG | {"seed": CFG["seed"] + 1})
    assert a.frames.shape[1:] == b.frames.shape[1:]
    assert not (a.frames.shape == b.frames.shape and np.array_equal(a.frames, b.frames))


def test_a_video_does_not_depend_on_the_others():
    more = CFG | {"videos": {"vPorn": 9, "vNonPornEasy": 3, "vNonPornDifficulty": 3}}
    assert np.array_equal(
        render_video("vPorn2", "vPorn", CFG).frames, render_video("vPorn2", "vPorn", more).frames
    )


def test_layout_matches_planned_videos(smoke_data):
    planned = planned_videos(smoke_data.config)
    on_disk = sorted(str(p) for p in (smoke_data.root / "Database").rglob("*.avi"))
    assert sorted(v.inputs[0] for v in planned) == on_disk
    names = [v.name for v in planned]
    assert "vPorn6" in names and "vPorn06" not in names  # un-padded
    # easy and difficult share the prefix and continue the numbering: names are unique
    assert [n for n, c in synthetic_names(CFG["videos"]) if c != "vPorn"] == [
        f"vNonPorn{i}" for i in range(1, 7)
    ]
    for video in planned:
        assert Path(video.inputs[0]).parent.name == video.video_class in CLASSES


def test_videos_read_back_with_the_written_frames(smoke_data):
    video = planned_videos(smoke_data.config)[0]
    rendered = render_video(video.name, video.video_class, smoke_data.config["synthetic"])
    cap = cv2.VideoCapture(video.inputs[0])
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    assert len(frames) == len(rendered.frames)
    w, h = smoke_data.config["synthetic"]["frame_size"]
    assert frames[0].shape == (h, w, 3)
    # MJPG is lossy but close
    err = np.abs(np.stack(frames).astype(int) - rendered.frames.astype(int)).mean()
    assert err < 8


def test_fold_lists_are_stratified_and_complete(smoke_data):
    root = smoke_data.root
    names = {v.name: v.video_class for v in planned_videos(smoke_data.config)}
    tests = {}
    for fold in range(5):
        tests[fold] = (root / f"test/fold{fold}_video.txt").read_text().split()
        others = "".join(str(i) for i in range(5) if i != fold)
        train = (root / f"training/fold{others}_video.txt").read_text().split()
        assert not set(tests[fold]) & set(train)
        assert set(tests[fold]) | set(train) == set(names)
    flat = [n for v in tests.values() for n in v]
    assert sorted(flat) == sorted(names)  # each video in exactly one test fold
    sizes = [len(v) for v in tests.values()]
    assert max(sizes) - min(sizes) <= 1
    porn_per_fold = [sum(names[n] == "vPorn" for n in v) for v in tests.values()]
    assert max(porn_per_fold) - min(porn_per_fold) <= 1


def test_label_file_has_one_row_per_shot_and_records_flips(smoke_data):
    labels = pd.read_csv(smoke_data.root / "frame_labels.csv")
    assert list(labels.columns) == ["video", "frame", "label"]
    cfg = smoke_data.config["synthetic"]
    for video in planned_videos(smoke_data.config):
        rendered = render_video(video.name, video.video_class, cfg)
        rows = labels[labels["video"] == video.name]
        assert rows["frame"].tolist() == list(range(1, len(rendered.shot_labels) + 1))
        assert tuple(rows["label"]) == rendered.shot_labels


@pytest.mark.parametrize(
    ("video_class", "flip_key"),
    [("vPorn", "porn_shot_flip"), ("vNonPornEasy", "nonporn_shot_flip")],
)
def test_shot_flip_rates(video_class, flip_key):
    cfg = CFG | {"porn_shot_flip": 0.0, "nonporn_shot_flip": 0.0, flip_key: 1.0}
    name = "vPorn1" if video_class == "vPorn" else "vNonPorn1"
    flipped = render_video(name, video_class, cfg).shot_labels
    cfg[flip_key] = 0.0
    kept = render_video(name, video_class, cfg).shot_labels
    own = int(video_class == "vPorn")
    assert set(kept) == {own} and set(flipped) == {1 - own}
