"""HDF5 caches detect corruption: Fletcher-32 on every dataset we write, and a corrupt or
truncated file fails its job with one error naming the file and the command that rebuilds it."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from alnsfw.al.jobs import read_labels
from alnsfw.data.keyframes import Keyframes
from alnsfw.data.shards import write_shard
from alnsfw.data.store import merge_shards
from alnsfw.entry import run_logged


def tiny_keyframes(tmp_path, n=5, size=8):
    rng = np.random.default_rng(0)
    shards = []
    for video, cls in (("vPorn000001", "vPorn"), ("vNonPornEasy000001", "vNonPornEasy")):
        frames = Keyframes(
            images=rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
            frame=np.arange(1, n + 1, dtype=np.int32),
            video_frame=np.arange(n, dtype=np.int32) * 10,
            source=[f"{video}.mp4"] * n,
        )
        shard = tmp_path / "results/keyframes/shards" / f"{video}.h5"
        write_shard(shard, frames, video, cls, {"resize": "pad"})
        shards.append(shard)
    out = tmp_path / "results/keyframes/keyframes.h5"
    merge_shards(shards, out, tmp_path / "results/keyframes/manifest.csv")
    return out, shards


def test_every_dataset_has_fletcher32(tmp_path):
    keyframes, shards = tiny_keyframes(tmp_path)
    for path in (keyframes, *shards):
        with h5py.File(path, "r") as h5:
            for name, ds in h5.items():
                assert ds.fletcher32, f"{path}:{name}"


def overwrite_data_bytes(path, name):
    """Flip bytes inside the stored data of dataset `name`, leaving the file structure intact."""
    with h5py.File(path, "r") as h5:
        ds = h5[name]
        if ds.chunks:
            info = ds.id.get_chunk_info(0)
            offset, size = info.byte_offset, info.size
        else:
            offset, size = ds.id.get_offset(), ds.id.get_storage_size()
    with open(path, "r+b") as f:
        f.seek(offset)
        data = bytearray(f.read(min(size, 4)))
        f.seek(offset)
        f.write(bytes(b ^ 0x01 for b in data))


def fails_naming(capsys, path, fix, **kwargs):
    with pytest.raises(SystemExit) as exc:
        run_logged(read_labels, None, **kwargs)
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert str(path) in err and fix in err, err


def test_overwritten_label_bytes_fail_naming_the_file_and_the_fix(tmp_path, capsys):
    keyframes, _ = tiny_keyframes(tmp_path)
    before = read_labels(str(keyframes))
    overwrite_data_bytes(keyframes, "label")
    fails_naming(capsys, keyframes, "--forcerun merge_keyframes", keyframes=str(keyframes))
    assert before.sum() == 5


def test_truncated_keyframes_fail_naming_the_file_and_the_fix(tmp_path, capsys):
    keyframes, _ = tiny_keyframes(tmp_path)
    keyframes.write_bytes(keyframes.read_bytes()[: keyframes.stat().st_size // 2])
    fails_naming(capsys, keyframes, "--forcerun merge_keyframes", keyframes=str(keyframes))


def test_a_corrupt_shard_names_its_rule(tmp_path, capsys):
    _, shards = tiny_keyframes(tmp_path)
    overwrite_data_bytes(shards[0], "label")
    # a shard's job has no fixed rule name (compute.keyframe_jobs): forced by its path
    fix = f"snakemake --force results/keyframes/shards/{shards[0].name}, then snakemake"
    fails_naming(capsys, shards[0], fix, keyframes=str(shards[0]))
