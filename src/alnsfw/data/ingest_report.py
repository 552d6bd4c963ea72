"""What was ingested: the paper's Table 1 (images per class), per-fold counts, a contact sheet.

The paper's own Table 1 cannot be recovered from its text, so the pipeline prints its own from the
data it actually ingested, including the frames whose content label differs from their video's
and the videos that came from shipped keyframes rather than extraction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from alnsfw.data.folds import FoldPlan
from alnsfw.data.layout import CLASSES
from alnsfw.data.store import read_index
from alnsfw.io import atomic_path, write_csv, write_text
from alnsfw.markdown import markdown_table


def table1(index: pd.DataFrame) -> pd.DataFrame:
    """Videos and images per class folder, with per-frame label counts, and a total row.

    `index` is the keyframe index (store.read_index), which knows shipped from extracted frames.
    """
    rows = []
    for cls in CLASSES:
        part = index[index["video_class"] == cls]
        shipped = part["video_frame"] < 0  # shipped keyframes have no index in a video
        rows.append(
            {
                "class": cls,
                "videos": part["video"].nunique(),
                "images": len(part),
                "images_porn": int((part["label"] == 1).sum()),
                "images_nonporn": int((part["label"] == 0).sum()),
                "images_relabelled": int((part["label"] != part["video_label"]).sum()),
                "videos_from_shipped_frames": part.loc[shipped, "video"].nunique(),
                "videos_extracted": part.loc[~shipped, "video"].nunique(),
            }
        )
    table = pd.DataFrame(rows)
    total = table.drop(columns="class").sum().to_dict()
    return pd.concat([table, pd.DataFrame([{"class": "total", **total}])], ignore_index=True)


def folds_table(
    manifest: pd.DataFrame, splits: Sequence[Mapping[str, Any]], plan: FoldPlan
) -> pd.DataFrame:
    """Per fold, seed and set (pool, val, test): videos and images per class and per label."""
    manifest = manifest.set_index("row", drop=False)
    rows = []
    for split in sorted(splits, key=lambda s: (s["fold"], s["seed"])):
        fold = split["fold"]
        for part in ("pool", "val", "test"):
            sub = manifest.loc[split[part]]
            by_class = sub["video_class"].value_counts()
            rows.append(
                {
                    "fold": fold,
                    "seed": split["seed"],
                    "set": part,
                    "videos": sub["video"].nunique(),
                    "images": len(sub),
                    **{cls: int(by_class.get(cls, 0)) for cls in CLASSES},
                    "porn": int((sub["label"] == 1).sum()),
                    "nonporn": int((sub["label"] == 0).sum()),
                    "missing_videos": len(plan.missing.get(fold, [])),
                }
            )
    return pd.DataFrame(rows)


def contact_sheet(
    keyframes_h5: str | Path, manifest: pd.DataFrame, out_png: str | Path, per_class: int = 8
) -> None:
    """A PNG grid: one row per class folder, `per_class` keyframes drawn at random (seed 0).

    Each tile is titled with video#frame and its per-frame label (P porn, N non-porn), so
    relabelled frames inside a video can be seen.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    picks = {}
    for cls in CLASSES:
        rows = manifest.loc[manifest["video_class"] == cls, "row"].to_numpy()
        k = min(per_class, len(rows))
        picks[cls] = sorted(rng.choice(rows, size=k, replace=False).tolist()) if k else []
    fig, axes = plt.subplots(
        len(CLASSES), per_class, figsize=(1.3 * per_class, 1.55 * len(CLASSES)), squeeze=False
    )
    by_row = manifest.set_index("row")
    with h5py.File(keyframes_h5, "r") as h5:
        for r, cls in enumerate(CLASSES):
            for c in range(per_class):
                ax = axes[r][c]
                ax.set_xticks([])
                ax.set_yticks([])
                if c >= len(picks[cls]):
                    ax.axis("off")
                    continue
                row = picks[cls][c]
                ax.imshow(h5["images"][row])
                meta = by_row.loc[row]
                tag = "P" if meta["label"] == 1 else "N"
                ax.set_title(f"{meta['video']}#{meta['frame']} {tag}", fontsize=6)
                if c == 0:
                    ax.set_ylabel(cls, fontsize=7)
    fig.suptitle("Sample keyframes per class (P/N: per-frame label)", fontsize=8)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def write_report(
    splits: Sequence[Mapping[str, Any]],
    plan: FoldPlan,
    keyframes_h5: str | Path,
    out: Mapping[str, str | Path],
) -> None:
    """Write table1.csv/.md, folds.csv/.md and the contact sheet (keys of `out`)."""
    manifest = read_index(keyframes_h5)
    t1 = table1(manifest)
    write_csv(out["table1_csv"], t1)
    with h5py.File(keyframes_h5, "r") as h5:
        size, resize = int(h5.attrs["size"]), str(h5.attrs["resize"])
        truncated = [v for v in str(h5.attrs.get("truncated_videos", "")).split(",") if v]
    notes = [
        f"{len(manifest)} keyframes of {manifest['video'].nunique()} videos, stored at "
        f"{size}x{size} ({resize}). images_relabelled: frames whose per-frame label differs "
        "from their video's label.",
    ]
    absent = plan.all_missing()
    if absent:
        notes.append(
            f"{len(absent)} video(s) named in the fold lists are not in the data and were "
            "skipped (data.on_missing: warn): " + ", ".join(absent)
        )
    if truncated:
        notes.append(
            f"{len(truncated)} video(s) decode only partly; the frames read were kept "
            "(data.on_truncated: warn): " + ", ".join(truncated)
        )
    write_text(out["table1_md"], markdown_table("Table 1: images per class", t1, notes))
    ft = folds_table(manifest, splits, plan)
    write_csv(out["folds_csv"], ft)
    fold_notes = []
    missing = sum(len(v) for v in plan.missing.values())
    if missing:
        fold_notes.append(f"{missing} listed video(s) were absent from the data and skipped.")
    if plan.unlisted:
        fold_notes.append(
            f"{len(plan.unlisted)} ingested video(s) are in no test list: "
            + ", ".join(plan.unlisted)
        )
    write_text(out["folds_md"], markdown_table("Images per fold, seed and set", ft, fold_notes))
    contact_sheet(keyframes_h5, manifest, out["contact_sheet"])
