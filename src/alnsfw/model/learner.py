"""`Learner`: the narrow interface between the network and the active-learning loop.

The loop only calls fit / predict_proba / reset / save / load / save_weights with row indices
of keyframes.h5, and hands the labels of the rows it trains and validates on to `fit` (the
learner never reads labels itself, so a noisy or human annotator needs no change here). How the
rows become tensors is decided by the cache mode (alnsfw.model.settings.CacheMode: naive, online,
bank, none).

Backend-neutral: the training step is Keras' own (`compile` + `train_on_batch`), prediction is
`predict_on_batch`, so the same code runs on TensorFlow or JAX (alnsfw.model.backend).

Determinism: every random choice of training (epoch order, bank view) comes from one NumPy
Generator whose state is saved with the weights, and the plan of a whole `fit` is drawn before it
starts, so an interrupted and resumed run draws exactly what an uninterrupted one draws.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from alnsfw.io import atomic_path
from alnsfw.model import backend
from alnsfw.model.features import RowReader, check_cache, prefetched
from alnsfw.model.network import Network, build_network, require_top, trunk_fingerprint
from alnsfw.model.settings import CacheMode, ComputeSettings, ModelSettings, TrainingSettings
from alnsfw.model.weights import save_trainable_weights

log = logging.getLogger(__name__)

STATE_FILE = "learner.h5"
_EPS = 1e-7  # Keras' clipping epsilon in categorical cross-entropy


class Learner:
    """A ResNet50V2 classifier trained and scored by keyframe row index.

    Build with `build_learner`. Labels are 1 = porn; probabilities are [P(non-porn), P(porn)].
    """

    def __init__(
        self,
        cfg: dict[str, Any],
        keyframes_h5: str,
        features_h5: str | None,
        bank_h5: str | None,
        seed: int,
    ) -> None:
        self.cfg, self.seed = cfg, int(seed)
        self.training = TrainingSettings.from_config(cfg)
        self.compute = ComputeSettings.from_config(cfg)
        self.cache_mode = CacheMode.from_config(cfg)
        self.mode = self.cache_mode.name
        self.batch_size = self.training.batch_size
        self.predict_batch = self.compute.predict_batch_size
        preload = self.compute.preload_mb

        backend.prepare(cfg, self.seed)
        self.net: Network = build_network(cfg, seed=self.seed)
        self._fingerprint = trunk_fingerprint(self.net)
        cached = self.cache_mode.uses_cache
        trainable_from = ModelSettings.from_config(cfg).trainable_from
        top = require_top(self.net, trainable_from) if cached else None

        with h5py.File(keyframes_h5, "r") as f:
            self.n_rows = int(f["images"].shape[0])
        self.images = (
            RowReader(keyframes_h5, "images", preload) if self.cache_mode.reads_images else None
        )
        self.features = self.bank = None
        if cached:
            if not features_h5:
                raise ValueError(f"mode {self.mode} needs the feature cache file (features_h5)")
            self.features = RowReader(features_h5, "features", preload)
            check_cache(self.features.attrs, self._fingerprint, cfg, features_h5)
        if self.cache_mode.uses_bank:
            if not bank_h5:
                raise ValueError("training.augment: bank needs the bank file (bank_h5)")
            self.bank = RowReader(bank_h5, "views", preload)
            check_cache(self.bank.attrs, self._fingerprint, cfg, bank_h5)
        self._check_rows(self.n_rows)
        readers = [r for r in (self.images, self.features, self.bank) if r is not None]
        log.info(
            "cache mode %s, compute.preload_mb %g: %s",
            self.mode,
            preload,
            "; ".join(
                f"{Path(r.path).name} {'in memory' if r.array is not None else 'streamed'}"
                for r in readers
            ),
        )

        # Which model trains, which one scores; they share the trainable layers.
        self.train_model = top if self.cache_mode.trains_top else self.net.full
        self.predict_model = top if cached else self.net.full
        self.optimizer = keras.optimizers.Adam(learning_rate=self.training.learning_rate)
        self.optimizer.build(self.train_model.trainable_variables)
        self.train_model.compile(
            optimizer=self.optimizer,
            loss=keras.losses.CategoricalCrossentropy(),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            jit_compile=False,  # decided by backend.force_jit below
        )
        # XLA on TensorFlow (compute.jit_compile) only ever for the top model: the full model's
        # gradient has MaxPool and augmentation ops without deterministic XLA kernels, and XLA's
        # CPU convolutions ran the trunk 10x slower than TF's. Measured on 2 CPU cores, XLA also
        # slowed the top model 15-60x at 64 px and only matched TF at 224 px, hence off by
        # default. JAX always compiles with XLA (backend.compile_options).
        jit = self.compute.jit_compile
        backend.force_jit(self.train_model, jit and self.train_model is top)
        backend.force_jit(self.predict_model, jit and cached)
        tables = backend.ResidentTables()  # one tensor per in-memory cache, for both
        self._epochs = backend.EpochTrainer(self.train_model, self.batch_size, tables=tables)
        self._predictor = backend.TablePredictor(
            self.predict_model, self.predict_batch, tables=tables
        )
        # The state worth saving: everything but the frozen layers' weights, which never change
        # and are rebuilt identically from the config (the trunk fingerprint checks that).
        frozen = {
            id(v)
            for layer in self.net.base.layers[: self.net.first_trainable]
            for v in layer.variables
        }
        self._state_variables = [v for v in self.net.full.variables if id(v) not in frozen]
        self.rng = np.random.default_rng(self.seed)
        self._initial = self._snapshot()

    # ----------------------------------------------------------------------------------------
    # The interface

    def fit(
        self,
        train_rows: np.ndarray,
        val_rows: np.ndarray,
        max_epochs: int,
        patience: int,
        *,
        train_labels: np.ndarray,
        val_labels: np.ndarray,
    ) -> dict[str, Any]:
        """Train on `train_rows` for at most `max_epochs`, early-stopping on `val_rows`' loss.

        `train_labels` / `val_labels` are the labels (1 = porn) of those rows, in the same order,
        as the caller's annotator gave them. Adam, categorical cross-entropy, batches of
        `training.batch_size`; the weights of the epoch with the lowest validation loss are
        restored (keras EarlyStopping). Returns {"epochs", "val_loss" (best), "history":
        [{epoch, loss, accuracy, val_loss, val_accuracy}, ...]}.
        """
        train_rows = np.asarray(train_rows, dtype=np.int64)
        val_rows = np.asarray(val_rows, dtype=np.int64)
        train_labels = np.asarray(train_labels, dtype=np.int64)
        val_labels = np.asarray(val_labels, dtype=np.int64)
        if len(train_rows) == 0 or len(val_rows) == 0 or max_epochs < 1:
            raise ValueError("fit needs training rows, validation rows and max_epochs >= 1")
        if train_labels.shape != train_rows.shape or val_labels.shape != val_rows.shape:
            raise ValueError("fit needs one label per training and validation row")
        onehot = np.zeros((self.n_rows, 2), dtype=np.float32)
        onehot[train_rows, train_labels] = 1.0  # targets looked up by row, in batch order
        plan = self._draw_plan(train_rows, int(max_epochs))
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=int(patience), restore_best_weights=True
        )
        stopper.set_model(self.train_model)
        self.train_model.stop_training = False
        stopper.on_train_begin()
        history: list[dict[str, float]] = []
        for epoch in range(int(max_epochs)):
            start = time.perf_counter()
            loss, accuracy = self._train_epoch(plan[epoch], onehot)
            val = self.predict_proba(val_rows)
            row = {
                "epoch": epoch,
                "loss": loss,
                "accuracy": accuracy,
                "val_loss": cross_entropy(val, val_labels),
                "val_accuracy": float(np.mean(val.argmax(1) == val_labels)),
            }
            history.append(row)
            stopper.on_epoch_end(epoch, dict(row))
            stop = bool(self.train_model.stop_training)
            log.info(
                "epoch %d/%d: loss %.4f acc %.3f val_loss %.4f val_acc %.3f (%.1f s); %s",
                epoch + 1,
                int(max_epochs),
                row["loss"],
                row["accuracy"],
                row["val_loss"],
                row["val_accuracy"],
                time.perf_counter() - start,
                _stopping_note(stopper, epoch, int(max_epochs), int(patience), stop),
            )
            if stop:
                break
        stopper.on_train_end()
        return {
            "epochs": len(history),
            "val_loss": float(min(r["val_loss"] for r in history)),
            "history": history,
        }

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """[len(rows), 2] float32 probabilities in inference mode (no augmentation), any order."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.unique(rows)
        source = self.features if self.features is not None else self.images
        if self._predictor.holds(source.array):  # batches made inside the graph
            return self._predictor.predict(source.array, order)[np.searchsorted(order, rows)]
        out = np.empty((len(order), 2), dtype=np.float32)
        batches = _streamed(
            lambda: _padded_batches(source, order, self.predict_batch), source.array is None
        )
        pos = 0
        for x, n in batches:
            out[pos : pos + n] = np.asarray(self.predict_model.predict_on_batch(x))[:n]
            pos += n
        return out[np.searchsorted(order, rows)]

    def restart(self) -> None:
        """Back to the state just after the build, RNG included: another run of the same seed
        starts here as it would from a fresh build (alnsfw.al.jobs.ReusedLearners)."""
        self._restore(self._initial, rng=True)
        self.train_model.reset_metrics()

    def reset(self) -> None:
        """Back to the initial weights and a fresh optimizer (for `al.warm_start: false`).

        The RNG stream goes on: a restarted cycle still draws new epoch orders.
        """
        self._restore(self._initial, rng=False)

    def save(self, directory: str | Path) -> None:
        """Write weights, optimizer state and RNG state to `directory`/learner.h5, atomically.

        Frozen weights are left out (they are rebuilt from the config): ~60 MB instead of 140.
        """
        state = self._snapshot()
        with atomic_path(Path(directory) / STATE_FILE) as tmp, h5py.File(tmp, "w") as f:
            for group, values in state.items():
                if group == "rng":
                    continue
                g = f.create_group(group)
                for i, value in enumerate(values):
                    g.create_dataset(f"{i:05d}", data=value, **_checksummed(value))
            f.attrs["rng"] = json.dumps(state["rng"])
            f.attrs["mode"] = self.mode
            f.attrs["seed"] = self.seed
            f.attrs["trunk_fingerprint"] = self._fingerprint

    def load(self, directory: str | Path) -> None:
        """Restore what `save` wrote: the run then continues exactly as if never interrupted."""
        path = Path(directory) / STATE_FILE
        with h5py.File(path, "r") as f:
            if f.attrs["mode"] != self.mode:
                raise ValueError(f"{path} was saved in mode {f.attrs['mode']}, not {self.mode}")
            if f.attrs["trunk_fingerprint"] != self._fingerprint:
                raise ValueError(f"{path} was saved with another frozen trunk (model.weights)")
            state: dict[str, Any] = {
                group: [f[group][k][()] for k in sorted(f[group])]
                for group in ("variables", "optimizer")
            }
            state["rng"] = json.loads(f.attrs["rng"])
        self._restore(state)

    def save_weights(self, path: str | Path) -> None:
        """Write the trained layers' weights to `path` (rule export_model reads them).

        See alnsfw.model.weights: only what training changes, by layer name, atomically.
        """
        save_trainable_weights(self.net, path)

    # ----------------------------------------------------------------------------------------
    # Strategy support (issue 13): embeddings and MC-dropout probabilities for given rows.
    # Self-contained on purpose (Keras APIs only: calling layers, predict_on_batch, no tf.*),
    # so it moves as one block into a backend-neutral learner. Asked for only by strategies
    # that declare embeddings or MC samples (coreset, badge, bald).

    def embed(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Penultimate embeddings [n, d] and probabilities [n, 2] of `rows`, one inference pass.

        The embedding is the input of the head's dropout (= of its last Dense layer in
        inference): 256-d with the default head, the 2048-d pooled trunk with `dense: []`. The
        probabilities are the last Dense layer applied to it, i.e. predict_proba's.
        """
        parts = self._strategy_parts()
        rows = np.asarray(rows, dtype=np.int64)
        order = np.unique(rows)
        source = self.features if self.features is not None else self.images
        chunks = []
        for a in range(0, len(order), self.predict_batch):
            x = source.take(order[a : a + self.predict_batch]).astype(np.float32)
            chunks.append(np.asarray(parts["embedder"].predict_on_batch(x), dtype=np.float32))
        width = int(parts["embedder"].output.shape[-1])
        emb = np.concatenate(chunks) if chunks else np.empty((0, width), np.float32)
        emb = emb[np.searchsorted(order, rows)]
        return emb, self._last_layer(emb)

    def mc_dropout_proba(self, rows: np.ndarray, samples: int, seed: int) -> np.ndarray:
        """[samples, n, 2] probabilities with the head's dropout active, BatchNorm in inference.

        Everything before the dropout is deterministic in inference mode, so it runs once
        (`embed`) and only dropout and the last Dense layer run `samples` times: the same
        distribution as `samples` whole passes, at the cost of about one. The masks are drawn
        from NumPy's generator seeded with `seed` (inverted dropout, like keras' Dropout), so
        the result is a function of the weights, `rows` and `seed`, and a resumed run redraws it.
        """
        emb, _ = self.embed(rows)
        rate = self._strategy_parts()["rate"]
        rng = np.random.default_rng(int(seed))
        out = np.empty((int(samples), len(emb), 2), dtype=np.float32)
        for t in range(int(samples)):
            keep = rng.random(emb.shape, dtype=np.float32) >= rate
            out[t] = self._last_layer(np.where(keep, emb / (1.0 - rate), 0.0).astype(np.float32))
        return out

    def _last_layer(self, emb: np.ndarray) -> np.ndarray:
        """The head's last Dense layer (softmax) on embeddings, as a NumPy array."""
        final = self._strategy_parts()["final"]
        return np.asarray(keras.ops.convert_to_numpy(final(emb)), dtype=np.float32)

    def _strategy_parts(self) -> dict[str, Any]:
        """Built once: a model from the scoring input to the embedding (sharing the layers of
        `predict_model`, so it follows training), the last Dense layer and the dropout rate.

        Needs the head's shape from build_head: ... -> Dropout -> Dense(2, softmax), the head
        being the last layer of `predict_model` (a chain of layers from its input).
        """
        parts = getattr(self, "_strategy_parts_cache", None)
        if parts is not None:
            return parts
        head, model = self.net.head, self.predict_model
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        final = head.layers[-1]
        dropout = head.layers[-2]
        if layers[-1] is not head or not (
            isinstance(final, keras.layers.Dense) and isinstance(dropout, keras.layers.Dropout)
        ):
            raise ValueError(
                "embeddings and MC dropout need a head that ends Dropout -> Dense and is the "
                "last layer of the scoring model (alnsfw.model.network.build_head)"
            )
        head_pre = keras.Model(head.input, dropout.input, name="head_embedding")
        x = inputs = keras.Input(shape=tuple(model.input.shape[1:]), name="embed_input")
        for layer in layers[:-1]:
            x = layer(x)
        parts = {
            "embedder": keras.Model(inputs, head_pre(x), name="embedder"),
            "final": final,
            "rate": float(dropout.rate),
        }
        self._strategy_parts_cache = parts
        return parts

    # ----------------------------------------------------------------------------------------
    # Internals

    def _check_rows(self, n: int) -> None:
        for reader in (self.images, self.features, self.bank):
            if reader is not None and len(reader) != n:
                raise ValueError(f"{reader.path} has {len(reader)} rows, keyframes.h5 has {n}")
        if self.bank is None:
            return
        views = self.training.bank_views
        augmentation = json.dumps(self.training.augmentation, sort_keys=True)
        if self.bank.shape[1] != views or self.bank.attrs.get("augmentation") != augmentation:
            raise ValueError(
                f"{self.bank.path} holds {self.bank.shape[1]} views made with augmentation "
                f"{self.bank.attrs.get('augmentation')}, but the config asks for {views} views "
                f"with {augmentation}: recompute the bank (rule cache_features)."
            )

    def _draw_plan(self, rows: np.ndarray, epochs: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each epoch's row order (and bank view per row), drawn up front for all epochs.

        Drawing the same amount whatever early stopping does keeps the RNG stream independent of
        where training stopped, which makes resume-after-kill identical.
        """
        views = self.bank.shape[1] if self.bank is not None else 1
        plan = []
        for _ in range(epochs):
            order = self.rng.permutation(rows)
            plan.append((order, self.rng.integers(views, size=len(order))))
        return plan

    def _train_epoch(
        self, plan: tuple[np.ndarray, np.ndarray], onehot: np.ndarray
    ) -> tuple[float, float]:
        """One epoch of Keras' train step; returns the epoch's mean loss and accuracy."""
        order, views = plan
        source = self._train_source()
        if self._epochs.holds(source.array):  # batches gathered inside the training graph
            index = np.stack([order, views], 1) if self.cache_mode.uses_bank else order
            return self._epochs.epoch_on_table(source.array, index, onehot[order])
        batches = _streamed(lambda: self._train_batches(order, views, onehot), source.array is None)
        return self._epochs.epoch(batches)

    def _train_batches(
        self, order: np.ndarray, views: np.ndarray, onehot: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for a in range(0, len(order), self.batch_size):
            rows = order[a : a + self.batch_size]
            if self.cache_mode.uses_bank:
                x = self.bank.take_views(rows, views[a : a + self.batch_size])
            elif self.cache_mode.trains_top:
                x = self.features.take(rows)
            else:
                x = self.images.take(rows)
            yield x.astype(np.float32), onehot[rows]

    def _train_source(self) -> RowReader:
        if self.cache_mode.trains_top:
            return self.bank if self.cache_mode.uses_bank else self.features
        return self.images

    def _snapshot(self) -> dict[str, Any]:
        return {
            "variables": [np.array(v.numpy()) for v in self._state_variables],
            "optimizer": [np.array(v.numpy()) for v in self.optimizer.variables],
            "rng": self.rng.bit_generator.state,
        }

    def _restore(self, state: dict[str, Any], rng: bool = True) -> None:
        for target, group in (
            (self._state_variables, "variables"),
            (self.optimizer.variables, "optimizer"),
        ):
            values = state[group]
            if len(values) != len(target):
                raise ValueError(f"saved {group} has {len(values)} arrays, model has {len(target)}")
            for variable, value in zip(target, values):
                variable.assign(value)
        if rng:
            self.rng.bit_generator.state = state["rng"]


# --------------------------------------------------------------------------------------------
# Helpers


def build_learner(
    cfg: dict[str, Any],
    keyframes_h5: str,
    features_h5: str | None,
    bank_h5: str | None,
    seed: int,
) -> Learner:
    """A Learner for `cfg` (sections model, training, compute), seeded with the run's `seed`.

    Sets up the backend first (alnsfw.model.backend.prepare: threads, seeds, determinism,
    devices), so call it before any other Keras work.
    """
    return Learner(cfg, keyframes_h5, features_h5, bank_h5, seed)


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean categorical cross-entropy, clipped like Keras' (so it matches the training loss)."""
    p = np.clip(probabilities[np.arange(len(labels)), labels].astype(np.float64), _EPS, 1 - _EPS)
    return float(-np.mean(np.log(p)))


def _stopping_note(
    stopper: keras.callbacks.EarlyStopping, epoch: int, epochs: int, patience: int, stop: bool
) -> str:
    """What early stopping decided after `epoch` (0-based), for the job log."""
    best = int(stopper.best_epoch) + 1
    if stop:
        return (
            f"stop: val_loss not better for {stopper.wait} epoch(s) (patience {patience}), "
            f"restoring epoch {best}"
        )
    note = "best so far" if stopper.wait == 0 else f"no improvement ({stopper.wait}/{patience})"
    if epoch + 1 == epochs:
        note += f"; last epoch, restoring epoch {best}"
    return note


def _checksummed(value: np.ndarray) -> dict[str, Any]:
    """h5py options for a checksummed dataset: Fletcher-32 per chunk (needs chunks; a scalar
    cannot have them)."""
    return {"fletcher32": True, "chunks": True} if np.ndim(value) else {}


def _padded_batches(
    source: RowReader, rows: np.ndarray, batch: int
) -> Iterator[tuple[np.ndarray, int]]:
    """Batches of exactly `batch` rows (the last one zero-padded) and the count of real rows.

    One shape means one XLA compilation of the predict function, whatever the pool size.
    """
    for a in range(0, len(rows), batch):
        x = source.take(rows[a : a + batch]).astype(np.float32)
        n = len(x)
        if n < batch:
            x = np.concatenate([x, np.zeros((batch - n,) + x.shape[1:], np.float32)])
        yield x, n


def _streamed(make: Any, streaming: bool) -> Iterator[Any]:  # noqa: ANN401
    """Batches of `make()`: read ahead in a thread when they stream from HDF5 (reading the next
    batch overlaps computing this one), else straight from memory, where a thread only adds
    overhead."""
    return prefetched(make) if streaming else make()
