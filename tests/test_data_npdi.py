"""The real-NPDI ingestion path: folder scan, shipped keyframes preferred, Table 1 counts."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pandas as pd
from conftest import validated_config

from alnsfw.data import stages
from alnsfw.data.layout import frame_labels_path, planned_videos


def test_scan_prefers_shipped_frames_and_keeps_frames_only_videos(smoke_data, tmp_path):
    root = tmp_path / "npdi"
    for sub in ("Database", "test", "training"):
        shutil.copytree(smoke_data.root / sub, root / sub)
    frames = root / "Frames" / "vNonPornEasy"
    frames.mkdir(parents=True)
    for n in (1, 2, 10):
        cv2.imwrite(str(frames / f"vNonPorn2#{n}.jpg"), np.full((30, 40, 3), 9 * n, np.uint8))
    # a video whose file is gone but whose keyframes are shipped
    (root / "Database/vPorn/vPorn3.avi").unlink()
    shutil.copy(frames / "vNonPorn2#1.jpg", root / "Frames/vNonPornEasy/x.txt")  # ignored
    (root / "Frames/vPorn").mkdir()
    cv2.imwrite(str(root / "Frames/vPorn/vPorn3#1.png"), np.zeros((30, 40, 3), np.uint8))

    config = validated_config({"data": {"source": "npdi", "root": str(root)}})
    videos = {v.name: v for v in planned_videos(config)}
    assert len(videos) == 12
    assert videos["vNonPorn2"].source == "frames"
    assert [p.rsplit("#", 1)[1] for p in videos["vNonPorn2"].inputs] == ["1.jpg", "2.jpg", "10.jpg"]
    assert videos["vPorn3"].source == "frames" and videos["vPorn3"].video_class == "vPorn"
    assert videos["vPorn1"].source == "video"
    assert frame_labels_path(config) is None  # auto, and the copy has no label file

    shards = []
    for v in videos.values():
        shard = tmp_path / "shards" / f"{v.name}.h5"
        stages.extract_keyframes(
            v.name, v.video_class, v.source, v.inputs, shard, config["keyframes"]
        )
        shards.append(shard)
    out = tmp_path / "out"
    stages.merge_keyframes(shards, out / "k.h5", out / "m.csv", None)
    manifest = pd.read_csv(out / "m.csv")
    assert manifest.loc[manifest["video"] == "vNonPorn2", "frame"].tolist() == [1, 2, 10]
    stages.make_splits(out / "m.csv", out / "s.json", 0, 0, config["data"], config["splits"])
    report = {k: out / f"{k}.x" for k in ("table1_csv", "table1_md", "folds_csv", "folds_md")}
    report["contact_sheet"] = out / "sheet.png"
    stages.ingest_report(out / "k.h5", out / "m.csv", [out / "s.json"], report, config["data"], 5)
    table1 = pd.read_csv(report["table1_csv"]).set_index("class")
    assert table1.loc["vNonPornEasy", "videos_from_shipped_frames"] == 1
    assert table1.loc["total", "videos_from_shipped_frames"] == 2
    assert table1.loc["total", "images"] == len(manifest)
    assert table1.loc["total", "images_relabelled"] == 0
    folds = pd.read_csv(report["folds_csv"])
    split = json.loads((out / "s.json").read_text())
    assert folds.set_index("set").loc["test", "images"] == len(split["test"])
