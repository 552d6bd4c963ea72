"""The feature cache and the Learner: cache == full model, training, determinism, resume, export.

Data: 64 learnable 32x32 images (porn rows reddish, non-porn bluish) in the contract's format;
the trunk's output is then 1x1x2048, so every test runs in seconds on 2 shared cores.
"""

from __future__ import annotations

import copy
import os

import h5py
import numpy as np
import pytest

from alnsfw.model import backend
from alnsfw.model.features import RowReader, compute_bank, compute_features, runs
from alnsfw.model.learner import build_learner, cross_entropy
from alnsfw.model.settings import CacheMode
from alnsfw.schema import schema_defaults

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
# Cached vs full model on the same weights: TF runs both graphs op by op (equal to 1e-6); XLA on
# JAX fuses the trunk differently in the two compiled graphs (measured max 3.6e-6).
EQUAL_ATOL = 1e-6 if BACKEND == "tensorflow" else 1e-5
# Naive vs cached training, two epochs: TF runs the same kernels on both paths. On JAX the two
# compiled graphs round differently, and Adam turns rounding-size gradient differences in
# near-zero components into full-size steps (measured: 3.6e-5 in val_loss, 1.2e-4 in a
# probability); a wrong path (other augmentation, dropout or features) differs by >1e-2.
TRAIN_ATOL = 1e-5 if BACKEND == "tensorflow" else 1e-3
N, SIZE = 64, 32
TRAIN, VAL, TEST = np.arange(0, 40), np.arange(40, 52), np.arange(52, 64)
FLOAT16_ATOL = (
    2e-3  # measured max |p16 - p32| = 4.6e-4 here (He-normal trunk, features ~N(0, 19^2))
)

CFG = {
    "model": {
        "weights": "he_normal",
        "weights_seed": 0,
        "input_size": SIZE,
        "trainable_from": "conv5_block3_1",
        "head": {"batchnorm": True, "dense": [16], "dropout": 0.2},
    },
    "training": {
        "learning_rate": 1e-3,
        "batch_size": 8,
        "augment": "none",
        "bank_views": 2,
        "augmentation": schema_defaults("training", "augmentation"),
    },
    "compute": {
        # the process's backend: tests/test_backends.py reruns this file under JAX
        "backend": BACKEND,
        "feature_cache": True,
        "feature_dtype": "float32",
        "jit_compile": False,
        "threads": 1,
        "predict_batch_size": 16,
        "preload_mb": 1024,
    },
}


def config(augment="none", cache=True, dtype="float32", **compute):
    cfg = copy.deepcopy(CFG)
    cfg["training"]["augment"] = augment
    cfg["compute"].update(feature_cache=cache, feature_dtype=dtype, **compute)
    return cfg


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """keyframes.h5 plus float32 / float16 feature caches and a 2-view bank."""
    root = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    labels = (rng.permutation(N) % 2).astype(np.int8)
    images = rng.integers(0, 140, (N, SIZE, SIZE, 3)).astype(np.uint8)
    images[labels == 1, :, :, 0] += 100
    images[labels == 0, :, :, 2] += 100
    keyframes = root / "keyframes.h5"
    with h5py.File(keyframes, "w") as f:
        f.create_dataset("images", data=images, chunks=(1, SIZE, SIZE, 3), compression="gzip")
        f["label"] = labels
    paths = {"keyframes": str(keyframes), "images": images, "labels": labels}
    for dtype in ("float32", "float16"):
        paths[dtype] = str(root / f"features-{dtype}.h5")
        compute_features(keyframes, paths[dtype], config(dtype=dtype))
    paths["bank"] = str(root / "bank.h5")
    compute_bank(keyframes, paths["bank"], config("bank"))
    return paths


def learner(data, cfg=None, seed=0, dtype="float32"):
    cfg = cfg or config(dtype=dtype)
    features = data[cfg["compute"]["feature_dtype"]]
    return build_learner(cfg, data["keyframes"], features, data["bank"], seed)


def labels_for(data, train, val=VAL):
    """The labels `fit` needs, as the loop passes them (the learner reads none itself)."""
    return {"train_labels": data["labels"][train], "val_labels": data["labels"][val]}


def test_cache_files_follow_the_contract(data):
    with h5py.File(data["float16"], "r") as f:
        features = f["features"]
        assert features.shape == (N, 1, 1, 2048) and features.dtype == np.float16
        assert f.attrs["layer"] == "conv5_block2_out" and f.attrs["input_size"] == SIZE
        assert features.fletcher32  # a corrupt chunk fails loudly when read
    with h5py.File(data["bank"], "r") as f, h5py.File(data["float32"], "r") as g:
        views = f["views"]
        assert views.shape == (N, 2, 1, 1, 2048) and f.attrs["views"] == 2 and views.fletcher32
        plain = g["features"][:8]
        assert not np.allclose(views[:8, 0], plain)  # augmented, not the plain features
        assert not np.allclose(views[:8, 0], views[:8, 1])


