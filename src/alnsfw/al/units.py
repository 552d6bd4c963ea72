"""Query units: what one task labels. A keyframe (the paper), a shot, or a whole video.

`al.unit: keyframe` is the paper's loop, untouched. With `shot` or `video`, one task shows a
unit's keyframes side by side and labels all of them (alnsfw.al.cost counts what that costs):

- video: every keyframe of one video;
- shot: a run of `al.shot_keyframes` consecutive keyframes of one video (the last run of a video
  may be shorter). keyframes.h5 holds one keyframe per detected shot (docs/CONTRACT.md), so a
  "shot" task is a short stretch of consecutive shots, a scene; rows are ordered by video, then
  frame, so consecutive rows of a video are consecutive keyframes.

A unit is fixed over the whole keyframes.h5, so the pool holds part of it when the validation
split is frame-level (splits.val_unit: frame): a task labels the unit's pool keyframes that are
still unlabelled; validation and test rows are never shown. The test fold is made of whole
videos, so no unit has keyframes on both sides of train and test (`check_units_split` refuses a
split where one does).

Ranking: the strategy scores keyframes as always, and a unit's score is the mean (default) or the
max of its candidate keyframes' scores (`al.unit_score`). Mean is the default because a task
shows every keyframe of the unit: mean ranks by the information per image shown, while max lets
one uncertain keyframe bring in a unit of confident ones. A strategy that needs nothing from the
model (random) ranks the units themselves, uniformly: averaging random keys per keyframe would
favour small units (their means spread further). `al.query_size` counts keyframes: units are
taken in rank order until the batch holds at least query_size keyframes (a unit is never split,
so a batch may exceed it by less than one unit), which keeps the % labelled grid of the curves
comparable with the keyframe runs.
"""

from __future__ import annotations

import numpy as np

UNITS = ("keyframe", "shot", "video")
UNIT_SCORES = ("mean", "max")


def unit_ids(videos: np.ndarray, unit: str, shot_keyframes: int) -> np.ndarray:
    """An integer unit id per keyframe row (ids compare equal within one call only).

    `videos`: an integer (or string) video id per row of keyframes.h5, rows ordered by video,
    then frame. keyframe: each row its own unit; video: the video; shot: runs of
    `shot_keyframes` consecutive rows of one video.
    """
    videos = np.asarray(videos)
    n = len(videos)
    if unit == "keyframe":
        return np.arange(n, dtype=np.int64)
    video_id = np.unique(videos, return_inverse=True)[1].astype(np.int64)
    if unit == "video":
        return video_id
    if unit != "shot":
        raise ValueError(f"al.unit must be one of {UNITS}, got {unit!r}")
    if shot_keyframes < 1:
        raise ValueError(f"al.shot_keyframes must be >= 1, got {shot_keyframes}")
    # position of each row among its video's rows, in row order
    order = np.argsort(video_id, kind="stable")
    sorted_ids = video_id[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1]
    lengths = np.diff(np.r_[starts, n])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, lengths)
    pairs = np.stack([video_id, rank // int(shot_keyframes)], axis=1)
    return np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def check_units_split(units: np.ndarray, pool: np.ndarray, test: np.ndarray) -> None:
    """Refuse a split in which a unit has keyframes in both the pool and the test set."""
    units = np.asarray(units)
    shared = np.intersect1d(units[np.asarray(pool)], units[np.asarray(test)])
    if len(shared):
        raise ValueError(
            f"split: {len(shared)} query unit(s) (al.unit) have keyframes in both the pool and "
            "the test set; the test fold must be made of whole videos (data.test_list)"
        )


def unit_scores(
    keyframe_units: np.ndarray, scores: np.ndarray, how: str
) -> tuple[np.ndarray, np.ndarray]:
    """(distinct unit ids ascending, each unit's score): the mean or max of its keyframes'."""
    if how not in UNIT_SCORES:
        raise ValueError(f"al.unit_score must be one of {UNIT_SCORES}, got {how!r}")
    ids, inverse = np.unique(np.asarray(keyframe_units), return_inverse=True)
    scores = np.asarray(scores, dtype=np.float64)
    if how == "mean":
        total = np.bincount(inverse, weights=scores, minlength=len(ids))
        return ids, total / np.bincount(inverse, minlength=len(ids))
    best = np.full(len(ids), -np.inf)
    np.maximum.at(best, inverse, scores)
    return ids, best


def rank_units(scores: np.ndarray) -> np.ndarray:
    """Unit positions by score descending, ties by position (the strategies' tie rule)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.lexsort((np.arange(len(scores)), -scores)).astype(np.int64)


def take_units(
    order: np.ndarray, ids: np.ndarray, keyframe_units: np.ndarray, query_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Walk the units in `order` until the batch holds >= `query_size` keyframes (all when fewer
    are left). Returns (positions of the chosen keyframes, grouped by unit in rank order and
    ascending within a unit; the rank of each chosen keyframe's unit)."""
    keyframe_units = np.asarray(keyframe_units)
    chosen, ranks, total = [], [], 0
    for rank, position in enumerate(order):
        members = np.flatnonzero(keyframe_units == ids[position])
        chosen.append(members)
        ranks.append(np.full(len(members), rank, dtype=np.int64))
        total += len(members)
        if total >= query_size:
            break
    if not chosen:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    return np.concatenate(chosen).astype(np.int64), np.concatenate(ranks)
