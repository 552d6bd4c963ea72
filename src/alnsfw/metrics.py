"""Test-set measures of a binary classifier, positive class = porn (label 1), by scikit-learn.

scikit-learn's definitions (precision/recall/F1 of the positive class, 0 when undefined; ROC-AUC
with tied scores counted as one half) make the numbers comparable with other work. Our own NumPy
version agreed to 1e-16 and was not measurably faster where it matters (a few ms per cycle on a
paper-size test fold either way), so the library's is used. The only addition: ROC-AUC is NaN
rather than an exception when the test rows hold one class.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

BINARY_METRIC_COLUMNS = ["accuracy", "precision", "recall", "f1", "roc_auc", "tp", "tn", "fp", "fn"]


def predicted_labels(probabilities: np.ndarray) -> np.ndarray:
    """Class of highest probability per row; an exact 0.5/0.5 tie goes to non-porn (class 0).

    argmax takes the first maximum, which fixes the tie rule without a threshold parameter.
    """
    return np.asarray(probabilities).argmax(axis=1).astype(np.int8)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present (the area is undefined)."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64)))


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
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, pred, labels=[0, 1]).ravel())
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, pred, labels=[0, 1], pos_label=1, average="binary", zero_division=0
    )
    return {
        "accuracy": (tp + tn) / len(labels) if len(labels) else 0.0,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "roc_auc": roc_auc(labels, probabilities[:, 1]),
        "tp": tp,
        "tn": tn,
        "fp": fp,
        "fn": fn,
    }
