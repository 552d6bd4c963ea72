"""Ready-made classifiers beside ours: their test metrics on every fold and seed (docs/peers.md).

A peer (`report.peers`, e.g. `open_nsfw`) gives P(porn) for every keyframe once
(results/peers/{peer}.csv, rule peer_scores). Here those scores are read on each run's split the
way our runs are: keyframe accuracy, F1 and ROC-AUC at threshold 0.5 (the argmax our models use);
video accuracy with the video rule chosen on that split's validation rows (alnsfw.video_eval,
as every cycle does); and precision, recall and false-positive rate on the test keyframes at 0.5
and at the operating point `export.operating_point` chosen on the validation rows (as export
does for our models). The peer is never trained: validation only sets thresholds.

This module sits in the predict layer because it uses the operating-point code of export.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from alnsfw.al.loop import Split
from alnsfw.io import write_csv
from alnsfw.metrics import binary_metrics
from alnsfw.predict.operating import Target, choose, measures, roc_points
from alnsfw.video_eval import VideoIndex, VideoSettings

#: Columns of a peer's per-run file, beside fold, seed, peer.
RUN_COLUMNS = (
    "accuracy",
    "f1",
    "roc_auc",
    "video_accuracy",
    "precision_at_0.5",
    "recall_at_0.5",
    "fpr_at_0.5",
    "operating_threshold",
    "precision_at_op",
    "recall_at_op",
    "fpr_at_op",
    "accuracy_at_op",
)


def read_scores(path: str | Path, n_rows: int) -> np.ndarray:
    """P(porn) per keyframe row from a peer's CSV (columns row, p_porn), checked to cover all."""
    table = pd.read_csv(path)
    if list(table.columns[:2]) != ["row", "p_porn"]:
        raise ValueError(f"{path}: expected columns row, p_porn; found {list(table.columns)}")
    if len(table) != n_rows or not np.array_equal(table["row"].to_numpy(), np.arange(n_rows)):
        raise ValueError(
            f"{path} scores {len(table)} rows, keyframes.h5 has {n_rows}: it belongs to another "
            "keyframe set; delete it and let rule peer_scores recompute it"
        )
    return table["p_porn"].to_numpy(dtype=np.float64)


def run_metrics(
    peer: str,
    scores: np.ndarray,
    keyframes: str,
    splits: Mapping[tuple[int, int], str],
    config: Mapping[str, Any],
) -> pd.DataFrame:
    """One row per (fold, seed): the peer's RUN_COLUMNS on that split (see the module doc)."""
    # Read here, not with alnsfw.al.jobs' readers: those pull in the model stage (Keras), which
    # this report-env job does not need
    with h5py.File(keyframes, "r") as h5:
        labels = np.asarray(h5["label"][:], dtype=np.int64)
        videos = None
        if "video" in h5 and "video_label" in h5:
            videos = VideoIndex(
                np.asarray(h5["video"].asstr()[:], dtype=object),
                np.asarray(h5["video_label"][:], dtype=np.int64),
                VideoSettings.from_config(dict(config)),
            )
    target = Target.parse(str(config.get("export", {}).get("operating_point", "accuracy")))
    rows = []
    for (fold, seed), path in sorted(splits.items()):
        split = Split.from_json(json.loads(Path(path).read_text()))
        test, val = split.test, split.val
        p = scores[test]
        frame = binary_metrics(labels[test], np.stack([1 - p, p], axis=1))
        video = (
            videos.columns(val, scores[val], test, p)["video_accuracy"]
            if videos is not None
            else float("nan")
        )
        at_half = measures(labels[test], p, 0.5)
        op = choose(roc_points(labels[val], scores[val]), target)["threshold"]
        at_op = measures(labels[test], p, op)
        rows.append(
            {
                "fold": fold,
                "seed": seed,
                "peer": peer,
                "accuracy": frame["accuracy"],
                "f1": frame["f1"],
                "roc_auc": frame["roc_auc"],
                "video_accuracy": video,
                "precision_at_0.5": at_half["precision"],
                "recall_at_0.5": at_half["recall"],
                "fpr_at_0.5": at_half["fpr"],
                "operating_threshold": op,
                "precision_at_op": at_op["precision"],
                "recall_at_op": at_op["recall"],
                "fpr_at_op": at_op["fpr"],
                "accuracy_at_op": at_op["accuracy"],
            }
        )
    return pd.DataFrame(rows, columns=["fold", "seed", "peer", *RUN_COLUMNS])


def write_run_metrics(
    peer: str,
    scores_csv: str,
    keyframes: str,
    split_files: Sequence[str],
    folds: Sequence[int],
    seeds: Sequence[int],
    config: Mapping[str, Any],
    out: str,
) -> None:
    """Rule peer_metrics: `run_metrics` of every fold x seed split, written to `out` (CSV)."""
    with h5py.File(keyframes, "r") as h5:
        n_rows = int(h5["label"].shape[0])
    pairs = [(int(f), int(s)) for f in folds for s in seeds]
    if len(pairs) != len(split_files):
        raise ValueError(f"{len(split_files)} split files for {len(pairs)} fold x seed pairs")
    splits = dict(zip(pairs, split_files))
    table = run_metrics(peer, read_scores(scores_csv, n_rows), keyframes, splits, config)
    write_csv(out, table)
