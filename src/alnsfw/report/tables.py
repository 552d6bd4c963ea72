"""The report's tables: Table 2 (and its F1 / ROC-AUC twins), the summary, strategy-vs-random.

Every function takes the long frames of runs.load_cycles / runs.load_full and returns a numeric
DataFrame (what the CSV holds); formatting for Markdown/HTML lives in render.py, so the numbers
are tested without string parsing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alnsfw.report.curves import (
    bootstrap_ci,
    mean_curve,
    normalised_auc,
    stays_within_from,
    values_at,
)

REFERENCE_STRATEGY = "random"  # what the paired table compares each strategy with
"""The strategy every other one is compared with in the paired table (the paper's control)."""

FULL_COLUMN = "full_supervision"


def _sample_std(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.std(values, ddof=1)) if values.size > 1 else float("nan")


def run_values(
    cycles: pd.DataFrame,
    metric: str,
    keys: Sequence[float],
    rule: str,
    edge_tolerance: float,
) -> pd.DataFrame:
    """Each run's `metric` at each key percentage (long: fold, seed, strategy, pct_labelled, value).

    The rule is applied per run, before any averaging, so a mean over runs is a mean of values
    each run actually (or linearly) reached.
    """
    rows = []
    for (fold, seed, strategy), run in cycles.groupby(["fold", "seed", "strategy"], sort=False):
        vals = values_at(run["pct_labelled"], run[metric], keys, rule, edge_tolerance)
        rows += [
            {"fold": fold, "seed": seed, "strategy": strategy, "pct_labelled": k, "value": v}
            for k, v in zip(keys, vals)
        ]
    return pd.DataFrame(rows, columns=["fold", "seed", "strategy", "pct_labelled", "value"])


def key_percentage_table(
    cycles: pd.DataFrame,
    full: pd.DataFrame,
    strategies: Sequence[str],
    metric: str,
    keys: Sequence[float],
    rule: str,
    edge_tolerance: float,
) -> pd.DataFrame:
    """Table 2 in numbers: one row per key %, mean/std/n per strategy and for full supervision.

    Columns: pct_labelled, then `<strategy>_mean|_std|_n` in config order, then
    `full_supervision_mean|_std|_n` (the same value on every row: full supervision sees 100%).
    Std is the sample std over the fold x seed runs (NaN with one run).
    """
    values = run_values(cycles, metric, keys, rule, edge_tolerance)
    table = pd.DataFrame({"pct_labelled": list(keys)})
    for strategy in strategies:
        sub = values[values["strategy"] == strategy]
        means, stds, counts = [], [], []
        for key in keys:
            v = sub.loc[sub["pct_labelled"] == key, "value"].to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            means.append(float(v.mean()) if v.size else float("nan"))
            stds.append(_sample_std(v))
            counts.append(int(v.size))
        table[f"{strategy}_mean"] = means
        table[f"{strategy}_std"] = stds
        table[f"{strategy}_n"] = counts
    f = full[metric].to_numpy(dtype=float) if len(full) else np.array([])
    f = f[~np.isnan(f)]
    table[f"{FULL_COLUMN}_mean"] = float(f.mean()) if f.size else float("nan")
    table[f"{FULL_COLUMN}_std"] = _sample_std(f)
    table[f"{FULL_COLUMN}_n"] = int(f.size)
    return table


#: Peer metrics (results/peers/{peer}-runs.csv) stored as fractions, shown in percent like ours.
PERCENT_METRICS = ("accuracy", "video_accuracy")


def add_peer_columns(
    table: pd.DataFrame, peer_runs: pd.DataFrame, peers: Sequence[str], metric: str
) -> pd.DataFrame:
    """Table 2 (or a twin) with `<peer>_mean|_std|_n` columns after full supervision.

    A peer is never trained, so like full supervision its value is the same on every row: the
    mean and sample std over the fold x seed test sets of its per-run `metric` (fractions of
    `peer_runs`, in percent for the accuracies, as runs.load_cycles shows ours).
    """
    out = table.copy()
    for peer in peers:
        values = peer_runs.loc[peer_runs["peer"] == peer, metric].to_numpy(dtype=float)
        values = values[~np.isnan(values)] * (100.0 if metric in PERCENT_METRICS else 1.0)
        out[f"{peer}_mean"] = float(values.mean()) if values.size else float("nan")
        out[f"{peer}_std"] = _sample_std(values)
        out[f"{peer}_n"] = int(values.size)
    return out


def fold_curve(
    cycles: pd.DataFrame, fold: int, strategy: str, metric: str = "accuracy"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std over seeds of one strategy's curve on one fold (x = % labelled)."""
    sub = cycles[(cycles["fold"] == fold) & (cycles["strategy"] == strategy)]
    curves = [(run["pct_labelled"], run[metric]) for _, run in sub.groupby("seed", sort=True)]
    return mean_curve(curves)


def fold_averaged_curve(
    cycles: pd.DataFrame, strategy: str, metric: str = "accuracy"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over folds of the per-fold seed means; std is over folds (the summary figure's band).

    Seeds are averaged first so a fold with more finished seeds does not weigh more.
    """
    folds = sorted(cycles.loc[cycles["strategy"] == strategy, "fold"].unique())
    per_fold = []
    for fold in folds:
        x, m, _ = fold_curve(cycles, fold, strategy, metric)
        per_fold.append((x, m))
    return mean_curve(per_fold)


def fold_averaged_full(full: pd.DataFrame, metric: str = "accuracy") -> float:
    """Full-supervision metric, mean over seeds per fold, then over folds."""
    if not len(full):
        return float("nan")
    return float(full.groupby("fold")[metric].mean().mean())


def pool_size(run: pd.DataFrame) -> int:
    """Size of a run's training pool, recovered from n_labelled / pct_labelled."""
    ok = run["pct_labelled"] > 0
    sizes = run.loc[ok, "n_labelled"] * 100.0 / run.loc[ok, "pct_labelled"]
    return int(round(float(sizes.median())))


def summary_table(
    cycles: pd.DataFrame,
    full: pd.DataFrame,
    strategies: Sequence[str],
    within_points: float,
) -> pd.DataFrame:
    """Per strategy: learning-curve area, first->last gain, the within-N-points threshold, cost.

    The threshold and labels saved are read on the fold-averaged curve against the
    fold-averaged full supervision (the paper's claim is about averages); area and gain are
    per run, shown as mean and sample std over fold x seed runs.
    """
    reference = fold_averaged_full(full)
    rows = []
    for strategy in strategies:
        sub = cycles[cycles["strategy"] == strategy]
        runs = [run for _, run in sub.groupby(["fold", "seed"], sort=True)]
        row: dict[str, object] = {"strategy": strategy, "n_runs": len(runs)}
        alc = np.array([normalised_auc(r["pct_labelled"], r["accuracy"]) for r in runs])
        gain = np.array(
            [r.sort_values("cycle")["accuracy"].iloc[[0, -1]].diff().iloc[-1] for r in runs],
            dtype=float,
        )
        x, mean, _ = fold_averaged_curve(cycles, strategy)
        threshold = stays_within_from(x, mean, reference, within_points) if x.size else float("nan")
        pools = (
            pd.DataFrame([{"fold": r["fold"].iloc[0], "pool": pool_size(r)} for r in runs])
            .groupby("fold")["pool"]
            .mean()
            .mean()
            if runs
            else float("nan")
        )
        saved_pct = 100.0 - threshold
        row.update(
            {
                "alc_mean": float(alc.mean()) if alc.size else float("nan"),
                "alc_std": _sample_std(alc),
                "first_pct": float(x[0]) if x.size else float("nan"),
                "first_accuracy": float(mean[0]) if x.size else float("nan"),
                "last_pct": float(x[-1]) if x.size else float("nan"),
                "last_accuracy": float(mean[-1]) if x.size else float("nan"),
                "gain_points_mean": float(gain.mean()) if gain.size else float("nan"),
                "gain_points_std": _sample_std(gain),
                "full_accuracy": reference,
                "within_points": within_points,
                "threshold_pct": threshold,
                "accuracy_at_threshold": (
                    float(np.interp(threshold, x, mean)) if not np.isnan(threshold) else np.nan
                ),
                "pool_size": float(pools),
                "labels_saved": (
                    float(round(pools * saved_pct / 100.0)) if not np.isnan(threshold) else np.nan
                ),
                "labels_saved_pct": saved_pct,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def paired_table(
    cycles: pd.DataFrame,
    strategies: Sequence[str],
    keys: Sequence[float],
    rule: str,
    edge_tolerance: float,
    resamples: int,
    seed: int,
    reference: str = REFERENCE_STRATEGY,
) -> pd.DataFrame:
    """Strategy minus random, paired by fold and seed, with a bootstrap 95% CI of the mean.

    Pairing removes what a fold and a seed share (test set, initial labelled set), so the
    interval is about the strategy, not about fold difficulty. Measures: test accuracy
    (points) at each key % and the normalised learning-curve area (x100, points).
    A CI that excludes 0 means the strategy really differs from random on these runs.
    """
    columns = [
        "strategy",
        "measure",
        "pct_labelled",
        "n_pairs",
        "mean_diff",
        "std_diff",
        "ci_low",
        "ci_high",
        "n_better",
    ]
    if reference not in strategies:
        return pd.DataFrame(columns=columns)
    values = run_values(cycles, "accuracy", keys, rule, edge_tolerance)
    alc = pd.DataFrame(
        [
            {
                "fold": fold,
                "seed": seed,
                "strategy": strategy,
                "value": 100.0 * normalised_auc(run["pct_labelled"], run["accuracy"]),
            }
            for (fold, seed, strategy), run in cycles.groupby(
                ["fold", "seed", "strategy"], sort=False
            )
        ],
        columns=["fold", "seed", "strategy", "value"],
    )
    alc["pct_labelled"] = np.nan
    rows = []
    for strategy in strategies:
        if strategy == reference:
            continue
        for measure, frame, pcts in (
            ("accuracy", values, list(keys)),
            ("alc", alc, [np.nan]),
        ):
            for pct in pcts:
                sel = (
                    frame["pct_labelled"].isna() if np.isnan(pct) else frame["pct_labelled"] == pct
                )
                a = frame[sel & (frame["strategy"] == strategy)].set_index(["fold", "seed"])
                b = frame[sel & (frame["strategy"] == reference)].set_index(["fold", "seed"])
                joined = a[["value"]].merge(
                    b[["value"]], left_index=True, right_index=True, suffixes=("", "_base")
                )
                d = (joined["value"] - joined["value_base"]).to_numpy(dtype=float)
                d = d[~np.isnan(d)]
                lo, hi = bootstrap_ci(d, resamples, seed)
                rows.append(
                    {
                        "strategy": strategy,
                        "measure": measure,
                        "pct_labelled": pct,
                        "n_pairs": int(d.size),
                        "mean_diff": float(d.mean()) if d.size else float("nan"),
                        "std_diff": _sample_std(d),
                        "ci_low": lo,
                        "ci_high": hi,
                        "n_better": int((d > 0).sum()),
                    }
                )
    return pd.DataFrame(rows, columns=columns)
