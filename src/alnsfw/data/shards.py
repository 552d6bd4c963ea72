"""One video's keyframe shard (HDF5): its writer, and the datasets shards and keyframes.h5 share.

Apart from alnsfw.data.store (the merge, the manifest), so the 1-per-video keyframe jobs import
h5py and NumPy only: pandas' import alone cost 0.2-0.4 CPU-s per job, 40-90 CPU-s of the demo's
220 keyframe jobs. The layout of the datasets is described in alnsfw.data.store.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from alnsfw.data.keyframes import Keyframes
from alnsfw.data.layout import class_label
from alnsfw.io import atomic_path

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
_GZIP_LEVEL = 4


def _filters(n: int) -> dict[str, Any]:
    """Fletcher-32 per chunk: overwritten bytes fail the read (alnsfw.integrity then names the file
    and its rebuild) instead of feeding other pixels or labels to every later job. An empty
    dataset (a video without keyframes) cannot be chunked, and has nothing to check."""
    return {"fletcher32": True} if n else {}


def create_images(h5: h5py.File, n: int, size: int) -> None:
    h5.create_dataset(
        "images",
        shape=(n, size, size, 3),
        dtype=np.uint8,
        chunks=(1, size, size, 3) if n else None,
        compression="gzip" if n else None,
        compression_opts=_GZIP_LEVEL if n else None,
        **_filters(n),
    )


def write_index(h5: h5py.File, columns: Mapping[str, Any]) -> None:
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
        create_images(h5, n, size)
        h5["images"][:] = keyframes.images
        write_index(
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
        if keyframes.full_jpeg is not None:
            write_full_jpeg(h5, keyframes.full_jpeg, [keyframes.fps] * n)
        h5.attrs.update({"size": size, "video": video, **attrs})


def write_full_jpeg(h5: h5py.File, jpegs: list[bytes], fps: list[float]) -> None:
    """`full_jpeg` (variable-length bytes: each keyframe at the video's resolution, JPEG) and
    `video_fps` per row (keyframes.full_images): a campaign's task images, with no decode."""
    ds = h5.create_dataset("full_jpeg", shape=(len(jpegs),), dtype=h5py.vlen_dtype(np.uint8))
    for i, data in enumerate(jpegs):
        ds[i] = np.frombuffer(data, dtype=np.uint8)
    h5.create_dataset("video_fps", data=np.asarray(fps, dtype=np.float32), **_filters(len(fps)))
