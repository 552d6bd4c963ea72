"""data.source: folder - a plain folder of unlabelled videos for a labelling campaign."""

from __future__ import annotations

import shutil

import pytest
from conftest import validated_config

from alnsfw.data import stages
from alnsfw.data.errors import DataError
from alnsfw.data.layout import UNLABELLED, planned_videos, scan_folder
from alnsfw.data.store import read_manifest


def _folder(tmp_path, smoke_data, names):
    videos = sorted((smoke_data.root / "Database").rglob("*.avi"))
    for src, name in zip(videos, names):
        dest = tmp_path / "videos" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return tmp_path / "videos"


def test_folder_any_names_and_subfolders(smoke_data, tmp_path):
    root = _folder(tmp_path, smoke_data, ["a/clip 1.avi", "a/b/Über.AVI", "x.mp4.avi", "notes.txt"])
    (root / "notes.txt").write_text("not a video")
    cfg = validated_config({"data": {"source": "folder", "root": str(root)}})
    videos = planned_videos(cfg)
    assert [v.name for v in videos] == ["a__b__Uber", "a__clip_1", "x.mp4"]
    assert {v.video_class for v in videos} == {UNLABELLED}
    shards = []
    for video in videos:
        shard = tmp_path / "shards" / f"{video.name}.h5"
        stages.extract_keyframes(
            video.name, video.video_class, video.source, video.inputs, shard, cfg["keyframes"]
        )
        shards.append(shard)
    stages.merge_keyframes(shards, tmp_path / "k.h5", tmp_path / "m.csv", None)
    manifest = read_manifest(tmp_path / "m.csv")
    assert set(manifest["video"]) == {v.name for v in videos}
    assert (manifest["label"] == -1).all() and (manifest["video_label"] == -1).all()


def test_folder_name_collision_and_empty_folder(smoke_data, tmp_path):
    root = _folder(tmp_path, smoke_data, ["a b.avi", "a_b.avi"])
    with pytest.raises(DataError, match="both become the name 'a_b'"):
        scan_folder(root, ["avi"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="No videos under"):
        scan_folder(tmp_path / "empty", ["avi"])
