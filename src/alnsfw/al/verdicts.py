"""The `stopping` step: every run's stopping verdicts and the stopping table, from the run files.

Each active-learning run wrote stopping.csv (alnsfw.al.loop: the stop-set predictions, the audit
accuracy and its interval, per cycle) and cycles.csv (the test accuracy per cycle); the
full-supervision run of the same fold and seed wrote metrics.csv. This step evaluates the
configured rules (alnsfw.al.stopping) on each run's record and writes

- stopping_runs.csv: one line per run and rule (alnsfw.report.stopping.VERDICT_COLUMNS);
- stopping.csv|md|html: the table beside Table 2 (alnsfw.report.stopping.stopping_table).

It is apart from the runs on purpose: changing a `stopping` key reruns this step and the figures,
never a training run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alnsfw.al.loop import cycle_records
from alnsfw.al.stopping import StoppingSettings, evaluate_rules
from alnsfw.io import write_csv, write_text
from alnsfw.markdown import markdown_table
from alnsfw.report.render import html_page
from alnsfw.report.runs import FULL, load_full, split_existing
from alnsfw.report.runs import RunSpec as ResultFile
from alnsfw.report.stopping import (
    VERDICT_COLUMNS,
    stopping_display,
    stopping_notes,
    stopping_table,
)

log = logging.getLogger(__name__)

TITLE = "Stopping rules: where each rule fires, against full supervision"


@dataclass(frozen=True)
class StopRun:
    """One active-learning run's two files the verdicts read."""

    fold: int
    seed: int
    strategy: str
    stopping: str  # path of stopping.csv
    cycles: str  # path of cycles.csv


def stop_runs(
    folds: Sequence[int],
    seeds: Sequence[int],
    strategies: Sequence[str],
    stopping_pattern: str,
    cycles_pattern: str,
) -> list[StopRun]:
    """Every configured run's files, from the contract's path patterns ({fold}, {seed},
    {strategy}), in the order of alnsfw.report.runs.expected_runs."""
    return [
        StopRun(
            f,
            s,
            st,
            stopping_pattern.format(fold=f, seed=s, strategy=st),
            cycles_pattern.format(fold=f, seed=s, strategy=st),
        )
        for f in folds
        for s in seeds
        for st in strategies
    ]


def read_stopping(path: str) -> pd.DataFrame:
    """stopping.csv, its packed predictions kept as text (see alnsfw.al.loop.cycle_records)."""
    return pd.read_csv(path, dtype={"stop_predictions": str}).sort_values("cycle")


def run_verdicts(
    run: StopRun, settings: StoppingSettings, full_accuracy: float
) -> list[dict[str, object]]:
    """The verdict lines of one run (VERDICT_COLUMNS), accuracies in percent."""
    stop = read_stopping(run.stopping).reset_index(drop=True)
    cycles = pd.read_csv(run.cycles).set_index("cycle")
    n_pool = int(stop["n_labelled"].iloc[-1])
    if not np.isclose(stop["labelled_share"].iloc[-1], 1.0):
        raise ValueError(
            f"{run.stopping}: the run ends at {100 * stop['labelled_share'].iloc[-1]:.1f}% "
            "labelled, not 100%; rerun it (a finished run always reaches the whole pool)"
        )
    lines = []
    for v in evaluate_rules(cycle_records(stop), settings):
        line: dict[str, object] = {
            "fold": run.fold,
            "seed": run.seed,
            "strategy": run.strategy,
            "rule": v.rule,
            "fired": v.fired,
            "cycle": v.cycle,
            "n_pool": n_pool,
            "full_accuracy": full_accuracy,
            "detail": v.detail,
        }
        if v.fired:
            n = int(stop.loc[stop["cycle"] == v.cycle, "n_labelled"].iloc[0])
            accuracy = 100.0 * float(cycles.loc[v.cycle, "accuracy"])
            line |= {
                "n_labelled": n,
                "pct_labelled": 100.0 * float(v.labelled_share),
                "accuracy": accuracy,
                "gap_points": accuracy - full_accuracy,
                "labels_saved": n_pool - n,
            }
        lines.append(line)
    return lines


def settings_text(settings: StoppingSettings) -> str:
    """The rules' settings in one line, for the table's notes."""
    budget = []
    if settings.budget_share is not None:
        budget.append(f"{100 * settings.budget_share:g}% of the pool")
    if settings.budget_labels is not None:
        budget.append(f"{settings.budget_labels} labels")
    return (
        f"Settings (stopping.*): stabilizing predictions k = {settings.kappa_windows}, kappa >= "
        f"{settings.kappa_threshold:g}; overall uncertainty mean 1 - max p <= "
        f"{settings.uncertainty_threshold:g}; audit plateau over {settings.audit_rounds} cycles; "
        f"budget {' or '.join(budget) or 'none'}."
    )


def stopping_job(
    runs: Sequence[StopRun],
    full_runs: Sequence[ResultFile],
    strategies: Sequence[str],
    config: Mapping[str, object],
    outputs: Mapping[str, str],
    allow_partial: bool = False,
) -> None:
    """Evaluate the rules of `config["stopping"]` on every run; write outputs runs, csv, md, html.

    A run without its files is an error unless `allow_partial` (report.allow_partial), as in
    the other tables: a mean over fewer runs than configured must be visible.
    """
    settings = StoppingSettings.from_config(config)
    missing = [r for r in runs if not _exists(r.stopping) or not _exists(r.cycles)]
    present_full, missing_full = split_existing([r for r in full_runs if r.method == FULL])
    absent = [r.stopping for r in missing] + [r.path for r in missing_full]
    if absent and not allow_partial:
        raise FileNotFoundError(
            "missing run results (set report.allow_partial: true to use what exists): "
            + ", ".join(absent)
        )
    full = load_full(present_full)
    full_acc = {(int(r.fold), int(r.seed)): float(r.accuracy) for r in full.itertuples()}
    lines = []
    for run in runs:
        if run in missing:
            log.warning("missing run, left out: %s", run.stopping)
            continue
        acc = full_acc.get((run.fold, run.seed), float("nan"))
        lines += run_verdicts(run, settings, acc)
    verdicts = pd.DataFrame(lines, columns=VERDICT_COLUMNS)
    write_csv(outputs["runs"], verdicts)
    table = stopping_table(verdicts, strategies, settings.rules)
    total = len(runs) + len(full_runs)
    coverage = (
        f"All {total} expected runs are included."
        if not absent
        else f"PARTIAL RESULTS (report.allow_partial): missing and left out: {', '.join(absent)}."
    )
    notes = stopping_notes(verdicts, settings_text(settings), coverage)
    display = stopping_display(table)
    write_csv(outputs["csv"], table)
    write_text(outputs["md"], markdown_table(TITLE, display, notes))
    write_text(outputs["html"], html_page(TITLE, display, notes))


def _exists(path: str) -> bool:
    return os.path.exists(path)
