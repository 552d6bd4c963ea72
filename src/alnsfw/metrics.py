"""Test-set measures of a binary classifier, positive class = porn (label 1).

Written with NumPy because scikit-learn is not a dependency; the definitions follow scikit-learn's
(precision/recall/F1 of the positive class, 0 when undefined; ROC-AUC as the Mann-Whitney
statistic with average ranks for tied scores) so numbers are comparable with other work.
"""

from __future__ import annotations

import numpy as np

METRIC_COLUMNS = ["accuracy", "precision", "recall", "f1", "roc_auc", "tp", "tn", "fp", "fn"]


def predicted_labels(probabilities: np.ndarray) -> np.ndarray:
    """Class of highest probability per row; an exact 0.5/0.5 tie goes to non-porn (class 0).

    argmax takes the first maximum, which fixes the tie rule without a threshold parameter.
    """
    return np.asarray(probabilities).argmax(axis=1).astype(np.int8)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, tied values sharing the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Start of each run of equal values in the sorted array.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of 1-based positions starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present (the area is undefined).

    Uses AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg), R_pos the sum of the positives'
    average ranks, which counts a tied positive/negative pair as one half, as the trapezoidal ROC
    curve does.
    """
    labels = np.asarray(labels).astype(bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = average_ranks(scores)[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, 0.0 when the denominator is 0 (scikit-learn's zero_division=0)."""
    return numerator / denominator if denominator else 0.0


def binary_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float | int]:
    """Accuracy, precision, recall, F1, ROC-AUC and confusion counts for porn = positive.

    `probabilities` is [n, 2] with column 1 = P(porn), as Learner.predict_proba returns; the
    predicted class is the argmax, and ROC-AUC ranks by column 1.
    """
    labels = np.asarray(labels).astype(np.int8)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape != (len(labels), 2):
        raise ValueError(f"probabilities must be [{len(labels)}, 2], got {probabilities.shape}")
    pred = predicted_labels(probabilities)
    tp = int(np.sum((pred == 1) & (labels == 1)))
    tn = int(np.sum((pred == 0) & (labels == 0)))
    fp = int(np.sum((pred == 1) & (labels == 0)))
    fn = int(np.sum((pred == 0) & (labels == 1)))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, len(labels)),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": roc_auc(labels, probabilities[:, 1]),
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
    }
