"""keyframes.h5 and manifest.csv: datasets, dtypes, chunks, compression, order, labels."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from alnsfw.data.errors import DataError
from alnsfw.data.layout import natural_key, planned_videos
from alnsfw.data.store import MANIFEST_COLUMNS, merge_shards, read_index


def test_datasets_dtypes_chunks_compression(smoke_data):
    with h5py.File(smoke_data.keyframes, "r") as h5:
        n = h5["images"].shape[0]
        assert h5["images"].shape == (n, 32, 32, 3)
        assert h5["images"].dtype == np.uint8
        assert h5["images"].chunks == (1, 32, 32, 3)
        assert h5["images"].compression == "gzip"
        for name, dtype in [("frame", np.int32), ("label", np.int8), ("video_label", np.int8)]:
            assert h5[name].dtype == dtype and h5[name].shape == (n,)
        for name in ("video", "video_class", "source"):
            assert h5py.check_string_dtype(h5[name].dtype).encoding == "utf-8"
        assert h5.attrs["size"] == 32 and h5.attrs["resize"] == "pad"
        assert int(h5.attrs["n_relabelled"]) == int((h5["label"][:] != h5["video_label"][:]).sum())
        assert h5["images"][:].std() > 10  # real pictures, not zeros


def test_rows_in_natural_video_then_frame_order(smoke_data):
    index = read_index(smoke_data.keyframes)
    keys = [(natural_key(v), f) for v, f in zip(index["video"], index["frame"])]
    assert keys == sorted(keys)
    assert set(index["video"]) == {v.name for v in planned_videos(smoke_data.config)}
    assert index.groupby("video")["frame"].apply(lambda f: f.iloc[0] == 1).all()


def test_labels_follow_the_label_file(smoke_data):
    index = read_index(smoke_data.keyframes)
    truth = pd.read_csv(smoke_data.root / "frame_labels.csv")
    merged = index.merge(truth, on=["video", "frame"], suffixes=("", "_file"))
    assert len(merged) == len(index)
    assert (merged["label"] == merged["label_file"]).all()
    assert ((index["video_class"] == "vPorn").astype(int) == index["video_label"]).all()
    assert (index["label"] != index["video_label"]).sum() > 0  # the smoke set has flipped shots


def test_manifest_matches_the_hdf5_index(smoke_data):
    manifest = pd.read_csv(smoke_data.manifest)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    index = read_index(smoke_data.keyframes)
    pd.testing.assert_frame_equal(
        manifest, index[MANIFEST_COLUMNS], check_dtype=False, check_exact=True
    )


def test_no_label_file_means_video_labels(smoke_data, tmp_path):
    counts = merge_shards(smoke_data.shards, tmp_path / "k.h5", tmp_path / "m.csv", None)
    assert counts["relabelled"] == 0
    index = read_index(tmp_path / "k.h5")
    assert (index["label"] == index["video_label"]).all()


def test_partial_label_file_overrides_only_its_rows(smoke_data, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("video,frame,label\nvPorn1,1,0\nvNonPorn1,2,1\nvPorn2,1,1\n")
    counts = merge_shards(smoke_data.shards, tmp_path / "k.h5", tmp_path / "m.csv", labels)
    index = read_index(tmp_path / "k.h5").set_index(["video", "frame"])
    assert index.loc[("vPorn1", 1), "label"] == 0
    assert index.loc[("vNonPorn1", 2), "label"] == 1
    assert counts["relabelled"] == 2  # vPorn2#1 -> 1 agrees with its video
    with h5py.File(tmp_path / "k.h5", "r") as h5:
        assert h5.attrs["n_relabelled"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,frame\nvPorn1,1\n", "lacks the column"),
        ("video,frame,label\nvPorn1,1,2\n", "line 2: label"),
        ("video,frame,label\nvPorn1,x,1\n", "line 2: frame"),
        ("video,frame,label\nvPorn1,1,1\nvPorn1,1,0\n", "more than once"),
        ("video,frame,label\nvPorn99,1,1\n", "vPorn99#1"),
    ],
)
def test_bad_label_file_is_one_clear_error(smoke_data, tmp_path, text, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        merge_shards(smoke_data.shards, tmp_path / "k.h5", tmp_path / "m.csv", labels)
    assert str(labels) in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv"]  # nothing partial


def test_unknown_label_rows_are_skipped_with_warn(smoke_data, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("video,frame,label\nvPorn99,1,1\nvPorn1,1,0\n")
    counts = merge_shards(smoke_data.shards, tmp_path / "k.h5", tmp_path / "m.csv", labels, "warn")
    assert counts["relabelled"] == 1
