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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from alnsfw.data.keyframes import Keyframes
from alnsfw.data.labels import apply_frame_labels, read_frame_labels
from alnsfw.data.layout import class_label, natural_key
from alnsfw.io import atomic_path, write_csv

log = logging.getLogger(__name__)

STR = h5py.string_dtype("utf-8")
INDEX_FIELDS: dict[str, Any] = {
    "video": STR,
    "frame": np.int32,
    "video_class": STR,
    "label": np.int8,
    "video_label": np.int8,
    "source": STR,
    "video_frame": np.int32,
}
MANIFEST_COLUMNS = ["row", "video", "frame", "video_class", "label", "video_label", "source"]
_GZIP_LEVEL = 4


def _filters(n: int) -> dict[str, Any]:
    """Fletcher-32 per chunk: overwritten bytes fail the read (alnsfw.integrity then names the file
    and its rebuild) instead of feeding other pixels or labels to every later job. An empty
    dataset (a video without keyframes) cannot be chunked, and has nothing to check."""
    return {"fletcher32": True} if n else {}


def _create_images(h5: h5py.File, n: int, size: int) -> None:
    h5.create_dataset(
        "images",
        shape=(n, size, size, 3),
        dtype=np.uint8,
        chunks=(1, size, size, 3) if n else None,
        compression="gzip" if n else None,
        compression_opts=_GZIP_LEVEL if n else None,
        **_filters(n),
    )


def _write_index(h5: h5py.File, columns: Mapping[str, Any]) -> None:
    """The INDEX_FIELDS datasets. Strings are fixed-length UTF-8 (HDF5 cannot checksum
    variable-length strings); `ds.asstr()[:]` reads them as str either way."""
    for name, dtype in INDEX_FIELDS.items():
        values = columns[name]
        n = len(values)
        if dtype is STR:
            encoded = [str(v).encode("utf-8") for v in values]
            width = max((len(b) for b in encoded), default=1) or 1
            ds = h5.create_dataset(
                name, shape=(n,), dtype=h5py.string_dtype("utf-8", width), **_filters(n)
            )
            if n:  # h5py has no high-level write of bytes into a fixed-length UTF-8 dataset
                data = np.array(encoded, dtype=f"S{width}")
                ds.id.write(h5py.h5s.ALL, h5py.h5s.ALL, data, mtype=ds.id.get_type())
        else:
            h5.create_dataset(name, data=np.asarray(values, dtype=dtype), **_filters(n))


def write_shard(
    path: str | Path,
    keyframes: Keyframes,
    video: str,
    video_class: str,
    attrs: Mapping[str, Any],
) -> None:
    """Write one video's keyframes; `label` is the video's label here (overrides come at merge)."""
    n, size = len(keyframes.frame), keyframes.images.shape[1]
    if np.any(np.diff(keyframes.frame) <= 0):
        raise ValueError(f"keyframe numbers of {video} are not strictly increasing")
    lab = class_label(video_class)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        _create_images(h5, n, size)
        h5["images"][:] = keyframes.images
        _write_index(
            h5,
            {
                "video": [video] * n,
                "frame": keyframes.frame,
                "video_class": [video_class] * n,
                "label": np.full(n, lab, np.int8),
                "video_label": np.full(n, lab, np.int8),
                "source": keyframes.source,
                "video_frame": keyframes.video_frame,
            },
        )
        h5.attrs.update({"size": size, "video": video, **attrs})


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
        _create_images(h5, len(table), size)
        _write_index(h5, {name: table[name].to_numpy() for name in INDEX_FIELDS})
        start = 0
        truncated = []  # videos kept with data.on_truncated: warn
        for shard in ordered:  # one shard in memory at a time
            with h5py.File(shard, "r") as src:
                if src.attrs.get("truncated", False):
                    truncated.append(str(src.attrs["video"]))
                if (int(src.attrs["size"]), src.attrs["resize"]) != (size, attrs["resize"]):
                    raise ValueError(f"shard '{shard}' has another image size or resize mode")
                images = src["images"][:]
            h5["images"][start : start + len(images)] = images
            start += len(images)
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


def read_manifest(path: str | Path) -> pd.DataFrame:
    """manifest.csv as a table, with the dtypes of keyframes.h5."""
    table = pd.read_csv(path, dtype={"video": str, "video_class": str, "source": str})
    return table.astype(
        {"row": np.int64, "frame": np.int32, "label": np.int8, "video_label": np.int8}
    )
