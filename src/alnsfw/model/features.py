"""The feature cache: the frozen trunk's output for every keyframe, computed once, read in batches.

Everything below `conv5_block3` is frozen and runs in inference mode, so its output for an
un-augmented image never changes; it is ~95% of ResNet50V2's FLOPs. Computing it once per
(weights, input size) serves every fold, seed, strategy and cycle.

Files (see docs/CONTRACT.md): `{tag}.h5` with `features` [N,h,w,C] and `{tag}-bank.h5` with `views`
[N,K,h,w,C], K augmented views per image for `training.augment: bank`. Both carry attrs that tie
them to the trunk (`fingerprint`) so a job never trains on features of another trunk.

Reading: h5py's fancy indexing with a list of rows is ~80x slower than contiguous reads, so rows are
read as sorted runs of slices; an array that fits in `compute.preload_mb` is loaded whole instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from alnsfw.io import atomic_path
from alnsfw.model import backend
from alnsfw.model.network import Network, build_augmentation, build_network, trunk_fingerprint
from alnsfw.model.settings import ComputeSettings, ModelSettings, TrainingSettings
from alnsfw.model.tags import OPEN_NSFW_POOL, cache_layer, feature_tag

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 << 20  # target size of one HDF5 chunk of features


# --------------------------------------------------------------------------------------------
# Reading rows


def runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Split sorted unique `rows` into [start, stop) runs of consecutive indices."""
    if len(rows) == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(rows)]])
    return [(int(rows[a]), int(rows[b - 1]) + 1) for a, b in zip(starts, stops)]


class RowReader:
    """Rows of an HDF5 dataset (first axis), in any order, read fast.

    Holds the whole array in memory when it is at most `preload_mb` (demo sizes), else reads
    each request as sorted contiguous slices (a paper-size float16 cache is 3.4 GB: never whole).
    """

    def __init__(self, path: str | Path, name: str, preload_mb: float = 1024) -> None:
        self.path = str(path)
        self._file = h5py.File(self.path, "r")
        self.dataset = self._file[name]
        self.shape = tuple(self.dataset.shape)
        self.attrs = dict(self.dataset.attrs) | dict(self._file.attrs)
        nbytes = int(np.prod(self.shape)) * self.dataset.dtype.itemsize
        self.array = self.dataset[()] if nbytes <= preload_mb * (1 << 20) else None

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The rows `rows` (any order, repeats allowed), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.array is not None:
            return self.array[rows]
        order = np.unique(rows)
        out = np.empty((len(order),) + self.shape[1:], dtype=self.dataset.dtype)
        pos = 0
        for start, stop in runs(order):
            self.dataset.read_direct(out, np.s_[start:stop], np.s_[pos : pos + stop - start])
            pos += stop - start
        return out[np.searchsorted(order, rows)]

    def take_views(self, rows: np.ndarray, views: np.ndarray) -> np.ndarray:
        """For a [N,K,...] dataset: view `views[i]` of row `rows[i]` (one read per item)."""
        rows, views = np.asarray(rows, dtype=np.int64), np.asarray(views, dtype=np.int64)
        if self.array is not None:
            return self.array[rows, views]
        out = np.empty((len(rows),) + self.shape[2:], dtype=self.dataset.dtype)
        for i in np.argsort(rows, kind="stable"):
            self.dataset.read_direct(out, np.s_[rows[i], views[i]], np.s_[i])
        return out

    def close(self) -> None:
        """Close the HDF5 file (the preloaded array, if any, stays usable)."""
        self._file.close()


