"""Learning curves: reading a run at given % labelled, averaging runs, and curve statistics.

Cycles of different runs land on different percentages (pool sizes differ by fold, and with
video-level validation by seed), so every comparison first puts the runs on common x values.
All functions take plain arrays so they can be tested with hand-made numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

INTERPOLATIONS = ("linear", "nearest")


def values_at(
    pct: Sequence[float],
    values: Sequence[float],
    keys: Sequence[float],
    rule: str = "linear",
    edge_tolerance: float = 2.0,
) -> np.ndarray:
    """A run's metric at the key percentages, by the report's interpolation rule.

    linear: straight line between the two cycles around the key. nearest: the cycle whose
    % labelled is closest (a tie goes to the cycle with fewer labels). A key outside the run's
    range (e.g. 20 when the first cycle has 20.3% labelled, because the initial set is rounded
    per class) takes the end cycle's value if it is at most `edge_tolerance` points away, and is
    NaN beyond that, so a table never shows a value the run did not come near.
    NaN metric values (e.g. ROC-AUC on a one-class test set) are left out before reading.
    """
    if rule not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, not {rule!r}")
    x = np.asarray(pct, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    keys = np.asarray(keys, dtype=float)
    out = np.full(keys.shape, np.nan)
    if x.size == 0:
        return out
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    inside = (keys >= x[0] - edge_tolerance) & (keys <= x[-1] + edge_tolerance)
    if rule == "linear":
        out[inside] = np.interp(keys[inside], x, y)
    else:
        nearest = np.argmin(np.abs(x[None, :] - keys[inside, None]), axis=1)
        out[inside] = y[nearest]
    return out


def mean_curve(
    curves: Sequence[tuple[Sequence[float], Sequence[float]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and sample std (ddof=1) of several curves, on the union of their x values.

    Each curve is read linearly; the result covers only the x range all curves share, so the
    mean never mixes a measured point with an extrapolated one. The mean of piecewise-linear
    curves is piecewise linear with corners at the union of their x values, so nothing is lost.
    std is NaN with a single curve. Returns (x, mean, std).
    """
    parsed = []
    for x, y in curves:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        keep = ~np.isnan(y)
        x, y = x[keep], y[keep]
        if x.size:
            order = np.argsort(x, kind="stable")
            parsed.append((x[order], y[order]))
    if not parsed:
        empty = np.array([], dtype=float)
        return empty, empty, empty
    lo = max(x[0] for x, _ in parsed)
    hi = min(x[-1] for x, _ in parsed)
    grid = np.unique(np.concatenate([x for x, _ in parsed]))
    grid = grid[(grid >= lo) & (grid <= hi)]
    stack = np.vstack([np.interp(grid, x, y) for x, y in parsed])
    mean = stack.mean(axis=0)
    std = stack.std(axis=0, ddof=1) if len(parsed) > 1 else np.full(grid.shape, np.nan)
    return grid, mean, std


def normalised_auc(pct: Sequence[float], accuracy_pct: Sequence[float]) -> float:
    """Area under the learning curve, scaled to [0, 1].

    Trapezoid rule on accuracy (fraction) against fraction labelled, divided by the labelled
    range covered, so runs with different first/last % labelled are comparable: 1.0 means a
    perfect classifier from the first cycle on. A single-point curve returns that point.
    """
    x = np.asarray(pct, dtype=float) / 100.0
    y = np.asarray(accuracy_pct, dtype=float) / 100.0
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    if x.size == 0:
        return float("nan")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    width = x[-1] - x[0]
    if width <= 0:
        return float(y.mean())
    return float(np.trapezoid(y, x) / width)


def stays_within_from(
    pct: Sequence[float], accuracy_pct: Sequence[float], reference: float, points: float
) -> float:
    """Smallest % labelled from which the curve never falls more than `points` below `reference`.

    This is the paper's headline ("within 1% of full supervision at about 60% labelled") made
    exact: only measured (or averaged) curve points count, being above the reference counts as
    within, and a later dip below resets it. NaN if even the last point is not within.
    """
    x = np.asarray(pct, dtype=float)
    y = np.asarray(accuracy_pct, dtype=float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    ok = y >= reference - points
    if x.size == 0 or not ok[-1]:
        return float("nan")
    failing = np.flatnonzero(~ok)
    start = failing[-1] + 1 if failing.size else 0
    return float(x[start])


def bootstrap_ci(
    differences: Sequence[float], resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of paired differences (scipy.stats.bootstrap).

    Resampling is over the fold x seed pairs, with a fixed seed so a rerun gives the same
    interval. With one pair the interval collapses onto it (nothing to resample; scipy needs two).
    """
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return float("nan"), float("nan")
    if d.size == 1:
        return float(d[0]), float(d[0])
    result = stats.bootstrap(
        (d,),
        np.mean,
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
