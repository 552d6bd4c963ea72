"""Per-frame labels: the paper labels frames by content, so a frame may disagree with its video.

Default: every keyframe gets its video's label (1 for vPorn, 0 otherwise). An optional CSV
(`video,frame,label`; frame = keyframe number n from 1) overrides it row by row; it may list only
the frames that differ or every frame (the synthetic generator writes every frame).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from alnsfw.data.errors import DataError

log = logging.getLogger(__name__)


def read_frame_labels(path: str | Path) -> pd.DataFrame:
    """The label file as (video, frame, label), checked: columns, integer frames, labels 0/1."""
    path = Path(path)
    fix = "Give a CSV with header video,frame,label (frame: keyframe number from 1; label 0 or 1)."
    try:
        table = pd.read_csv(path, dtype={"video": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"Frame label file '{path}' cannot be read: {exc}. {fix}") from exc
    missing = {"video", "frame", "label"} - set(table.columns)
    if missing:
        raise DataError(f"Frame label file '{path}' lacks the column(s) {sorted(missing)}. {fix}")
    for col in ("frame", "label"):
        values = pd.to_numeric(table[col], errors="coerce")
        bad = values.isna() | (values != values.round())
        if col == "label":
            bad |= ~values.isin([0, 1])
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # 1-based, after the header
            raise DataError(
                f"Frame label file '{path}', line {line}: {col} = {table[col].iat[line - 2]!r} "
                f"is not {'0 or 1' if col == 'label' else 'an integer'}. {fix}"
            )
        table[col] = values.astype(int)
    dup = table.duplicated(["video", "frame"], keep=False)
    if dup.any():
        first = table[dup].iloc[0]
        raise DataError(
            f"Frame label file '{path}' labels {first['video']}#{first['frame']} more than "
            "once. Keep one row per frame."
        )
    return table[["video", "frame", "label"]]


def apply_frame_labels(
    index: pd.DataFrame, labels: pd.DataFrame, path: str | Path, on_missing: str = "error"
) -> np.ndarray:
    """Per-frame labels for `index` (video, frame, video_label): video label unless overridden.

    A label row naming a video or keyframe that was not ingested means the file and the data do
    not match (e.g. a wrong shot-detection threshold): an error, or with `data.on_missing: warn`
    a logged and counted skip.
    """
    merged = index[["video", "frame", "video_label"]].merge(
        labels, on=["video", "frame"], how="left", validate="one_to_one"
    )
    keys = set(zip(index["video"], index["frame"]))
    unmatched = labels[[k not in keys for k in zip(labels["video"], labels["frame"])]]
    if len(unmatched):
        first = unmatched.iloc[0]
        msg = (
            f"Frame label file '{path}' has {len(unmatched)} row(s) for keyframes that were not "
            f"ingested, e.g. {first['video']}#{first['frame']}. Check that the file belongs to "
            "this dataset (and, for extracted keyframes, that keyframes.method/threshold find "
            "the same shots), or set data.on_missing: warn to skip such rows."
        )
        if on_missing != "warn":
            raise DataError(msg)
        log.warning("%s Skipped %d label rows.", msg, len(unmatched))
    has = merged["label"].notna()
    out = np.where(has, merged["label"].fillna(0), merged["video_label"]).astype(np.int8)
    changed = int((out != merged["video_label"].to_numpy()).sum())
    log.info(
        "frame labels from '%s': %d rows, %d matched, %d frames overridden to differ from "
        "their video's label",
        path,
        len(labels),
        int(has.sum()),
        changed,
    )
    return out
