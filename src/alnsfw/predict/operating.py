"""Operating points: the frame and video thresholds a moderation team asks for, from validation.

A team states a target: catch a share of porn (`recall=0.95`), keep false alarms under a rate
(`fpr=0.05`), or the best accuracy (`accuracy`, what the workflow chose before; the default), or
fixes a threshold (`threshold=0.7`). At export the validation split of the source run is scored;
scikit-learn's roc_curve gives its curve (every distinct threshold where a verdict flips, with
the true- and false-positive rates), once for keyframes and once for videos (the run's video
aggregation). The curve goes into the model's JSON, so `alnsfw predict --operating-point
recall=0.9` can pick another point later without the data, and without scikit-learn: picking a
point from a stored curve is NumPy only (the light install).

Rule for each target, on the validation curve, verdict = porn when score >= threshold:
- recall=r: the highest threshold whose recall is >= r (the most precise way to catch r);
- fpr=f: the lowest threshold whose false-positive rate is <= f (the most porn caught);
- accuracy: the threshold of best accuracy, ties to the one nearest 0.5;
- threshold=t: t itself (its validation precision/recall are still reported).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alnsfw.io import write_csv, write_text
from alnsfw.markdown import markdown_table

KINDS = ("accuracy", "recall", "fpr", "threshold")
ABOVE_ALL = 1.0 + 1e-6  # scores are in [0, 1]: a threshold no score reaches (roc_curve's inf)
_TARGET = re.compile(r"^\s*(accuracy|recall|fpr|threshold)?\s*=?\s*([0-9.eE+-]+)?\s*$")


@dataclass(frozen=True)
class Target:
    """What the operating point must achieve on validation data (see the module docstring)."""

    kind: str
    value: float | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        """`accuracy`, `recall=0.95`, `fpr=0.05`, `threshold=0.7`, or a bare number (threshold)."""
        match = _TARGET.match(str(text))
        kind, number = match.groups() if match else (None, None)
        if kind is None and number is not None:
            kind = "threshold"
        try:
            value = None if number is None else float(number)
        except ValueError:
            value = None
        ok = kind == "accuracy" and number is None
        bounded = value is not None and 0 <= value <= 1
        ok = ok or (kind in ("recall", "fpr", "threshold") and bounded)
        if not ok:
            raise ValueError(
                f"operating point {text!r}: use accuracy, recall=R (e.g. recall=0.95: catch 95% "
                "of porn), fpr=F (e.g. fpr=0.05: at most 5% false alarms) or threshold=T / T, "
                "with R, F, T between 0 and 1"
            )
        return cls(kind, value)

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}={self.value:g}"


def roc_points(labels: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """The validation curve as plain lists: thresholds (descending), tpr, fpr, and the counts.

    scikit-learn's roc_curve with drop_intermediate=False: every distinct score is a point, so
    each target's rule sees every threshold where a verdict changes.
    """
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"the validation split has {n_pos} porn and {n_neg} non-porn items: an operating "
            "point needs both (more validation data, or splits.val_unit: frame)"
        )
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    thresholds = np.where(np.isfinite(thresholds), thresholds, ABOVE_ALL)
    return {
        "n_pos": n_pos,
        "n_neg": n_neg,
        "threshold": [round(float(t), 7) for t in thresholds],
        "tpr": [round(float(t), 7) for t in tpr],
        "fpr": [round(float(f), 7) for f in fpr],
    }


def _rates(curve: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    return (
        np.asarray(curve["threshold"], dtype=np.float64),
        np.asarray(curve["tpr"], dtype=np.float64),
        np.asarray(curve["fpr"], dtype=np.float64),
        int(curve["n_pos"]),
        int(curve["n_neg"]),
    )


def summary(tpr: float, fpr: float, n_pos: int, n_neg: int) -> dict[str, float]:
    """precision, recall, fpr and accuracy of one point of a curve (from its rates and counts)."""
    tp, fp = round(tpr * n_pos), round(fpr * n_neg)  # the counts behind the stored rates
    return {
        "precision": tp / (tp + fp) if tp + fp > 0 else 1.0,
        "recall": tp / n_pos,
        "fpr": fp / n_neg,
        "accuracy": (tp + (n_neg - fp)) / (n_pos + n_neg),
    }


def choose(curve: Mapping[str, Any], target: Target) -> dict[str, Any]:
    """The point of `curve` that meets `target`: threshold and its validation measures."""
    thresholds, tpr, fpr, n_pos, n_neg = _rates(curve)
    if target.kind == "threshold":
        # verdicts at t are those of the lowest curve threshold >= t (score >= t)
        value = float(target.value)
        at = np.nonzero(thresholds >= value)[0]
        i = int(at[-1]) if at.size else 0
        return {"threshold": value, **summary(tpr[i], fpr[i], n_pos, n_neg)}
    if target.kind == "recall":
        ok = np.nonzero(tpr >= float(target.value) - 1e-12)[0]
        i = int(ok[0])  # thresholds descend, tpr rises: the first is the highest threshold
    elif target.kind == "fpr":
        ok = np.nonzero(fpr <= float(target.value) + 1e-12)[0]
        i = int(ok[-1])  # the last (lowest threshold) that keeps fpr within the target
    else:
        accuracy = (tpr * n_pos + (1 - fpr) * n_neg) / (n_pos + n_neg)
        best = np.nonzero(accuracy >= accuracy.max() - 1e-12)[0]
        i = int(best[np.argmin(np.abs(thresholds[best] - 0.5))])
    return {"threshold": float(thresholds[i]), **summary(tpr[i], fpr[i], n_pos, n_neg)}


def measures(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """precision, recall, fpr, accuracy and n of `scores >= threshold` (test data)."""
    labels = np.asarray(labels, dtype=np.int64)
    pred = np.asarray(scores, dtype=np.float64) >= float(threshold)
    n_pos, n_neg = int(labels.sum()), int((labels == 0).sum())
    tp, fp = int(np.sum(pred & (labels == 1))), int(np.sum(pred & (labels == 0)))
    return {
        "precision": float(tp / (tp + fp)) if tp + fp else float("nan"),
        "recall": float(tp / n_pos) if n_pos else float("nan"),
        "fpr": float(fp / n_neg) if n_neg else float("nan"),
        "accuracy": float(np.mean(pred == (labels == 1))) if len(labels) else float("nan"),
        "n": len(labels),
    }


def pick(meta: Mapping[str, Any], target: Target) -> dict[str, float]:
    """{frame, video} thresholds for `target` from a model JSON's stored validation curves.

    A bare threshold applies to both. A JSON without curves (exported before operating points)
    can take a threshold only.
    """
    if target.kind == "threshold":
        return {"frame": float(target.value), "video": float(target.value)}
    curves = (meta.get("operating_point") or {}).get("validation_curves")
    if not curves:
        raise ValueError(
            f"operating point {target}: this model's JSON has no validation curves (exported "
            "before operating points existed): export it again, or give a threshold"
        )
    return {unit: choose(curves[unit], target)["threshold"] for unit in ("frame", "video")}


TABLE_COLUMNS = [
    "fold", "seed", "method", "target", "unit", "threshold", "val_precision", "val_recall",
    "test_precision", "test_recall", "test_fpr", "test_accuracy", "n_test",
]  # fmt: skip


def points_table(metas: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per model JSON and unit (frame, video): the operating point, its validation
    precision/recall and the test precision/recall at it (results/tables/operating_points)."""
    rows = []
    for meta in metas:
        point, run = meta.get("operating_point"), meta["source_run"]
        if not point:
            raise ValueError(
                f"the model JSON of fold{run['fold']}/seed{run['seed']}/{run['method']} has no "
                "operating_point: export it again"
            )
        for unit in ("frame", "video"):
            val, test = point[unit], point["test"][unit]
            rows.append(
                {
                    "fold": run["fold"],
                    "seed": run["seed"],
                    "method": run["method"],
                    "target": point["target"],
                    "unit": unit,
                    "threshold": val["threshold"],
                    "val_precision": val.get("precision"),
                    "val_recall": val.get("recall"),
                    "test_precision": test["precision"],
                    "test_recall": test["recall"],
                    "test_fpr": test["fpr"],
                    "test_accuracy": test["accuracy"],
                    "n_test": test["n"],
                }
            )
    return rows


def write_points_table(metas: list[str], csv: str, md: str, html: str) -> None:
    """results/tables/operating_points.{csv,md,html} from model JSON paths (written atomically)."""
    table = pd.DataFrame(
        points_table([json.loads(Path(m).read_text()) for m in metas]), columns=TABLE_COLUMNS
    )
    write_csv(csv, table)
    shown = table.copy()
    for col in TABLE_COLUMNS[5:-1]:
        shown[col] = shown[col].map(lambda v: "" if v is None or v != v else f"{v:.4g}")
    notes = [
        "threshold, val_*: chosen on the run's validation split for the target "
        "(export.operating_point); test_*: the fold's test set at that threshold",
        "unit frame: keyframes; unit video: whole videos, score = the run's video aggregation",
    ]
    write_text(md, markdown_table("Operating points", shown, notes))
    write_text(html, shown.to_html(index=False))
