"""The active-learning loop: train, test, query, reveal, until the training pool is labelled.

As in baal's ActiveLearningLoop, the loop knows nothing about the network: it talks to a Learner
(fit / predict_proba / reset / save / load) and to a strategy (probabilities -> ranking). The
same loop therefore drives the full ResNet50V2, the feature-cache path, and the NumPy fake of the
tests.

Cycle c (0-based): train on the labelled set (early stopping on the validation rows, which are
never in the pool), test on the fold's test rows, record a cycles.csv row, then score the
unlabelled pool and reveal the top `query_size` items (fewer when fewer are left). The cycle that
trains on 100% of the pool is the last one, and has nothing left to query.

After every cycle a checkpoint is saved (alnsfw.al.checkpoint); on start the loop resumes after
the last saved cycle. Everything random is drawn from generators that are seeded per run and saved
in the checkpoint, so a resumed run writes the same cycles.csv as an uninterrupted one, except
the *_seconds timing columns, which measure wall time and differ between any two runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np
import pandas as pd

from alnsfw.al.checkpoint import CheckpointStore
from alnsfw.al.pool import PoolState, cycle_sizes, initial_labelled_mask
from alnsfw.al.seeding import RunSeeds
from alnsfw.al.strategies import get_strategy
from alnsfw.metrics import METRIC_COLUMNS, binary_metrics, predicted_labels

log = logging.getLogger(__name__)

CYCLE_COLUMNS = [
    "cycle",
    "n_labelled",
    "pct_labelled",
    "n_labelled_porn",
    "n_labelled_nonporn",
    "n_test",
    *METRIC_COLUMNS,
    "val_loss",
    "epochs",
    "train_seconds",
    "score_seconds",
    "test_seconds",
]
TIMING_COLUMNS = ["train_seconds", "score_seconds", "test_seconds"]
QUERY_COLUMNS = ["cycle", "row", "score", "rank", "label"]
PREDICTION_COLUMNS = ["row", "label", "prob_porn", "pred"]


class Learner(Protocol):
    """What the loop needs from a model (implemented by alnsfw.model.learner.Learner)."""

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
        """Train on rows with the labels the annotator gave (the learner reads none itself);
        returns at least {"epochs": int, "val_loss": float, "history": [...]}."""
        ...

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities [n, 2] of keyframe rows; column 1 = P(porn)."""
        ...

    def reset(self) -> None:
        """Return to the initial weights."""
        ...

    def save(self, directory: str) -> None:
        """Write weights, optimizer and RNG state into `directory`."""
        ...

    def load(self, directory: str) -> None:
        """Inverse of save."""
        ...


@dataclass(frozen=True)
class Split:
    """Keyframe rows of one fold and seed: training pool, validation (early stopping), test."""

    pool: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Split:
        """From the split json (results/splits/fold{fold}/seed{seed}.json)."""
        split = cls(
            pool=np.asarray(data["pool"], dtype=np.int64),
            val=np.asarray(data["val"], dtype=np.int64),
            test=np.asarray(data["test"], dtype=np.int64),
        )
        split.check()
        return split

    def check(self) -> None:
        """Refuse overlapping parts: a test or validation row in the pool would leak labels."""
        for a, b in (("pool", "val"), ("pool", "test"), ("val", "test")):
            shared = np.intersect1d(getattr(self, a), getattr(self, b))
            if len(shared):
                raise ValueError(f"split: {len(shared)} rows are in both {a} and {b}")
        if len(self.pool) == 0 or len(self.test) == 0:
            raise ValueError("split: the pool and the test set must not be empty")


@dataclass(frozen=True)
class LoopSettings:
    """The config values the loop uses (al.* and training.max_epochs / patience)."""

    initial_fraction: float
    query_size: int
    warm_start: bool
    max_epochs: int
    patience: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LoopSettings:
        """From a config with `al` and `training` sections."""
        al, training = config["al"], config["training"]
        return cls(
            initial_fraction=float(al["initial_fraction"]),
            query_size=int(al["query_size"]),
            warm_start=bool(al["warm_start"]),
            max_epochs=int(training["max_epochs"]),
            patience=int(training["patience"]),
        )


@dataclass
class RunResult:
    """The three tables a run writes (cycles.csv, queries.csv, predictions.csv)."""

    cycles: pd.DataFrame
    queries: pd.DataFrame
    predictions: pd.DataFrame


def predictions_table(rows: np.ndarray, labels: np.ndarray, proba: np.ndarray) -> pd.DataFrame:
    """predictions.csv: row, true label, P(porn), predicted class."""
    return pd.DataFrame(
        {
            "row": np.asarray(rows, dtype=np.int64),
            "label": np.asarray(labels, dtype=np.int64),
            "prob_porn": np.asarray(proba, dtype=np.float64)[:, 1],
            "pred": predicted_labels(proba).astype(np.int64),
        },
        columns=PREDICTION_COLUMNS,
    )


def queries_table(pool: PoolState, labels: np.ndarray) -> pd.DataFrame:
    """queries.csv: one line per queried item; rank 0 = most informative of its query."""
    records = [
        (q.cycle, row, score, rank, int(labels[row]))
        for q in pool.queries
        for rank, (row, score) in enumerate(zip(q.rows, q.scores))
    ]
    return pd.DataFrame.from_records(records, columns=QUERY_COLUMNS)


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:  # noqa: ANN401
    """fn(*args) and its wall time in seconds."""
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


