"""Turn the numeric tables into what a reader opens: Markdown (README, terminals) and HTML
(shown inline by `snakemake --report`, which only displays images, PDF and HTML).

Every Markdown/HTML table carries its notes (units, the interpolation rule, missing runs), so a
table copied out of the report still says how it was made.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import pandas as pd

from alnsfw.report.tables import FULL_COLUMN

DISPLAY_NAMES = {
    "open_nsfw": "open_nsfw",  # the peer's own name (report.peers)
    "random": "Random",
    "least_confidence": "Least confidence",
    "entropy": "Entropy",
    "margin": "Margin",
    "bald": "BALD",
    "coreset": "Core-set",
    "badge": "BADGE",
    FULL_COLUMN: "Full supervision",
}

RULE_TEXT = {
    "linear": (
        "linear interpolation between the two cycles around each key percentage, per run, "
        "then averaged over runs"
    ),
    "nearest": (
        "the cycle whose % labelled is nearest to each key percentage (ties: fewer labels), "
        "per run, then averaged over runs"
    ),
}


def display_name(method: str) -> str:
    """Human name of a strategy; unknown ones get their snake_case name spelled out."""
    return DISPLAY_NAMES.get(method, method.replace("_", " ").capitalize())


def fmt(value: float, decimals: int) -> str:
    """A number, or an en dash when there is none (NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{decimals}f}"


def mean_std(mean: float, std: float, decimals: int, n: int | None = None) -> str:
    """`mean ± std`, just `mean` when std is undefined, and `(n=k)` when asked for."""
    text = fmt(mean, decimals)
    if text != "–" and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {fmt(std, decimals)}"
    if n is not None:
        text += f" (n={n})"
    return text


def key_table_display(
    table: pd.DataFrame, strategies: Sequence[str], decimals: int, peers: Sequence[str] = ()
) -> pd.DataFrame:
    """Table 2's display shape: % labelled, one column per strategy, then full supervision,
    then each zero-shot peer (report.peers) as "<peer> (zero-shot)".

    The cell count n is shown only when cells differ in it (partial results), because then
    the means are not over the same runs.
    """
    methods = [*strategies, FULL_COLUMN, *peers]
    counts = {int(table[f"{m}_n"].iloc[i]) for m in methods for i in range(len(table))}
    show_n = len(counts) > 1
    out = pd.DataFrame(
        {"% labelled": [fmt(p, 0 if p == int(p) else 1) for p in table["pct_labelled"]]}
    )
    for m in methods:
        out[display_name(m) + (" (zero-shot)" if m in peers else "")] = [
            mean_std(r[f"{m}_mean"], r[f"{m}_std"], decimals, int(r[f"{m}_n"]) if show_n else None)
            for _, r in table.iterrows()
        ]
    return out


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary table with units in the headers and one row per strategy."""
    rows = []
    for _, r in summary.iterrows():
        pool = r["pool_size"]
        saved = (
            "–"
            if math.isnan(r["labels_saved"])
            else f"{int(r['labels_saved']):,} of {pool:,.0f} ({r['labels_saved_pct']:.1f}%)"
        )
        rows.append(
            {
                "Strategy": display_name(r["strategy"]),
                "Runs": int(r["n_runs"]),
                "ALC [0,1]": mean_std(r["alc_mean"], r["alc_std"], 4),
                "Gain first→last (points)": mean_std(
                    r["gain_points_mean"], r["gain_points_std"], 2
                ),
                "Accuracy first → last (%)": (
                    f"{fmt(r['first_accuracy'], 2)} @ {fmt(r['first_pct'], 1)}% → "
                    f"{fmt(r['last_accuracy'], 2)} @ {fmt(r['last_pct'], 1)}%"
                ),
                "Full supervision (%)": fmt(r["full_accuracy"], 2),
                f"Within {r['within_points']:g} point(s) from (% labelled)": fmt(
                    r["threshold_pct"], 1
                ),
                "Accuracy there (%)": fmt(r["accuracy_at_threshold"], 2),
                "Labels saved": saved,
            }
        )
    return pd.DataFrame(rows)


def paired_display(paired: pd.DataFrame) -> pd.DataFrame:
    """Paired differences with the CI in one cell and the measure spelled out."""
    rows = []
    for _, r in paired.iterrows():
        measure = (
            f"accuracy at {fmt(r['pct_labelled'], 0)}%"
            if r["measure"] == "accuracy"
            else "learning-curve area (x100)"
        )
        rows.append(
            {
                "Strategy − Random": display_name(r["strategy"]),
                "Measure": measure,
                "Pairs": int(r["n_pairs"]),
                "Mean difference (points)": fmt(r["mean_diff"], 2),
                "95% bootstrap CI": f"[{fmt(r['ci_low'], 2)}, {fmt(r['ci_high'], 2)}]",
                "Strategy better": f"{int(r['n_better'])}/{int(r['n_pairs'])}",
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "Strategy − Random",
            "Measure",
            "Pairs",
            "Mean difference (points)",
            "95% bootstrap CI",
            "Strategy better",
        ],
    )


def html_page(title: str, table: pd.DataFrame, notes: Sequence[str]) -> str:
    """A small self-contained HTML page (inline CSS) of a table and its notes."""
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #bbb;padding:4px 8px;text-align:right}"
        "th{background:#eee}td:first-child,th:first-child{text-align:left}"
    )
    body = table.to_html(index=False, escape=True, border=0) if len(table) else "<p>(no rows)</p>"
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body><h2>{html.escape(title)}</h2>{body}"
        f"<ul>{items}</ul></body></html>\n"
    )
