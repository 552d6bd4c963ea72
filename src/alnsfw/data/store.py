"""The keyframe cache: per-video HDF5 shards, merged into results/keyframes/keyframes.h5.

One shard per video lets Snakemake redo only the videos that changed; the merge then rewrites the
whole cache in natural video order, streaming one shard at a time so that the real NPDI (2.5 GB of
224 px keyframes) never has to fit in memory. Images are chunked one per chunk and gzip-compressed,
so a reader can fetch any single image cheaply. Every dataset carries Fletcher-32 checksums.

Datasets (all of length N, row i is the same keyframe in each): `images` uint8 [N,S,S,3] RGB;
`video`, `video_class`, `source` fixed-length utf-8 strings (read them with `ds.asstr()[:]`);
`frame` int32 (keyframe number from 1); `video_frame` int32 (0-based frame index in the video,
-1 for shipped keyframes); `label` int8 (per-frame, 1 = porn); `video_label` int8.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from alnsfw.data.labels import apply_frame_labels, read_frame_labels
from alnsfw.data.layout import natural_key
from alnsfw.data.shards import INDEX_FIELDS, STR, create_images, write_full_jpeg, write_index
from alnsfw.io import atomic_path, write_csv

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["row", "video", "frame", "video_class", "label", "video_label", "source"]


def read_index(path: str | Path) -> pd.DataFrame:
    """Every dataset but `images` of a shard or of keyframes.h5, as a table (row = HDF5 row)."""
    with h5py.File(path, "r") as h5:
        cols = {
            name: (h5[name].asstr()[:] if dtype is STR else h5[name][:])
            for name, dtype in INDEX_FIELDS.items()
        }
    table = pd.DataFrame(cols)
    table.insert(0, "row", np.arange(len(table)))
    return table


def merge_shards(
    shards: Sequence[str | Path],
    out_h5: str | Path,
    out_manifest: str | Path,
    frame_labels: str | Path | None = None,
    on_missing: str = "error",
) -> dict[str, int]:
    """Concatenate shards in natural video order, apply per-frame labels, write cache + manifest.

    Returns counts (rows, videos, relabelled) for the log; `n_relabelled` (frames whose label
    differs from their video's) is also stored as an attribute of the HDF5 file.
    """
    if not shards:
        raise ValueError("no keyframe shards to merge")
    indexes = {str(s): read_index(s) for s in shards}
    ordered = sorted(indexes, key=lambda s: natural_key(str(indexes[s]["video"].iat[0])))
    table = pd.concat([indexes[s] for s in ordered], ignore_index=True)
    dup = table.loc[table.duplicated(["video", "frame"]), "video"].unique()
    if len(dup):
        raise ValueError(f"videos {list(dup)} occur in more than one shard")
    table["row"] = np.arange(len(table))
    if frame_labels is not None:
        labels = read_frame_labels(frame_labels)
        table["label"] = apply_frame_labels(table, labels, frame_labels, on_missing)
    n_relabelled = int((table["label"] != table["video_label"]).sum())
    n_videos = int(table["video"].nunique())
    log.info(
        "%d keyframes of %d videos; %d frames relabelled by %s",
        len(table),
        n_videos,
        n_relabelled,
        frame_labels or "no label file",
    )
    with h5py.File(ordered[0], "r") as first:
        attrs = dict(first.attrs)
    size = int(attrs["size"])
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as h5:
        create_images(h5, len(table), size)
        write_index(h5, {name: table[name].to_numpy() for name in INDEX_FIELDS})
        start = 0
        truncated = []  # videos kept with data.on_truncated: warn
        full: list[bytes] | None = [] if _all_have_full(ordered) else None
        fps: list[float] = []
        for shard in ordered:  # one shard in memory at a time
            with h5py.File(shard, "r") as src:
                if src.attrs.get("truncated", False):
                    truncated.append(str(src.attrs["video"]))
                if (int(src.attrs["size"]), src.attrs["resize"]) != (size, attrs["resize"]):
                    raise ValueError(f"shard '{shard}' has another image size or resize mode")
                images = src["images"][:]
                if full is not None:
                    full.extend(bytes(b) for b in src["full_jpeg"][:])
                    fps.extend(float(f) for f in src["video_fps"][:])
            h5["images"][start : start + len(images)] = images
            start += len(images)
        if full is not None:
            write_full_jpeg(h5, full, fps)
        h5.attrs.update(
            {
                "size": size,
                "resize": attrs["resize"],
                "n_relabelled": n_relabelled,
                "n_videos": n_videos,
                "frame_labels": str(frame_labels or ""),
                "truncated_videos": ",".join(truncated),
            }
        )
    write_csv(out_manifest, table[MANIFEST_COLUMNS])
    return {"rows": len(table), "videos": n_videos, "relabelled": n_relabelled}


def _all_have_full(shards: Sequence[str | Path]) -> bool:
    """Whether every shard kept full-resolution keyframes (keyframes.full_images)."""
    for shard in shards:
        with h5py.File(shard, "r") as src:
            if "full_jpeg" not in src:
                return False
    return True


def read_manifest(path: str | Path) -> pd.DataFrame:
    """manifest.csv as a table, with the dtypes of keyframes.h5."""
    table = pd.read_csv(path, dtype={"video": str, "video_class": str, "source": str})
    return table.astype(
        {"row": np.int64, "frame": np.int32, "label": np.int8, "video_label": np.int8}
    )
