"""Whole-video verdicts from per-frame probabilities: one rule shared by the experiment and predict.

It sits beside alnsfw.metrics, below both `al` (which records video metrics every cycle) and
`predict` (which applies an exported run's rule), so that neither imports the other.

A moderation team decides per video and the NPDI literature reports accuracy per video, so the
frame probabilities P(porn) of a video are reduced to one score and compared with a threshold:

==============  ==============================================================================
aggregation     video score
==============  ==============================================================================
mean            mean of the frames' P(porn)
max             highest P(porn): one clearly pornographic frame flags the video
topk_mean       mean of the `top_k` highest P(porn) (all frames when fewer): between the two
fraction        share of frames with P(porn) >= `frame_threshold`
==============  ==============================================================================

The verdict is porn when score >= `threshold`. With `aggregation: auto` and/or `threshold: auto`
(the defaults) both are chosen on the validation split, never on the test fold: each candidate
aggregation gets the threshold that maximises video accuracy on the validation videos, and the
aggregation with the best such accuracy wins (ties: candidate order, then the threshold nearest
0.5). The active-learning loop records per cycle which rule was chosen (`video_aggregation`,
`video_threshold`) beside the test videos' accuracy, F1 and ROC-AUC, and an exported model carries
its run's final rule in its JSON, which `alnsfw predict` applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alnsfw.schema import config_section

AGGREGATIONS = ("mean", "max", "topk_mean", "fraction")
VIDEO_METRIC_COLUMNS = [
    "n_test_videos",
    "video_accuracy",
    "video_f1",
    "video_roc_auc",
    "video_aggregation",
    "video_threshold",
]


@dataclass(frozen=True)
class VideoSettings:
    """Config section `video`; keys a partial config (tests, a campaign) leaves out come from the
    schema, the one place that states their defaults."""

    aggregation: str  # a name of AGGREGATIONS, or auto
    threshold: float | str  # a number, or auto
    top_k: int
    frame_threshold: float
    candidates: tuple[str, ...]  # aggregations tried by auto, in order of preference

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> VideoSettings:
        """The `video` section of a (possibly partial) config."""
        video = config_section(cfg, "video")
        threshold = video["threshold"]
        return cls(
            aggregation=str(video["aggregation"]),
            threshold=threshold if threshold == "auto" else float(threshold),
            top_k=int(video["top_k"]),
            frame_threshold=float(video["frame_threshold"]),
            candidates=tuple(str(c) for c in video["candidates"]),
        )


@dataclass(frozen=True)
class VideoRule:
    """How frame probabilities become a video verdict (see the module docstring)."""

    aggregation: str
    threshold: float
    top_k: int
    frame_threshold: float

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"video aggregation '{self.aggregation}' is not one of {', '.join(AGGREGATIONS)}"
            )
        if self.top_k < 1:
            raise ValueError(f"video top_k must be >= 1, got {self.top_k}")

    def score(self, prob_porn: Sequence[float] | np.ndarray) -> float:
        """The video score of one video's frame probabilities (NaN for a video without frames)."""
        return aggregate(prob_porn, self.aggregation, self.top_k, self.frame_threshold)

    def settled(self, prob_porn: Sequence[float] | np.ndarray, remaining: int) -> bool:
        """True when no P(porn) of the `remaining` frames can change the verdict (early exit).

        Every aggregation rises with each frame's score, so the lowest final score has all the
        remaining frames at 0 and the highest has them at 1. An over-estimate of `remaining` is
        safe (the bounds only widen), an under-estimate is not.
        """
        p = np.asarray(prob_porn, dtype=np.float64).ravel()
        if p.size == 0:
            return False
        m = max(int(remaining), 0)
        lowest = self.score(np.concatenate([p, np.zeros(m)]))
        highest = self.score(np.concatenate([p, np.ones(m)]))
        return bool(lowest >= self.threshold or highest < self.threshold)

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the exported model's JSON."""
        return {
            "aggregation": self.aggregation,
            "threshold": float(self.threshold),
            "top_k": int(self.top_k),
            "frame_threshold": float(self.frame_threshold),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoRule:
        """Inverse of to_dict (unknown keys are ignored)."""
        return cls(
            aggregation=str(data["aggregation"]),
            threshold=float(data["threshold"]),
            top_k=int(data["top_k"]),
            frame_threshold=float(data["frame_threshold"]),
        )


def aggregate(
    prob_porn: Sequence[float] | np.ndarray,
    method: str,
    top_k: int,
    frame_threshold: float,
) -> float:
    """One video's score from its frames' P(porn) by `method` (one of AGGREGATIONS)."""
    p = np.asarray(prob_porn, dtype=np.float64).ravel()
    if p.size == 0:
        return float("nan")
    if method == "mean":
        return float(p.mean())
    if method == "max":
        return float(p.max())
    if method == "topk_mean":
        return float(np.sort(p)[::-1][: int(top_k)].mean())
    if method == "fraction":
        return float(np.mean(p >= float(frame_threshold)))
    raise ValueError(f"video aggregation '{method}' is not one of {', '.join(AGGREGATIONS)}")


def _rows_by_video(videos: np.ndarray) -> list[tuple[Any, np.ndarray]]:
    """(video, its row indices) per distinct video, in order of first appearance."""
    if len(videos) == 0:
        return []
    names, first, inverse = np.unique(videos, return_index=True, return_inverse=True)
    by_video = np.argsort(inverse, kind="stable")
    groups = np.split(by_video, np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1])
    return [(names[g], groups[g]) for g in np.argsort(first, kind="stable")]