def test_row_reader_reads_any_order_in_batches(data):
    rows = np.array([5, 3, 4, 60, 3, 0])
    assert runs(np.unique(rows)) == [(0, 1), (3, 6), (60, 61)]
    for preload in (0, 1024):  # 0: read slices from HDF5; else whole array in memory
        reader = RowReader(data["keyframes"], "images", preload_mb=preload)
        assert (reader.array is None) == (preload == 0)
        np.testing.assert_array_equal(reader.take(rows), data["images"][rows])
        bank = RowReader(data["bank"], "views", preload_mb=preload)
        views = np.array([1, 0, 1, 0, 0, 1])
        with h5py.File(data["bank"], "r") as f:
            expected = np.stack([f["views"][r, v] for r, v in zip(rows, views)])
        np.testing.assert_array_equal(bank.take_views(rows, views), expected)


def test_top_model_on_cache_equals_full_model(data):
    """float32 cache: the same probabilities as the full model; float16: within FLOAT16_ATOL."""
    fast = learner(data)
    fast.fit(
        TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=1, patience=1
    )  # compare trained weights, not only init
    full = np.asarray(fast.net.full(data["images"].astype(np.float32), training=False))
    cached = fast.predict_proba(np.arange(N))
    np.testing.assert_allclose(cached, full, atol=EQUAL_ATOL)
    half = learner(data, dtype="float16")
    for target, source in zip(half.net.full.variables, fast.net.full.variables):
        target.assign(source)
    diff = np.abs(half.predict_proba(np.arange(N)) - full).max()
    assert diff < FLOAT16_ATOL, diff


def test_training_lowers_the_loss_and_learns(data):
    lrn = learner(data)
    result = lrn.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=3, patience=3)
    losses = [h["loss"] for h in result["history"]]
    assert result["epochs"] == 3 and losses[-1] < losses[0]
    assert set(result["history"][0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
    assert result["val_loss"] == min(h["val_loss"] for h in result["history"])
    p = lrn.predict_proba(TEST)
    assert p.shape == (len(TEST), 2) and p.dtype == np.float32
    assert np.mean(p.argmax(1) == data["labels"][TEST]) >= 0.75


def test_early_stopping_restores_the_best_weights(data):
    lrn = learner(data)
    result = lrn.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=4, patience=0)
    assert result["epochs"] <= 4
    val = lrn.predict_proba(VAL)
    assert cross_entropy(val, data["labels"][VAL]) == pytest.approx(result["val_loss"], abs=1e-5)


@pytest.mark.parametrize("augment", ["bank"])  # bank: every seeded draw of "none" + the views
def test_same_seed_same_results(data, augment):
    cfg = config(augment)
    runs_ = []
    for _ in range(2):
        lrn = learner(data, cfg, seed=3)
        history = lrn.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=2, patience=2)[
            "history"
        ]
        runs_.append((history, lrn.predict_proba(TEST)))
    assert runs_[0][0] == runs_[1][0]
    np.testing.assert_array_equal(runs_[0][1], runs_[1][1])
    other = learner(data, cfg, seed=4)
    other.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=2, patience=2)
    assert not np.array_equal(other.predict_proba(TEST), runs_[0][1])


@pytest.mark.parametrize("augment", ["bank", "online"])
def test_save_load_continues_identically(data, augment, tmp_path):
    cfg = config(augment)
    first = learner(data, cfg, seed=1)
    first.fit(TRAIN[:24], VAL, **labels_for(data, TRAIN[:24]), max_epochs=1, patience=1)
    first.save(tmp_path / "ckpt")
    first.fit(
        TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=2, patience=2
    )  # the uninterrupted run
    resumed = learner(data, cfg, seed=1)  # a new process would build the same, then load
    resumed.load(tmp_path / "ckpt")
    resumed.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=2, patience=2)
    np.testing.assert_array_equal(first.predict_proba(TEST), resumed.predict_proba(TEST))
    assert not list(tmp_path.glob("ckpt/.*tmp*"))
    with h5py.File(tmp_path / "ckpt" / "learner.h5", "r") as f:
        arrays = [d for g in f.values() for d in g.values() if d.ndim]
        assert arrays and all(d.fletcher32 for d in arrays)