class _RunState:
    """Everything the loop carries between cycles; its to_dict is what a checkpoint stores."""

    def __init__(
        self,
        pool: PoolState,
        rng: np.random.Generator,
        cycles: list[dict[str, Any]],
        predictions: dict[str, list] | None,
    ) -> None:
        self.pool = pool
        self.rng = rng
        self.cycles = cycles
        self.predictions = predictions

    @property
    def finished(self) -> bool:
        """True once a cycle trained on the whole pool."""
        return bool(self.cycles) and self.cycles[-1]["n_labelled"] == self.pool.n_pool

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_cycle": len(self.cycles),
            "finished": self.finished,
            "pool": self.pool.to_dict(),
            "strategy_rng": self.rng.bit_generator.state,
            "cycles": self.cycles,
            "predictions": self.predictions,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _RunState:
        rng = np.random.default_rng()
        rng.bit_generator.state = data["strategy_rng"]
        cycles = [
            {k: (float("nan") if v is None else v) for k, v in row.items()}
            for row in data["cycles"]
        ]
        return cls(PoolState.from_dict(data["pool"]), rng, cycles, data["predictions"])


def _fresh_state(split: Split, labels: np.ndarray, frac: float, seeds: RunSeeds) -> _RunState:
    """Cycle-0 state: the per-class initial set and a fresh strategy generator."""
    mask = initial_labelled_mask(labels[split.pool], frac, np.random.default_rng(seeds.initial))
    pool = PoolState(pool_rows=split.pool, labelled=mask)
    return _RunState(pool, np.random.default_rng(seeds.strategy), [], None)


def run_active_learning(
    learner: Learner,
    split: Split,
    labels: np.ndarray,
    strategy: str,
    settings: LoopSettings,
    seeds: RunSeeds,
    checkpoints: CheckpointStore | None = None,
) -> RunResult:
    """Run (or resume) one active-learning run and return its tables.

    `labels` are the per-frame labels of all keyframe rows (the simulated annotator and the test
    truth). `learner` must be freshly built from `seeds.learner`: on resume its saved state is
    loaded over it; on a fresh start it is used as built.
    """
    spec = get_strategy(strategy)
    split.check()
    labels = np.asarray(labels)
    saved = checkpoints.load() if checkpoints is not None else None
    if saved is not None:
        state = _RunState.from_dict(saved.state)
        if not np.array_equal(state.pool.pool_rows, split.pool):
            raise ValueError("checkpoint pool differs from the split's pool")
        learner.load(str(saved.learner_dir))
        log.info("resuming after cycle %d from %s", len(state.cycles) - 1, checkpoints.directory)
    else:
        state = _fresh_state(split, labels, settings.initial_fraction, seeds)

    pool = state.pool
    n_cycles = len(state.cycles)
    if not state.finished:
        n_cycles += len(cycle_sizes(pool.n_pool, pool.n_labelled, settings.query_size))
    log.info(
        "strategy %s: pool %d, initial/now labelled %d, query size %d, %d cycles",
        strategy,
        pool.n_pool,
        pool.n_labelled,
        settings.query_size,
        n_cycles,
    )
    test_labels = labels[split.test]
    while not state.finished:
        cycle = len(state.cycles)
        started = time.perf_counter()
        if not settings.warm_start:
            learner.reset()
        train_rows = pool.labelled_rows
        fit, train_s = _timed(
            partial(learner.fit, train_labels=labels[train_rows], val_labels=labels[split.val]),
            train_rows,
            split.val,
            settings.max_epochs,
            settings.patience,
        )
        proba, test_s = _timed(learner.predict_proba, split.test)
        proba = np.asarray(proba, dtype=np.float64)
        metrics = binary_metrics(test_labels, proba)
        n_porn = int(np.sum(labels[train_rows] == 1))
        row = {
            "cycle": cycle,
            "n_labelled": pool.n_labelled,
            "pct_labelled": pool.pct_labelled(),
            "n_labelled_porn": n_porn,
            "n_labelled_nonporn": pool.n_labelled - n_porn,
            "n_test": len(split.test),
            **metrics,
            "val_loss": float(fit["val_loss"]),
            "epochs": int(fit["epochs"]),
            "train_seconds": train_s,
            "score_seconds": 0.0,
            "test_seconds": test_s,
        }
        if not pool.exhausted:
            unlabelled = pool.unlabelled_rows
            start = time.perf_counter()
            if spec.needs_model:
                probabilities = np.asarray(learner.predict_proba(unlabelled))
            else:  # random: only the number of items matters; skip the forward pass
                probabilities = np.empty((len(unlabelled), 0))
            ranking = spec.rank(probabilities, state.rng)
            row["score_seconds"] = time.perf_counter() - start
            top = ranking.order[: settings.query_size]
            pool.reveal(cycle, unlabelled[top], ranking.scores[top])
        state.cycles.append(row)
        state.predictions = {
            "prob_porn": proba[:, 1].tolist(),
            "pred": predicted_labels(proba).astype(int).tolist(),
        }
        if checkpoints is not None:
            checkpoints.save(cycle, state.to_dict(), learner.save)
        log.info(
            "cycle %d/%d: %5.1f%% labelled (%d/%d), accuracy %.4f, %.1f s",
            cycle,
            n_cycles - 1,
            row["pct_labelled"],
            row["n_labelled"],
            pool.n_pool,
            row["accuracy"],
            time.perf_counter() - started,
        )

    predictions = pd.DataFrame(
        {
            "row": split.test,
            "label": test_labels.astype(np.int64),
            "prob_porn": np.asarray(state.predictions["prob_porn"], dtype=np.float64),
            "pred": np.asarray(state.predictions["pred"], dtype=np.int64),
        },
        columns=PREDICTION_COLUMNS,
    )
    return RunResult(
        cycles=pd.DataFrame(state.cycles, columns=CYCLE_COLUMNS),
        queries=queries_table(pool, labels),
        predictions=predictions,
    )
