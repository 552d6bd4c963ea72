"""The `aggregate` step: every table of the report from all runs, written atomically.

One function so the rule's script stays a few lines; the table logic is in tables.py and the
formatting in render.py.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from alnsfw.io import write_csv, write_text
from alnsfw.markdown import markdown_table
from alnsfw.report import render
from alnsfw.report.options import ReportOptions
from alnsfw.report.runs import RunSpec, load_cycles, load_full, missing_frame, split_existing
from alnsfw.report.tables import (
    add_peer_columns,
    key_percentage_table,
    paired_table,
    summary_table,
)

log = logging.getLogger(__name__)

KEY_METRICS = {
    # output name: (cycles.csv column, title, decimals)
    "table2": ("accuracy", "Table 2: test accuracy (%) at key percentages of labelled data", 2),
    "f1": ("f1", "F1 score (porn = positive) at key percentages of labelled data", 3),
    "roc_auc": ("roc_auc", "ROC-AUC at key percentages of labelled data", 3),
    "table2_video": (
        "video_accuracy",
        "Table 2, video level: test video accuracy (%) at key percentages of labelled data",
        2,
    ),
}
VIDEO_NOTE = (
    "Video level: each test video's keyframe P(porn) reduced to one score, porn when it reaches "
    "the threshold; aggregation and threshold chosen per run and cycle on the validation split "
    "(columns video_aggregation, video_threshold of cycles.csv), never on the test fold."
)


PEER_NOTE = (
    "Zero-shot peers (report.peers, docs/peers.md): a ready-made classifier scored on the same "
    "test keyframes without training on this data; its P(porn) >= 0.5 is porn. Like full "
    "supervision its value is the same at every %; mean ± std over the same fold x seed test sets."
)
PEER_OP_NOTE = (
    "Operating point: the threshold export.operating_point picks on each split's validation "
    "keyframes (as export does for our models), applied to its test keyframes; video accuracy "
    "uses the video rule chosen on validation, as every cycle of ours does."
)
PEER_TABLE_COLUMNS = {
    "accuracy": "Accuracy (%)",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "video_accuracy": "Video accuracy (%)",
    "precision_at_0.5": "Precision @0.5",
    "recall_at_0.5": "Recall @0.5",
    "fpr_at_0.5": "FPR @0.5",
    "operating_threshold": "Operating threshold",
    "precision_at_op": "Precision @op",
    "recall_at_op": "Recall @op",
    "fpr_at_op": "FPR @op",
}


def peer_table(peer_runs: pd.DataFrame, display: bool = False) -> pd.DataFrame:
    """One row per peer: mean and sample std over its runs of each per-run metric (accuracies
    in percent); `display`: formatted as mean ± std for Markdown and HTML."""
    rows = []
    for peer, runs in peer_runs.groupby("peer", sort=False):
        row: dict[str, Any] = {"peer": peer, "n_runs": len(runs)}
        for column, header in PEER_TABLE_COLUMNS.items():
            values = runs[column].to_numpy(dtype=float)
            values = values * (100.0 if column in ("accuracy", "video_accuracy") else 1.0)
            mean = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
            finite = values[np.isfinite(values)]
            std = float(np.std(finite, ddof=1)) if finite.size > 1 else float("nan")
            if display:
                row[header] = render.mean_std(mean, std, 2 if "%" in header else 3)
            else:
                row[f"{column}_mean"], row[f"{column}_std"] = mean, std
        rows.append(row)
    table = pd.DataFrame(rows)
    if display:
        table = table.rename(columns={"peer": "Peer", "n_runs": "Runs"})
    return table


# Fewer fold x seed pairs than this, and the paired table warns that its CIs mean little.
MIN_PAIRS_FOR_CI = 5


def coverage_note(present: Sequence[RunSpec], missing: Sequence[RunSpec]) -> str:
    """One line saying whether every expected run went in, and which did not."""
    total = len(present) + len(missing)
    if not missing:
        return f"All {total} expected runs (active learning and full supervision) are included."
    names = ", ".join(r.label for r in missing)
    return (
        f"PARTIAL RESULTS (report.allow_partial): {len(missing)} of {total} expected runs are "
        f"missing and left out: {names}."
    )


def _folds_seeds(present: Sequence[RunSpec]) -> str:
    folds = sorted({r.fold for r in present})
    seeds = sorted({r.seed for r in present})
    return f"folds {', '.join(map(str, folds))}; seeds {', '.join(map(str, seeds))}"


def aggregate(
    runs: Sequence[RunSpec],
    strategies: Sequence[str],
    options: ReportOptions,
    outputs: Mapping[str, str],
    peers: Sequence[str] = (),
) -> None:
    """Write table2, f1, roc_auc, summary, paired (csv, md, html each) and missing.csv.

    `peers`: the per-run metric files of the zero-shot peers (report.peers, rule peer_metrics);
    each adds a column to Table 2 and its twins and a row to the `peers` table.

    `outputs` maps `<table>_<csv|md|html>` and `missing` to paths. Missing runs are an error
    unless options.allow_partial, because a mean over fewer runs than configured must be
    visible, not accidental.
    """
    present, missing = split_existing(runs)
    if missing and not options.allow_partial:
        raise FileNotFoundError(
            "missing run results (set report.allow_partial: true to aggregate what exists): "
            + ", ".join(r.path for r in missing)
        )
    for run in missing:
        log.warning("missing run, left out: %s (%s)", run.label, run.path)
    cycles = load_cycles(present)
    full = load_full(present)
    keys = list(options.key_percentages)
    coverage = coverage_note(present, missing)
    over = (
        f"Mean ± sample std over the fold x seed runs ({_folds_seeds(present)}); full "
        "supervision is trained on 100% of the training pool."
    )
    rule_note = (
        f"Reading cycles at key percentages: {options.interpolation} = "
        f"{render.RULE_TEXT[options.interpolation]}. A key more than "
        f"{options.edge_tolerance:g} points outside a run's labelled range is left empty (–)."
    )
    write_csv(outputs["missing"], missing_frame(missing))
    peer_runs = pd.concat([pd.read_csv(p) for p in peers]) if peers else pd.DataFrame()
    peer_names = list(dict.fromkeys(peer_runs["peer"])) if len(peer_runs) else []

    for name, (metric, title, decimals) in KEY_METRICS.items():
        table = key_percentage_table(
            cycles, full, strategies, metric, keys, options.interpolation, options.edge_tolerance
        )
        table = add_peer_columns(table, peer_runs, peer_names, metric)
        display = render.key_table_display(table, strategies, decimals, peer_names)
        notes = [over, rule_note, coverage] + ([VIDEO_NOTE] if metric.startswith("video") else [])
        if peer_names:
            notes.append(PEER_NOTE)
        _write_all(outputs, name, table, title, display, notes)
    if peer_names:
        _write_all(
            outputs,
            "peers",
            peer_table(peer_runs),
            "Zero-shot peers: test metrics at threshold 0.5 and at the operating point",
            peer_table(peer_runs, display=True),
            [PEER_NOTE, PEER_OP_NOTE],
        )

    summary = summary_table(cycles, full, strategies, options.within_points)
    notes = [
        "ALC: area under the accuracy vs fraction-labelled curve (trapezoid) divided by the "
        "labelled range, per run; mean ± std over runs.",
        "Gain: accuracy at the last cycle minus the first cycle, per run (points).",
        f"Threshold: smallest % labelled from which the fold-averaged curve stays at or above "
        f"full supervision minus {options.within_points:g} point(s); labels saved = the pool's "
        "labels not needed beyond it (mean pool size over folds).",
        coverage,
    ]
    _write_all(
        outputs,
        "summary",
        summary,
        "Learning-curve summary",
        render.summary_display(summary),
        notes,
    )

    paired = paired_table(
        cycles,
        strategies,
        keys,
        options.interpolation,
        options.edge_tolerance,
        options.bootstrap,
        options.bootstrap_seed,
    )
    notes = [
        "Differences are strategy minus random on the same fold and seed (points of accuracy).",
        f"95% CI: percentile bootstrap over the pairs, {options.bootstrap} resamples, "
        f"seed {options.bootstrap_seed}; a CI excluding 0 means a real difference on these runs.",
        rule_note,
        coverage,
    ]
    if "random" not in strategies:
        notes.insert(0, "No paired table: 'random' is not among al.strategies.")
    elif len(paired) and paired["n_pairs"].max() < MIN_PAIRS_FOR_CI:
        # A percentile bootstrap over 2-4 pairs only reshuffles those few values: its interval
        # looks precise but describes nothing beyond these runs.
        notes.insert(
            0,
            f"Only {int(paired['n_pairs'].max())} pair(s) per cell: with fewer than "
            f"{MIN_PAIRS_FOR_CI} the bootstrap CIs are not meaningful (run more folds or seeds).",
        )
    _write_all(
        outputs,
        "paired",
        paired,
        "Strategy vs random: paired differences",
        render.paired_display(paired),
        notes,
    )


def _write_all(
    outputs: Mapping[str, str],
    name: str,
    table: pd.DataFrame,
    title: str,
    display: pd.DataFrame,
    notes: Sequence[str],
) -> None:
    write_csv(outputs[f"{name}_csv"], table)
    write_text(outputs[f"{name}_md"], markdown_table(title, display, notes))
    write_text(outputs[f"{name}_html"], render.html_page(title, display, notes))
