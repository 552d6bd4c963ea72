"""Bad input: each case is one DataError/ConfigError naming the file or key, and no output."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import validated_config

from alnsfw.config import check_config
from alnsfw.data.errors import DataError
from alnsfw.data.layout import planned_videos
from alnsfw.data.stages import extract_keyframes
from alnsfw.schema import ConfigError

KEYFRAMES = {"size": 32, "resize": "pad", "method": "histogram", "threshold": {"histogram": 0.35}}


def _extract(tmp_path: Path, inputs: list[Path], source: str = "video") -> Path:
    out = tmp_path / "shards" / "vPorn1.h5"
    extract_keyframes("vPorn1", "vPorn", source, [str(p) for p in inputs], out, KEYFRAMES)
    return out


def _assert_nothing_written(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    assert not shards.exists() or list(shards.iterdir()) == []  # no shard, no temp file


def test_corrupt_video(tmp_path):
    video = tmp_path / "vPorn1.avi"
    video.write_bytes(b"RIFF garbage, not a video" * 50)
    with pytest.raises(DataError, match=f"'{video}' cannot be opened.*corrupt"):
        _extract(tmp_path, [video])
    _assert_nothing_written(tmp_path)


def test_zero_byte_video(tmp_path):
    video = tmp_path / "vPorn1.avi"
    video.touch()
    with pytest.raises(DataError, match=f"'{video}' is empty"):
        _extract(tmp_path, [video])
    _assert_nothing_written(tmp_path)


def test_video_with_zero_frames(tmp_path):
    video = tmp_path / "vPorn1.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 8.0, (48, 36))
    writer.release()
    with pytest.raises(DataError, match=f"'{video}' has no readable frames"):
        _extract(tmp_path, [video])
    _assert_nothing_written(tmp_path)


def _frames(tmp_path: Path, n: int = 3) -> list[Path]:
    paths = []
    for i in range(1, n + 1):
        path = tmp_path / f"vPorn1#{i}.jpg"
        cv2.imwrite(str(path), np.full((36, 48, 3), 40 * i, np.uint8))
        paths.append(path)
    return paths


def test_unreadable_shipped_frame(tmp_path):
    paths = _frames(tmp_path)
    paths[1].write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match=r"vPorn1#2\.jpg' cannot be read"):
        _extract(tmp_path, paths, "frames")
    _assert_nothing_written(tmp_path)


def test_shipped_frame_of_the_wrong_shape(tmp_path):
    paths = _frames(tmp_path)
    cv2.imwrite(str(paths[2]), np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(DataError, match=r"vPorn1#3\.jpg' is 20x20 but the video's first"):
        _extract(tmp_path, paths, "frames")
    _assert_nothing_written(tmp_path)


def test_tiny_shipped_frame(tmp_path):
    paths = _frames(tmp_path, 1)
    cv2.imwrite(str(paths[0]), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r"vPorn1#1\.jpg' is 4x4 pixels, too small"):
        _extract(tmp_path, paths, "frames")


def _npdi(smoke_data, tmp_path: Path) -> Path:
    root = tmp_path / "npdi"
    for sub in ("Database", "test", "training"):
        shutil.copytree(smoke_data.root / sub, root / sub)
    return root


def test_duplicate_video_name_across_classes(smoke_data, tmp_path):
    root = _npdi(smoke_data, tmp_path)
    shutil.copy(root / "Database/vPorn/vPorn1.avi", root / "Database/vNonPornEasy/vPorn1.mp4")
    config = validated_config({"data": {"source": "npdi", "root": str(root)}})
    with pytest.raises(DataError, match="'vPorn1' occurs twice.*vNonPornEasy/vPorn1.mp4"):
        planned_videos(config)


def test_npdi_root_absent_names_data_root(tmp_path):
    config = validated_config({"data": {"root": str(tmp_path / "nope")}}, preset="npdi-paper")
    with pytest.raises(ConfigError, match=r"data\.root = '.*nope' holds no NPDI copy"):
        check_config(config)


def test_npdi_fold_list_absent_names_file_and_key(smoke_data, tmp_path):
    root = _npdi(smoke_data, tmp_path)
    (root / "test/fold3_video.txt").unlink()
    config = validated_config({"data": {"source": "npdi", "root": str(root)}})
    with pytest.raises(ConfigError, match=r"fold3_video\.txt' \(fold 3, from data\.test_list\)"):
        check_config(config)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"synthetic": {"frame_size": [65, 48]}}, "synthetic.frame_size"),
        ({"synthetic": {"shots_per_video": [5, 3]}}, "synthetic.shots_per_video"),
        ({"data": {"test_list": "test/fold_video.txt"}}, "data.test_list"),
        ({"data": {"train_list": "training/fold{rest}.txt"}}, "data.train_list"),
        (
            {"training": {"augment": "bank"}, "compute": {"feature_cache": False}},
            "compute.feature_cache",
        ),
    ],
)
def test_inconsistent_data_config(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        check_config(validated_config(override))


def test_cli_strings_are_coerced_to_schema_types():
    """`--config compute='{gpu: true}'` arrives as strings; they become the schema's types."""
    from alnsfw.config import coerce_cli_scalars
    from alnsfw.schema import load_schema

    schema = load_schema()
    cfg = {
        "compute": {"gpu": "true", "threads": "4"},
        "report": {"within_points": "0.5", "key_percentages": ["20", "50"]},
        "training": {"augment": "none"},
        "al": {"warm_start": "maybe"},
    }
    coerce_cli_scalars(cfg, schema)
    assert cfg["compute"] == {"gpu": True, "threads": 4}
    assert cfg["report"] == {"within_points": 0.5, "key_percentages": [20.0, 50.0]}
    assert cfg["training"]["augment"] == "none"
    assert cfg["al"]["warm_start"] == "maybe"  # left for validation to reject, naming the key
    # keys that may also be null ([number, "null"], [integer, "null"])
    cfg = {"stopping": {"budget": {"max_share": "0.5", "max_labels": "null"}}}
    cfg["al"] = {"max_per_video": "3"}
    coerce_cli_scalars(cfg, schema)
    assert cfg["stopping"]["budget"] == {"max_share": 0.5, "max_labels": None}
    assert cfg["al"]["max_per_video"] == 3
