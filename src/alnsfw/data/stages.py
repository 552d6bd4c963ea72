"""One function per rule of the data stage, taking plain values, so scripts stay one call long
and tests (and the `smoke_data` fixture) can run the stage without Snakemake.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from alnsfw.data.extract import extract_keyframes
from alnsfw.data.folds import FoldPlan, load_folds
from alnsfw.data.ingest_report import write_report
from alnsfw.data.splits import make_split
from alnsfw.data.store import merge_shards, read_manifest
from alnsfw.data.synthetic import synthesize_dataset
from alnsfw.io import write_json

log = logging.getLogger(__name__)

__all__ = [
    "synthesize_dataset",
    "extract_keyframes",
    "merge_keyframes",
    "make_splits",
    "ingest_report",
]


def merge_keyframes(
    shards: Sequence[str | Path],
    out_h5: str | Path,
    out_manifest: str | Path,
    frame_labels: str | Path | None,
    on_missing: str = "error",
) -> dict[str, int]:
    """Merge the shards into keyframes.h5 + manifest.csv, with per-frame label overrides."""
    return merge_shards(shards, out_h5, out_manifest, frame_labels or None, on_missing)


def _plan(
    manifest_path: str | Path, data: Mapping[str, Any], n_folds: int
) -> tuple[pd.DataFrame, FoldPlan]:
    manifest = read_manifest(manifest_path)
    plan = load_folds(
        data["root"],
        data["test_list"],
        data["train_list"],
        n_folds,
        set(manifest["video"]),
        data["on_missing"],
    )
    return manifest, plan


def make_splits(
    manifest: str | Path,
    out: str | Path,
    fold: int,
    seed: int,
    data: Mapping[str, Any],
    splits: Mapping[str, Any],
) -> dict[str, Any]:
    """Check the fold lists and write results/splits/fold{fold}/seed{seed}.json."""
    table, plan = _plan(manifest, data, splits["n_folds"])
    split = make_split(table, plan, fold, seed, splits["val_fraction"], splits["val_unit"])
    write_json(out, split)
    log.info("fold %d seed %d: %s", fold, seed, json.dumps(split["counts"]))
    return split


def ingest_report(
    keyframes_h5: str | Path,
    manifest: str | Path,
    split_files: Sequence[str | Path],
    out: Mapping[str, str | Path],
    data: Mapping[str, Any],
    n_folds: int,
) -> None:
    """Write Table 1, the per-fold counts and the contact sheet."""
    _, plan = _plan(manifest, data, n_folds)
    splits = [json.loads(Path(p).read_text()) for p in split_files]
    write_report(splits, plan, keyframes_h5, out)