def prefetched(make: Callable[[], Iterator[Any]], depth: int = 2) -> Iterator[Any]:
    """The items of `make()`, produced `depth` ahead in a thread.

    Reading the next batch from HDF5 then overlaps computing this one (the backends release the
    GIL while they compute); the order is unchanged, so results are too. Backend-neutral
    stand-in for tf.data's prefetch.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work() -> None:
        try:
            for item in make():
                if stop.is_set():
                    return
                items.put(item)
            items.put(done)
        except BaseException as err:  # handed to the consumer, raised there
            items.put(err)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                items.get(timeout=0.1)
            except queue.Empty:
                pass


# --------------------------------------------------------------------------------------------
# Writing the cache


def _chunk_rows(item_bytes: int, n: int) -> int:
    return max(1, min(64, n, CHUNK_BYTES // max(1, item_bytes)))


def _attrs(cfg: dict[str, Any], net: Network, keyframes_h5: str | Path, n: int) -> dict[str, Any]:
    m = ModelSettings.from_config(cfg)
    return {
        "layer": net.cache_layer,
        "tag": feature_tag(cfg),
        "weights": m.weights,
        "weights_seed": m.weights_seed,
        "input_size": m.input_size,
        "fingerprint": trunk_fingerprint(net),
        "keyframes": str(keyframes_h5),
        "n_rows": n,
        "backend": keras.backend.backend(),
    }


def _trunk_fn(net: Network, batch: int, threads: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """The trunk in inference mode on batches zero-padded to `batch` rows (one compiled shape).

    Compiled by the backend (predict_on_batch); XLA on JAX, a TF graph without XLA on
    TensorFlow (XLA ran the trunk 10x slower on CPU).
    """
    backend.force_jit(net.trunk, False)
    if net.cache_layer == OPEN_NSFW_POOL:
        return _open_nsfw_fn(threads)

    def run(x: np.ndarray) -> np.ndarray:
        n = len(x)
        if n < batch:
            x = np.concatenate([x, np.zeros((batch - n,) + x.shape[1:], x.dtype)])
        return np.asarray(net.trunk.predict_on_batch(x))[:n]

    return run


def _open_nsfw_fn(threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """model.trunk: open_nsfw: the pooled features by ONNX Runtime on the wheel's own file (the
    Keras trunk is the same graph, used where a Keras model is needed; equal within ~1e-5), on
    the job's `compute.threads` intra-op threads."""
    from alnsfw.model import open_nsfw

    def run(x: np.ndarray) -> np.ndarray:
        return open_nsfw.pooled_features(np.asarray(x, np.float32), threads)

    return run


def _batches(n: int, batch: int) -> list[tuple[int, int]]:
    return [(a, min(a + batch, n)) for a in range(0, n, batch)]


def compute_features(
    keyframes_h5: str | Path, out_h5: str | Path, cfg: dict[str, Any], net: Network | None = None
) -> dict[str, float]:
    """Write `features` [N,h,w,C] = trunk output of every keyframe, un-augmented, in row order.

    Batches of `compute.predict_batch_size` contiguous rows go through the trunk in inference mode;
    the file is written under a temporary name and renamed when complete. Returns the number of
    images and the seconds spent on them (model building excluded), for logs and benchmarks.
    `net`: the network built for this config (`compute_features_and_bank` shares one).
    """
    compute = ComputeSettings.from_config(cfg)
    backend.prepare(cfg, seed=0)
    net = net or build_network(cfg, seed=0, augment=False)
    dtype = np.dtype(compute.feature_dtype)
    batch = compute.predict_batch_size
    trunk = _trunk_fn(net, batch, compute.threads)
    shape = tuple(int(d) for d in net.trunk.output.shape[1:])
    start = time.perf_counter()
    with _cache_file(keyframes_h5, out_h5, cfg) as (images, dst):
        n = int(images.shape[0])
        item = int(np.prod(shape)) * dtype.itemsize
        out = dst.create_dataset(
            "features",
            shape=(n,) + shape,
            dtype=dtype,
            chunks=(_chunk_rows(item, n),) + shape if n else None,
            fletcher32=bool(n),  # a corrupt chunk fails loudly when read
        )
        for a, b in _batches(n, batch):
            x = images[a:b].astype(np.float32)
            out[a:b] = np.asarray(trunk(x)).astype(dtype)
            log.info("features: %d/%d images", b, n)
        dst.attrs.update(_attrs(cfg, net, keyframes_h5, n) | {"dtype": dtype.name})
    seconds = time.perf_counter() - start
    log.info("features of %d images in %.1f s -> %s", n, seconds, out_h5)
    return {"images": n, "seconds": seconds}


