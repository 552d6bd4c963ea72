"""Pseudo-labels (CEAL: Wang, Zhang, Li, Zhang & Lin 2017, IEEE TCSVT 27(12)).

Each cycle c >= 1, before training, the model of cycle c-1 predicts the unlabelled pool; the
keyframes whose predictive entropy is below delta_c = delta_0 - decay * c (nats) join the
training set of cycle c with their predicted class as label. They are used for that cycle only
(recomputed every cycle, as in CEAL), are never counted as labelled (n_labelled, the cost
columns and the % labelled axis count human labels only), and come only from the training
pool, so never from the validation (stop and audit) or test rows. The simulation knows the true
labels and records per cycle how many pseudo-labels went in and the share that were wrong
(cycles.csv: n_pseudo, pseudo_wrong_share).

CEAL thresholds the entropy, and its threshold shrinks, so the pseudo-labels get fewer and
surer as the model sees more human labels (their delta_0 = 0.005, decay 0.00033 per iteration,
for a many-class softmax). For two classes, entropy 0.05 nats is a top probability of about
0.99; 0.005 about 0.9994. Cycle 0 has none: the model has not been trained yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

PSEUDO_COLUMNS = ["n_pseudo", "pseudo_wrong_share", "pseudo_threshold"]
"""cycles.csv's pseudo-label columns (empty when al.pseudo_labels is off)."""


@dataclass(frozen=True)
class PseudoLabels:
    """`al.pseudo_labels`: entropy threshold delta_0 (nats) and its decay per cycle."""

    threshold: float = 0.05
    decay: float = 0.002

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> PseudoLabels | None:
        """None when the section is absent or `enabled` is false."""
        if not section or not section.get("enabled", False):
            return None
        made = cls(float(section.get("threshold", 0.05)), float(section.get("decay", 0.002)))
        if made.threshold < 0 or made.decay < 0:
            raise ValueError("al.pseudo_labels: threshold and decay must be >= 0")
        return made

    def threshold_at(self, cycle: int) -> float:
        """delta_c = delta_0 - decay * c, never below 0 (then nothing qualifies)."""
        return max(self.threshold - self.decay * cycle, 0.0)


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats of each row of class probabilities (0 ln 0 = 0)."""
    p = np.asarray(proba, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def choose(rows: np.ndarray, proba: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows whose entropy is strictly below `threshold`, their predicted classes)."""
    rows = np.asarray(rows, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    keep = entropy(proba) < threshold
    return rows[keep], np.argmax(proba[keep], axis=1).astype(np.int64)
