"""The stopping table: where each stopping rule fires, per strategy, against full supervision.

Input is the per-run verdict frame (results/tables/stopping_runs.csv, written by
alnsfw.al.verdicts): one line per run (fold, seed, strategy) and rule, with the cycle at which
the rule first fired on that run's record, the share labelled and the test accuracy there, and
that fold and seed's full-supervision accuracy. The table sits beside Table 2: one row per
strategy and rule, mean ± sample std over the runs in which the rule fired of the labelled share
at the stop, the accuracy there, the gap to full supervision in accuracy points (negative:
worse) and the labels saved (the pool's labels not needed after the stop). A rule that fired in
none of a strategy's runs says so instead of showing numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alnsfw.report.render import display_name, fmt, mean_std

VERDICT_COLUMNS = [
    "fold",
    "seed",
    "strategy",
    "rule",
    "fired",
    "cycle",
    "n_labelled",
    "n_pool",
    "pct_labelled",
    "accuracy",
    "full_accuracy",
    "gap_points",
    "labels_saved",
    "detail",
]
"""stopping_runs.csv; accuracies in percent, pct_labelled 0-100, NaN where the rule never fired."""

RULE_NAMES = {
    "stabilizing_predictions": "Stabilizing predictions",
    "overall_uncertainty": "Overall uncertainty",
    "audit_plateau": "Audit plateau",
    "budget": "Budget",
}

MEASURES = ("pct_labelled", "accuracy", "gap_points", "labels_saved")


def rule_name(rule: str) -> str:
    """Human name of a stopping rule."""
    return RULE_NAMES.get(rule, rule.replace("_", " ").capitalize())


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size > 1 else float("nan")


def stopping_table(
    verdicts: pd.DataFrame, strategies: Sequence[str], rules: Sequence[str]
) -> pd.DataFrame:
    """One row per strategy and rule (config order): n_runs, n_fired, then `<measure>_mean|_std`
    over the runs in which the rule fired (NaN where it never did)."""
    rows = []
    for strategy in strategies:
        for rule in rules:
            sub = verdicts[(verdicts["strategy"] == strategy) & (verdicts["rule"] == rule)]
            fired = sub[sub["fired"].astype(bool)]
            row = {"strategy": strategy, "rule": rule, "n_runs": len(sub), "n_fired": len(fired)}
            for measure in MEASURES:
                v = fired[measure].to_numpy(dtype=float)
                v = v[~np.isnan(v)]
                row[f"{measure}_mean"] = float(v.mean()) if v.size else float("nan")
                row[f"{measure}_std"] = _std(v)
            rows.append(row)
    columns = ["strategy", "rule", "n_runs", "n_fired"]
    columns += [f"{m}_{s}" for m in MEASURES for s in ("mean", "std")]
    return pd.DataFrame(rows, columns=columns)


def stopping_display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as a reader sees it (Markdown/HTML): mean ± std, and 'never fired' rows."""
    rows = []
    for r in table.itertuples(index=False):
        row = {
            "Strategy": display_name(r.strategy),
            "Rule": rule_name(r.rule),
            "Fired": f"{r.n_fired}/{r.n_runs}",
        }
        if r.n_fired == 0:
            never = "never fired" if r.n_runs else "no runs"
            row |= {"Labelled (%)": never, "Accuracy (%)": "–", "Gap to full (points)": "–"}
            row["Labels saved"] = "–"
        else:
            row["Labelled (%)"] = mean_std(r.pct_labelled_mean, r.pct_labelled_std, 1)
            row["Accuracy (%)"] = mean_std(r.accuracy_mean, r.accuracy_std, 2)
            gap = mean_std(r.gap_points_mean, r.gap_points_std, 2)
            row["Gap to full (points)"] = gap if fmt(r.gap_points_mean, 2) != "–" else "–"
            row["Labels saved"] = mean_std(r.labels_saved_mean, r.labels_saved_std, 0)
        rows.append(row)
    return pd.DataFrame(rows)


def stopping_notes(verdicts: pd.DataFrame, settings_text: str, coverage: str) -> list[str]:
    """What the table's numbers are, how the rules were set, and which runs went in."""
    folds = sorted(set(verdicts["fold"])) if len(verdicts) else []
    seeds = sorted(set(verdicts["seed"])) if len(verdicts) else []
    notes = [
        "Each run went to 100% labelled; every rule is evaluated on its record afterwards, at "
        "the first cycle where it fires. Mean ± sample std over the runs in which the rule "
        f"fired (folds {', '.join(map(str, folds))}; seeds {', '.join(map(str, seeds))}); "
        "Fired: in how many of the strategy's runs.",
        "Accuracy: test accuracy of the model of that cycle. Gap to full: that accuracy minus "
        "full supervision's on the same fold and seed (points; negative = worse). Labels "
        "saved: training-pool labels not needed after the stop.",
        "Stop set and audit set: the fold's validation split (never queried nor trained on); "
        "the stabilizing and uncertainty rules read only its predictions, the audit its labels.",
        settings_text,
        coverage,
    ]
    if len(seeds) <= 1:
        notes.insert(
            0,
            "One seed: any spread is over folds only, and differences between rules or "
            "strategies on these runs rank nothing.",
        )
    return notes