def compute_bank(
    keyframes_h5: str | Path, out_h5: str | Path, cfg: dict[str, Any], net: Network | None = None
) -> dict[str, float]:
    """Write `views` [N,K,h,w,C]: the trunk output of K random augmentations of every keyframe.

    For `training.augment: bank`: training then draws one view per image per epoch and runs the
    top model only. The views are drawn from `model.weights_seed`, so the bank is shared by all
    runs of a config. Chunks hold one view: training reads one random view per image. Returns
    the number of images, of views and the seconds spent on them.
    """
    compute, train = ComputeSettings.from_config(cfg), TrainingSettings.from_config(cfg)
    seed = ModelSettings.from_config(cfg).weights_seed
    backend.prepare(cfg, seed=seed)
    net = net or build_network(cfg, seed=0, augment=False)
    augmentation = build_augmentation(train.augmentation, seed=seed * 1000 + 7)
    k = train.bank_views
    dtype = np.dtype(compute.feature_dtype)
    batch = compute.predict_batch_size
    trunk = _trunk_fn(net, batch, compute.threads)

    # In one graph on TensorFlow (the layers' Python and eager dispatch per batch were 15% of
    # the bank's time); the same seeded random ops, so the same views (tests/test_model_learner).
    augmented = backend.graph_function(lambda x: augmentation(x, training=True))

    def augment(x: np.ndarray) -> np.ndarray:
        if augmentation is None:
            return x
        return np.asarray(keras.ops.convert_to_numpy(augmented(x)))

    shape = tuple(int(d) for d in net.trunk.output.shape[1:])
    start = time.perf_counter()
    with _cache_file(keyframes_h5, out_h5, cfg) as (images, dst):
        n = int(images.shape[0])
        out = dst.create_dataset(
            "views",
            shape=(n, k) + shape,
            dtype=dtype,
            chunks=(1, 1) + shape if n else None,
            fletcher32=bool(n),
        )
        for a, b in _batches(n, batch):
            x = images[a:b].astype(np.float32)
            for view in range(k):
                out[a:b, view] = np.asarray(trunk(augment(x))).astype(dtype)
            log.info("bank: %d/%d images x %d views", b, n, k)
        dst.attrs.update(
            _attrs(cfg, net, keyframes_h5, n)
            | {
                "dtype": dtype.name,
                "views": k,
                "augmentation": json.dumps(train.augmentation, sort_keys=True),
            }
        )
    seconds = time.perf_counter() - start
    log.info("bank of %d x %d views in %.1f s -> %s", n, k, seconds, out_h5)
    return {"images": n, "views": k, "seconds": seconds}


def compute_features_and_bank(
    keyframes_h5: str | Path, features_h5: str | Path, bank_h5: str | Path, cfg: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """The feature cache, then the bank (training.augment: bank), in one process on one network.

    Why one job: each pays the TensorFlow import and the trunk's build and first trace, about
    6 s of the demo's 12 s feature job, while the other core waits (docs/speed.md). The files are
    those of the two functions called alone: the network is built from the config alone and the
    bank's augmentation has its own seeds.
    """
    backend.prepare(cfg, seed=0)
    net = build_network(cfg, seed=0, augment=False)
    return {
        "features": compute_features(keyframes_h5, features_h5, cfg, net=net),
        "bank": compute_bank(keyframes_h5, bank_h5, cfg, net=net),
    }


@contextlib.contextmanager
def _cache_file(
    keyframes_h5: str | Path, out_h5: str | Path, cfg: dict[str, Any]
) -> Iterator[tuple[h5py.Dataset, h5py.File]]:
    """keyframes.h5's images (checked against model.input_size) and the new cache file, open
    under a temporary name that becomes `out_h5` only when the block completes."""
    with h5py.File(keyframes_h5, "r") as src, atomic_path(out_h5) as tmp:
        images = src["images"]
        _check_size(images.shape, cfg)
        with h5py.File(tmp, "w") as dst:
            yield images, dst


def _check_size(images_shape: tuple[int, ...], cfg: dict[str, Any]) -> None:
    size = ModelSettings.from_config(cfg).input_size
    if tuple(images_shape[1:]) != (size, size, 3):
        raise ValueError(
            f"keyframes are {images_shape[1]}x{images_shape[2]} but model.input_size is {size}; "
            "set keyframes.size and model.input_size to the same value."
        )


def check_cache(attrs: dict[str, Any], fingerprint: str, cfg: dict[str, Any], path: str) -> None:
    """Raise if a cache file was not computed with this trunk (`trunk_fingerprint`), size, layer."""
    problems = []
    if attrs.get("layer") != cache_layer(cfg):
        problems.append(f"layer {attrs.get('layer')} != {cache_layer(cfg)}")
    if int(attrs.get("input_size", -1)) != int(cfg["model"]["input_size"]):
        problems.append(f"input size {attrs.get('input_size')} != {cfg['model']['input_size']}")
    if attrs.get("fingerprint") != fingerprint:
        problems.append("trunk weights differ (fingerprint)")
    if problems:
        raise ValueError(
            f"feature cache {path} does not match this model: {'; '.join(problems)}. Delete it "
            "and let the workflow recompute it (rule cache_features)."
        )
