"""Find and load the per-run results (cycles.csv, full/metrics.csv) that the report summarises.

The report never guesses which runs should exist: the workflow passes the configured folds, seeds
and strategies, so a run that is absent is named as missing instead of silently shrinking a mean.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

FULL = "full"
"""Method name of full supervision (al.strategies may not use it)."""

# The cycles.csv columns the report reads (a subset of alnsfw.al.loop.CYCLE_COLUMNS, which lists
# every column a run writes), checked when a run is loaded.
REPORT_CYCLE_COLUMNS = (
    "cycle",
    "n_labelled",
    "pct_labelled",
    "n_test",
    "accuracy",
    "f1",
    "roc_auc",
)
FULL_COLUMNS = ("n_labelled", "n_test", "accuracy", "f1", "roc_auc")
REPORT_VIDEO_COLUMNS = ("n_test_videos", "video_accuracy", "video_f1", "video_roc_auc")
"""Video-level columns (alnsfw.video_eval); NaN for results written before they existed."""


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One expected result file: an active-learning run (method = strategy) or full supervision."""

    fold: int
    seed: int
    method: str
    path: str

    @property
    def label(self) -> str:
        """Short name used in missing-run lists, e.g. `fold0/seed1/entropy`."""
        return f"fold{self.fold}/seed{self.seed}/{self.method}"


def expected_runs(
    folds: Iterable[int],
    seeds: Iterable[int],
    strategies: Iterable[str],
    cycles_pattern: str,
    full_pattern: str,
) -> list[RunSpec]:
    """All runs the configuration asks for, strategies first, then full supervision.

    The patterns are the contract's paths with `{fold}`, `{seed}` and (cycles only) `{strategy}`.
    """
    folds, seeds, strategies = list(folds), list(seeds), list(strategies)
    runs = [
        RunSpec(f, s, st, cycles_pattern.format(fold=f, seed=s, strategy=st))
        for f in folds
        for s in seeds
        for st in strategies
    ]
    runs += [RunSpec(f, s, FULL, full_pattern.format(fold=f, seed=s)) for f in folds for s in seeds]
    return runs


def split_existing(runs: Sequence[RunSpec]) -> tuple[list[RunSpec], list[RunSpec]]:
    """(runs whose file exists, runs whose file is missing)."""
    present = [r for r in runs if os.path.exists(r.path)]
    missing = [r for r in runs if not os.path.exists(r.path)]
    return present, missing


def _require(frame: pd.DataFrame, columns: Sequence[str], path: str) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(f"{path} lacks the column(s) {absent} (see docs/CONTRACT.md)")


def load_cycles(runs: Sequence[RunSpec]) -> pd.DataFrame:
    """All cycles of the given AL runs in one long frame with fold, seed, strategy columns.

    Accuracy is turned into percent here, once, because every table and figure shows it so
    (the paper's unit); F1 and ROC-AUC keep their natural [0, 1] scale.
    """
    frames = []
    for run in runs:
        if run.method == FULL:
            continue
        frame = pd.read_csv(run.path)
        _require(frame, REPORT_CYCLE_COLUMNS, run.path)
        frame = frame.sort_values("cycle").reset_index(drop=True)
        frame = frame.reindex(columns=[*frame.columns, *_absent(frame, REPORT_VIDEO_COLUMNS)])
        frame.insert(0, "strategy", run.method)
        frame.insert(0, "seed", run.seed)
        frame.insert(0, "fold", run.fold)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["fold", "seed", "strategy", *REPORT_CYCLE_COLUMNS])
    cycles = pd.concat(frames, ignore_index=True)
    cycles["accuracy"] = cycles["accuracy"] * 100.0
    cycles["video_accuracy"] = cycles["video_accuracy"] * 100.0
    return cycles


def load_full(runs: Sequence[RunSpec]) -> pd.DataFrame:
    """The one-row metrics.csv of every given full-supervision run, with fold and seed columns."""
    rows = []
    for run in runs:
        if run.method != FULL:
            continue
        frame = pd.read_csv(run.path)
        _require(frame, FULL_COLUMNS, run.path)
        frame = frame.reindex(columns=[*frame.columns, *_absent(frame, REPORT_VIDEO_COLUMNS)])
        row = frame.iloc[0].to_dict()
        rows.append({"fold": run.fold, "seed": run.seed, **row})
    full = pd.DataFrame(rows, columns=["fold", "seed", *FULL_COLUMNS] if not rows else None)
    if rows:
        full["accuracy"] = full["accuracy"] * 100.0
        full["video_accuracy"] = full["video_accuracy"] * 100.0
    return full


def _absent(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    return [c for c in columns if c not in frame.columns]


def missing_frame(missing: Sequence[RunSpec]) -> pd.DataFrame:
    """The missing runs as a table (fold, seed, method, path) for missing.csv."""
    return pd.DataFrame(
        [{"fold": r.fold, "seed": r.seed, "method": r.method, "path": r.path} for r in missing],
        columns=["fold", "seed", "method", "path"],
    )
