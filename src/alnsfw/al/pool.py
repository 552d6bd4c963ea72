"""The labelled/unlabelled state of an active-learning run, as one JSON-serialisable object.

Like baal's ActiveLearningDataset, the state is a mask over the training pool plus the history of
what was queried; everything else (labelled rows, counts, percentages) is derived from it. Rows are
always rows of keyframes.h5; "positions" index the pool (0 .. n_pool-1, pool rows sorted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Query:
    """The items revealed after one cycle, most informative first."""

    cycle: int
    rows: list[int]
    scores: list[float]


@dataclass
class PoolState:
    """Which pool items are labelled, and which query labelled each of the others.

    `pool_rows` is sorted ascending (as in the split json) and never changes; `labelled` is a
    boolean mask over it. `queries` lists the queries in order; the initial set is the labelled
    items that no query revealed.
    """

    pool_rows: np.ndarray
    labelled: np.ndarray
    queries: list[Query] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pool_rows = np.asarray(self.pool_rows, dtype=np.int64)
        self.labelled = np.asarray(self.labelled, dtype=bool)
        if self.labelled.shape != self.pool_rows.shape:
            raise ValueError("labelled mask and pool rows differ in length")
        if np.any(np.diff(self.pool_rows) <= 0):
            raise ValueError("pool rows must be strictly ascending (no duplicates)")

    @property
    def n_pool(self) -> int:
        """Size of the training pool."""
        return len(self.pool_rows)

    @property
    def n_labelled(self) -> int:
        """Number of labelled pool items."""
        return int(self.labelled.sum())

    @property
    def labelled_rows(self) -> np.ndarray:
        """Labelled rows, ascending (the training set of the current cycle)."""
        return self.pool_rows[self.labelled]

    @property
    def unlabelled_rows(self) -> np.ndarray:
        """Unlabelled rows, ascending (what a strategy scores; its positions index this array)."""
        return self.pool_rows[~self.labelled]

    @property
    def exhausted(self) -> bool:
        """True when every pool item is labelled."""
        return bool(self.labelled.all())

    def pct_labelled(self) -> float:
        """Labelled share of the pool in percent (0-100)."""
        return 100.0 * self.n_labelled / self.n_pool if self.n_pool else 0.0

    def reveal(self, cycle: int, rows: np.ndarray, scores: np.ndarray) -> None:
        """Mark `rows` labelled (the simulated annotator answered) and record the query."""
        rows = np.asarray(rows, dtype=np.int64)
        positions = np.searchsorted(self.pool_rows, rows)
        inside = positions < self.n_pool
        if not inside.all() or np.any(self.pool_rows[positions] != rows):
            raise ValueError("queried rows must be rows of the training pool")
        if self.labelled[positions].any():
            raise ValueError("queried rows must be unlabelled")
        if len(np.unique(rows)) != len(rows):
            raise ValueError("a query must not repeat a row")
        self.labelled[positions] = True
        self.queries.append(
            Query(cycle=int(cycle), rows=rows.tolist(), scores=[float(s) for s in scores])
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: rows of the pool, the labelled rows, and the queries."""
        return {
            "pool_rows": self.pool_rows.tolist(),
            "labelled_rows": self.labelled_rows.tolist(),
            "queries": [
                {"cycle": q.cycle, "rows": q.rows, "scores": q.scores} for q in self.queries
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoolState:
        """Inverse of to_dict."""
        pool_rows = np.asarray(data["pool_rows"], dtype=np.int64)
        labelled = np.isin(pool_rows, np.asarray(data["labelled_rows"], dtype=np.int64))
        queries = [
            Query(int(q["cycle"]), list(q["rows"]), list(q["scores"])) for q in data["queries"]
        ]
        return cls(pool_rows=pool_rows, labelled=labelled, queries=queries)


def initial_labelled_mask(
    pool_labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Mask of a random `fraction` of each class of the pool (the paper's initial labelled set).

    Per class, round(fraction * class size) items (half rounds up), at least 1 when the class is
    present so cycle 0 sees both classes, at most the class size. Sampling per class keeps the
    pool's class ratio, as the paper's "20% of each class" does. Classes are drawn in ascending
    label order from one generator, so the set depends on the generator's seed only.
    """
    pool_labels = np.asarray(pool_labels)
    mask = np.zeros(len(pool_labels), dtype=bool)
    for label in np.unique(pool_labels):
        positions = np.flatnonzero(pool_labels == label)
        take = int(np.floor(fraction * len(positions) + 0.5))
        take = min(max(take, 1), len(positions))
        mask[rng.choice(positions, size=take, replace=False)] = True
    return mask


def cycle_sizes(n_pool: int, n_initial: int, query_size: int) -> list[int]:
    """Labelled count at each cycle: n_initial, + query_size each cycle, the last one n_pool.

    The number of cycles is 1 + ceil((n_pool - n_initial) / query_size); the last query is the
    remainder when it does not divide evenly. Used by tests and for logging the plan.
    """
    sizes = [n_initial]
    while sizes[-1] < n_pool:
        sizes.append(min(sizes[-1] + query_size, n_pool))
    return sizes
