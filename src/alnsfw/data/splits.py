"""Per fold and seed: the training pool, the validation set and the test set, as HDF5 row indices.

Validation is `val_fraction` of the fold's training data, drawn at random from a stream seeded
by (seed, fold), so the same fold and seed always give the same split. The draw is stratified by
label (frame unit: frame labels; video unit: video labels) so that small configurations still get
both classes in validation; in expectation this is the paper's plain random 20%. `val_unit: video`
puts whole videos into validation, because frames of one video are near-duplicates and would
otherwise leak between pool and validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alnsfw.data.errors import DataError
from alnsfw.data.folds import FoldPlan

_SPLIT_STREAM = 11  # keeps this stream apart from other users of the same seed


def _draw(groups: dict[Any, list[Any]], fraction: float, rng: np.random.Generator) -> list[Any]:
    """round(fraction * n) items of each group at random, never a whole group of 2 or more."""
    chosen: list[Any] = []
    for key in sorted(groups):
        items = groups[key]
        k = int(round(fraction * len(items)))
        if k >= len(items) > 1:
            k = len(items) - 1
        chosen += [items[i] for i in sorted(rng.choice(len(items), size=k, replace=False))]
    if not chosen and sum(len(v) for v in groups.values()) > 1:
        everything = [x for key in sorted(groups) for x in groups[key]]
        chosen = [everything[int(rng.integers(len(everything)))]]
    return chosen


def _counts(manifest: pd.DataFrame, rows: list[int]) -> dict[str, int]:
    labels = manifest.loc[rows, "label"].to_numpy() if rows else np.zeros(0)
    return {
        "porn": int((labels == 1).sum()),
        "nonporn": int((labels == 0).sum()),
        "total": len(rows),
    }


def make_split(
    manifest: pd.DataFrame,
    plan: FoldPlan,
    fold: int,
    seed: int,
    val_fraction: float = 0.2,
    val_unit: str = "frame",
) -> dict[str, Any]:
    """The split of one (fold, seed) as the JSON-ready dict of docs/CONTRACT.md."""
    manifest = manifest.set_index("row", drop=False).sort_index()
    test_videos, train_videos = set(plan.test[fold]), set(plan.train[fold])
    test = manifest.index[manifest["video"].isin(test_videos)].tolist()
    train = manifest[manifest["video"].isin(train_videos)]
    rng = np.random.default_rng([seed, fold, _SPLIT_STREAM])
    if val_unit == "frame":
        groups = {int(k): g["row"].tolist() for k, g in train.groupby("label")}
        val = sorted(_draw(groups, val_fraction, rng))
    elif val_unit == "video":
        per_video = train.groupby("video")["video_label"].first()
        groups = {int(k): sorted(v.index.tolist()) for k, v in per_video.groupby(per_video)}
        val_videos = set(_draw(groups, val_fraction, rng))
        val = sorted(train.loc[train["video"].isin(val_videos), "row"].tolist())
    else:
        raise ValueError(f"splits.val_unit must be 'frame' or 'video', not {val_unit!r}")
    val_set = set(val)
    pool = [int(r) for r in train["row"] if r not in val_set]
    test, val = [int(r) for r in test], [int(r) for r in val]
    for name, rows in (("test set", test), ("training pool", pool), ("validation set", val)):
        if not rows:
            raise DataError(
                f"The {name} of fold {fold} is empty ({len(test_videos)} test and "
                f"{len(train_videos)} training videos present, {len(train)} training keyframes; "
                f"{plan.describe_lists(fold)}). Add videos to the lists, fix their names, or "
                "choose other splits.folds / splits.val_fraction."
            )
    return {
        "fold": int(fold),
        "seed": int(seed),
        "val_unit": val_unit,
        "val_fraction": float(val_fraction),
        "pool": sorted(pool),
        "val": sorted(val),
        "test": sorted(test),
        "counts": {
            "pool": _counts(manifest, pool),
            "val": _counts(manifest, val),
            "test": _counts(manifest, test),
        },
    }
