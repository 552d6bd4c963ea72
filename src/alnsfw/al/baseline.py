"""Full-supervision baseline: the same learner trained once on 100% of the training pool.

Choices (the paper gives no baseline epochs):
- At most `baseline.epochs` epochs (default 10) with the same early stopping as the active-learning
  cycles (validation loss, patience `baseline.patience`, default `training.patience`), restoring
  the weights of the best epoch. Same model and training settings as the runs it is compared
  with; and the validation rows exist for exactly this, so stopping on them does not favour
  either side. 10 is twice the 5-epoch cap of one cycle: a from-scratch model sees the full pool
  in one go and needs more epochs than a warm-started cycle, while the early stop makes the
  result insensitive to the cap once it is large enough. history.csv keeps every epoch run (with
  a `best` flag on the restored one), so a baseline that used all its epochs shows it needs more.
- Same initial weights as cycle 0 of the active-learning runs of this fold and seed (the
  learner's seed depends on (fold, seed) only, see alnsfw.al.seeding).
- No per-epoch checkpoint: the baseline is one fit call; a killed baseline starts again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alnsfw.al.loop import LoopModel, Split, predictions_table
from alnsfw.metrics import BINARY_METRIC_COLUMNS, binary_metrics
from alnsfw.video_eval import VIDEO_METRIC_COLUMNS, VideoIndex, video_columns

log = logging.getLogger(__name__)

BASELINE_COLUMNS = [
    "n_labelled",
    "pct_labelled",
    "n_test",
    *BINARY_METRIC_COLUMNS,
    *VIDEO_METRIC_COLUMNS,
    "val_loss",
    "epochs",
    "train_seconds",
    "test_seconds",
]
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "best"]


@dataclass
class BaselineResult:
    """The tables of a baseline run (metrics.csv, history.csv, predictions.csv)."""

    metrics: pd.DataFrame
    history: pd.DataFrame
    predictions: pd.DataFrame


def baseline_patience(config: dict[str, Any]) -> int:
    """baseline.patience, or training.patience when it is null."""
    patience = config["baseline"].get("patience")
    return int(config["training"]["patience"] if patience is None else patience)


def history_table(history: list[dict[str, Any]]) -> pd.DataFrame:
    """history.csv: one line per epoch run; `best` = 1 on the epoch whose weights were kept.

    The best epoch is the first with the lowest validation loss, which is the one Keras'
    EarlyStopping(restore_best_weights=True) restores.
    """
    frame = pd.DataFrame(history).reindex(columns=HISTORY_COLUMNS[:-1])
    best = np.zeros(len(frame), dtype=np.int64)
    if len(frame) and frame["val_loss"].notna().any():
        best[int(np.nanargmin(frame["val_loss"].to_numpy(dtype=np.float64)))] = 1
    frame["best"] = best
    return frame


def run_full_supervision(
    learner: LoopModel,
    split: Split,
    labels: np.ndarray,
    epochs: int,
    patience: int,
    video_index: VideoIndex | None = None,
) -> BaselineResult:
    """Train on the whole pool, test once on the fold's test rows (per video with `video_index`)."""
    split.check()
    labels = np.asarray(labels)
    start = time.perf_counter()
    fit = learner.fit(
        split.pool,
        split.val,
        epochs,
        patience,
        train_labels=labels[split.pool],
        val_labels=labels[split.val],
    )
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    proba = np.asarray(learner.predict_proba(split.test), dtype=np.float64)
    test_s = time.perf_counter() - start
    metrics = binary_metrics(labels[split.test], proba)
    row = {
        "n_labelled": len(split.pool),
        "pct_labelled": 100.0,
        "n_test": len(split.test),
        **metrics,
        **video_columns(video_index, learner, split.val, split.test, proba),
        "val_loss": float(fit["val_loss"]),
        "epochs": int(fit["epochs"]),
        "train_seconds": train_s,
        "test_seconds": test_s,
    }
    log.info(
        "full supervision: %d pool items, %d epochs, accuracy %.4f, %.1f s",
        len(split.pool),
        row["epochs"],
        row["accuracy"],
        train_s + test_s,
    )
    return BaselineResult(
        metrics=pd.DataFrame([row], columns=BASELINE_COLUMNS),
        history=history_table(fit.get("history", [])),
        predictions=predictions_table(split.test, labels[split.test], proba),
    )