def video_scores(
    videos: Sequence[str] | np.ndarray,
    prob_porn: Sequence[float] | np.ndarray,
    rule: VideoRule,
    labels: Sequence[int] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Per video (in order of first appearance): video, n_frames, score [, label].

    `labels` are per-frame copies of the video's label; a video whose frames disagree is an error
    (the video label is what a video-level metric needs, not the per-frame content labels).
    """
    videos = np.asarray(videos)
    prob = np.asarray(prob_porn, np.float64)
    frame_labels = None if labels is None else np.asarray(labels, dtype=np.int64)
    out = []
    # The rows of each video, videos in order of first appearance and rows in their order: what
    # pandas' groupby(sort=False) gives, in NumPy (the loop calls this 48 times per run; a
    # groupby took 20 ms per call).
    for video, rows in _rows_by_video(videos):
        row = {"video": video, "n_frames": len(rows), "score": rule.score(prob[rows])}
        if frame_labels is not None:
            values = np.unique(frame_labels[rows])
            if len(values) != 1:
                raise ValueError(f"video {video}: its frames carry different video labels")
            row["label"] = int(values[0])
        out.append(row)
    columns = ["video", "n_frames", "score"] + (["label"] if labels is not None else [])
    return pd.DataFrame(out, columns=columns)


def video_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, F1 (porn = positive, 0 when undefined) and ROC-AUC of video verdicts."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if len(labels) == 0:
        return {
            "video_accuracy": float("nan"),
            "video_f1": float("nan"),
            "video_roc_auc": float("nan"),
        }
    from alnsfw.metrics import roc_auc  # scikit-learn: the workflow's, not the light install's

    pred = (scores >= threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (labels == 1)))
    fp = int(np.sum((pred == 1) & (labels == 0)))
    fn = int(np.sum((pred == 0) & (labels == 1)))
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    return {
        "video_accuracy": float(np.mean(pred == labels)),
        "video_f1": float(f1),
        "video_roc_auc": roc_auc(labels, scores),
    }


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy): the threshold maximising accuracy of `scores >= threshold`.

    Candidates are 0.5 and the midpoints between consecutive distinct scores (plus one below the
    lowest and one above the highest); ties go to the candidate nearest 0.5, so a rule that any
    threshold fits stays at the natural 0.5.
    """
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    values = np.unique(scores[np.isfinite(scores)])
    candidates = [0.5]
    if values.size:
        candidates += list((values[1:] + values[:-1]) / 2.0)
        candidates += [float(values[0]) - 1e-6, float(values[-1]) + 1e-6]
    best = (0.5, -1.0)
    for t in sorted(set(candidates), key=lambda c: (abs(c - 0.5), c)):
        acc = float(np.mean((scores >= t) == (labels == 1))) if len(labels) else float("nan")
        if acc > best[1] + 1e-12:
            best = (float(t), acc)
    return best


def choose_rule(
    videos: Sequence[str] | np.ndarray,
    prob_porn: Sequence[float] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    settings: VideoSettings,
) -> VideoRule:
    """The rule of `video`, its `auto` parts chosen on the (validation) frames given."""
    top_k, frame_threshold = settings.top_k, settings.frame_threshold
    threshold = settings.threshold
    names = list(settings.candidates) if settings.aggregation == "auto" else [settings.aggregation]
    best: tuple[float, VideoRule] | None = None
    for name in names:
        rule = VideoRule(name, 0.5, top_k, frame_threshold)
        table = video_scores(videos, prob_porn, rule, labels)
        if threshold == "auto":
            t, acc = best_threshold(table["label"].to_numpy(), table["score"].to_numpy())
        else:
            t = float(threshold)
            acc = video_metrics(table["label"].to_numpy(), table["score"].to_numpy(), t)[
                "video_accuracy"
            ]
        candidate = VideoRule(name, t, top_k, frame_threshold)
        if best is None or (np.isfinite(acc) and acc > best[0] + 1e-12):
            best = (acc if np.isfinite(acc) else -1.0, candidate)
    assert best is not None
    return best[1]


@dataclass(frozen=True)
class VideoIndex:
    """What video-level evaluation needs about keyframe rows: their video and its label."""

    video: np.ndarray  # per keyframe row, the video name
    video_label: np.ndarray  # per keyframe row, the video's label (1 = porn)
    settings: VideoSettings

    def columns(
        self,
        val_rows: np.ndarray,
        val_prob_porn: np.ndarray,
        test_rows: np.ndarray,
        test_prob_porn: np.ndarray,
    ) -> dict[str, Any]:
        """VIDEO_METRIC_COLUMNS of one cycle: rule chosen on validation rows, applied to test."""
        val_rows, test_rows = np.asarray(val_rows), np.asarray(test_rows)
        rule = choose_rule(
            self.video[val_rows], val_prob_porn, self.video_label[val_rows], self.settings
        )
        table = video_scores(
            self.video[test_rows], test_prob_porn, rule, self.video_label[test_rows]
        )
        return {
            "n_test_videos": len(table),
            **video_metrics(table["label"].to_numpy(), table["score"].to_numpy(), rule.threshold),
            "video_aggregation": rule.aggregation,
            "video_threshold": rule.threshold,
        }


def empty_columns() -> dict[str, Any]:
    """VIDEO_METRIC_COLUMNS when no video index is given (tests with bare labels): all missing."""
    return {c: float("nan") for c in VIDEO_METRIC_COLUMNS}


def video_columns(
    videos: VideoIndex | None,
    learner: Any,  # noqa: ANN401 - anything with predict_proba(rows) -> [n, 2]
    val_rows: np.ndarray,
    test_rows: np.ndarray,
    test_proba: np.ndarray,
    val_proba: np.ndarray | None = None,
) -> dict[str, Any]:
    """Video-level columns of one trained model: scores the validation rows to choose the rule.

    Called once per cycle by the active-learning loop and once by the baseline, with the test
    probabilities they already computed, so both record the same columns the same way; the loop
    also passes its validation probabilities (`val_proba`), which it needs for the stopping rules.
    """
    if videos is None:
        return empty_columns()
    if val_proba is None:
        val_proba = learner.predict_proba(val_rows)
    val = np.asarray(val_proba, dtype=np.float64)[:, 1]
    test = np.asarray(test_proba, dtype=np.float64)[:, 1]
    return videos.columns(val_rows, val, test_rows, test)