def test_streaming_from_hdf5_equals_in_memory(data):
    """preload_mb 0 reads batches from HDF5 through tf.data: same numbers as in memory."""
    results = []
    for preload in (1024, 0):
        lrn = learner(data, config("bank", preload_mb=preload), seed=2)
        assert (lrn.features.array is None) == (preload == 0)
        history = lrn.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=1, patience=1)[
            "history"
        ]
        results.append((history, lrn.predict_proba(TEST[::-1])))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_reset_restores_initial_weights(data):
    lrn = learner(data)
    before = lrn.predict_proba(TEST)
    lrn.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=1, patience=1)
    assert not np.array_equal(lrn.predict_proba(TEST), before)
    lrn.reset()
    np.testing.assert_array_equal(lrn.predict_proba(TEST), before)
    assert int(lrn.optimizer.iterations.numpy()) == 0


def test_naive_and_cached_paths_train_identically(data):
    """augment none, no XLA: the reference (full model on images) and the cache agree."""
    naive = learner(data, config(cache=False))
    cached = learner(data)
    assert (naive.mode, cached.mode) == ("naive", "none")
    a = naive.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=2, patience=2)["history"]
    b = cached.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=2, patience=2)["history"]
    for x, y in zip(a, b):
        assert x["loss"] == pytest.approx(y["loss"], abs=TRAIN_ATOL)
        assert x["val_loss"] == pytest.approx(y["val_loss"], abs=TRAIN_ATOL)
    p_naive, p_cached = naive.predict_proba(TEST), cached.predict_proba(TEST)
    np.testing.assert_allclose(p_naive, p_cached, atol=TRAIN_ATOL)


def test_mode_errors_and_cache_mismatch(data):
    assert CacheMode.from_config(config("online")).name == "online"
    assert CacheMode.from_config(config("online", cache=False)).name == "naive"
    with pytest.raises(ValueError, match="feature_cache: true"):
        CacheMode.from_config(config("bank", cache=False))
    cfg = config()
    cfg["model"]["weights_seed"] = 1  # another trunk than the cache was computed with
    with pytest.raises(ValueError, match="does not match this model"):
        learner(data, cfg)
    cfg = config("bank")
    cfg["training"]["augmentation"]["rotation"] = 0.2  # the bank was drawn with 0.05
    with pytest.raises(ValueError, match="recompute the bank"):
        learner(data, cfg)


@pytest.mark.parametrize("augment", ["bank", "online"])
def test_epoch_in_one_graph_equals_the_per_batch_loop(data, augment):
    """EpochTrainer on TensorFlow runs an epoch in one tf.function, gathering the batches from
    the in-memory table inside it, or from batches made in Python (in chunks of 3 batches here,
    so chunk edges are crossed), and TablePredictor predicts in one; `train_on_batch` and
    `predict_on_batch` per batch are the reference."""
    histories, probabilities = [], []
    for variant in ("per batch", "chunks", "table"):
        lrn = learner(data, config(augment), seed=5)
        trainer = lrn._epochs  # noqa: SLF001
        if variant != "per batch" and not trainer.in_graph:
            pytest.skip(f"{BACKEND} trains batch by batch (EpochTrainer.in_graph is False)")
        trainer.in_graph = lrn._predictor.in_graph = variant != "per batch"  # noqa: SLF001
        if variant == "chunks":  # the trainer alone makes its batches in Python
            trainer.tables = backend.ResidentTables(limit_mb=0)
        trainer.chunk_bytes = 3 * lrn.batch_size * int(np.prod(lrn.train_model.input_shape[1:])) * 4
        assert trainer.holds(lrn._train_source().array) == (variant == "table")  # noqa: SLF001
        history = lrn.fit(TRAIN, VAL, **labels_for(data, TRAIN), max_epochs=2, patience=2)
        histories.append(history["history"])
        probabilities.append(lrn.predict_proba(TEST))
        if variant == "table":  # one tensor per array, shared by the trainer and the predictor
            assert lrn._predictor.tables is trainer.tables  # noqa: SLF001
            held = [array for array, _ in trainer.tables._held]  # noqa: SLF001
            assert len(held) == len({id(a) for a in held}) >= 1
    for other in (1, 2):
        np.testing.assert_array_equal(probabilities[0], probabilities[other])
        for per_batch, graph in zip(histories[0], histories[other]):
            assert per_batch["val_loss"] == graph["val_loss"]
            assert per_batch["loss"] == pytest.approx(graph["loss"], rel=1e-6)  # float32 sums
            assert per_batch["accuracy"] == pytest.approx(graph["accuracy"], abs=1e-6)
