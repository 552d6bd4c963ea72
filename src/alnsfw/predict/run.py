"""Score new images and videos with an exported model: the engine of `alnsfw predict`.

Inputs are image files, video files and folders (searched recursively, in sorted order). A video
is reduced to frames the way the workflow does it (one keyframe per detected shot, with the
keyframe settings stored in the model's JSON, through alnsfw.data.keyframes), or, on request,
every k-th frame (`every:K`) or N frames per second (`fps:N`). Every frame is fitted to the
model's square input like the training keyframes (`pad` or `crop`, from the JSON), scored in
batches, and each video gets a score and a verdict from the video rule of the JSON (chosen on the
source run's validation split; see alnsfw.video_eval), unless overridden.

A file that cannot be read (or is neither image nor video) is named on stderr and skipped; the
others are still scored, and `PredictResult.errors` lists it, so the command exits non-zero.
frames.csv and videos.csv are written atomically (alnsfw.io).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from alnsfw.io import write_csv
from alnsfw.predict.api import Classifier
from alnsfw.predict.media import (  # noqa: F401 - re-exported: alnsfw.predict.run.load_bundle
    IMAGE_EXTENSIONS,
    VERDICTS,
    VIDEO_EXTENSIONS,
    Bundle,
    Item,
    MediaError,
    discover,
    extractor_settings,
    load_bundle,
    parse_sampling,
    read_image_file,
    video_frames,
)
from alnsfw.video_eval import VideoRule

log = logging.getLogger(__name__)

FRAME_COLUMNS = ["input", "kind", "frame", "time_s", "prob_porn", "verdict"]
VIDEO_VERDICT_COLUMNS = ["input", "n_frames", "score", "verdict"]


@dataclass
class PredictResult:
    """What `predict` found: per-frame and per-video tables, and the inputs it had to skip."""

    frames: pd.DataFrame
    videos: pd.DataFrame
    errors: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0
    rule: VideoRule | None = None
    frame_threshold: float = 0.5

    def summary(self, bundle: Bundle | None = None) -> str:
        """A few lines for a person: counts, verdicts, the rule used, what was skipped."""
        lines = []
        if bundle is not None:
            src = bundle.meta.get("source_run", {})
            lines.append(
                f"model {bundle.path} ({bundle.size} px; from fold{src.get('fold')}/"
                f"seed{src.get('seed')}/{src.get('method')})"
            )
        images = self.frames[self.frames["kind"] == "image"]
        if len(images):
            flagged = int((images["verdict"] == "porn").sum())
            lines.append(
                f"{len(images)} image(s): {flagged} porn (P(porn) >= {self.frame_threshold:.3g})"
            )
        if len(self.videos):
            porn = int((self.videos["verdict"] == "porn").sum())
            n_frames = int(self.videos["n_frames"].sum())
            rule = self.rule
            lines.append(
                f"{len(self.videos)} video(s), {n_frames} frames scored: {porn} porn, "
                f"{len(self.videos) - porn} non-porn (video score = {rule.aggregation} of the "
                f"frames' P(porn), porn when >= {rule.threshold:.3g})"
            )
        if self.ignored:
            lines.append(f"{self.ignored} non-media file(s) in the folders ignored")
        if self.errors:
            lines.append(f"{len(self.errors)} input(s) skipped (named above on stderr)")
        if not lines or (not len(self.frames) and not self.errors):
            lines.append("nothing to score")
        return "\n".join(lines)


def predict(
    model: str | Path | Bundle,
    inputs: Sequence[str | Path],
    out_dir: str | Path | None = None,
    frames: str = "keyframes",
    batch_size: int = 32,
    aggregation: str | None = None,
    threshold: float | None = None,
    top_k: int | None = None,
    progress: bool | None = None,
    report: Any = None,  # noqa: ANN401 - a callable(str) for skipped inputs; default stderr
    operating_point: str | None = None,
) -> PredictResult:
    """Score `inputs` with `model` (path of a .onnx or .keras export, or a loaded Bundle).

    Writes out_dir/frames.csv (input, kind, frame, time_s, prob_porn, verdict; frame and time_s
    empty for images) and out_dir/videos.csv (input, n_frames, score, verdict) when `out_dir` is
    given. `operating_point` (recall=R, fpr=F, accuracy, threshold=T) replaces the JSON's frame
    and video thresholds; `aggregation`, `threshold` and `top_k` then override the video rule;
    `progress` None shows a bar only on a terminal. Scores through alnsfw.predict.api.Classifier.
    """
    from tqdm import tqdm

    classifier = Classifier(model, operating_point=operating_point, batch_size=batch_size)
    bundle = classifier.bundle
    overrides = {"aggregation": aggregation, "threshold": threshold, "top_k": top_k}
    base = classifier.rule.to_dict()
    rule = VideoRule.from_dict(base | {k: v for k, v in overrides.items() if v is not None})
    classifier.rule = rule
    sampling = parse_sampling(frames)
    say = report or (lambda text: print(text, file=sys.stderr, flush=True))
    items, errors, ignored = discover(inputs)
    for path, why in errors:
        say(f"alnsfw predict: skipped {path}: {why}")

    records: list[dict[str, Any]] = []
    pending: list[tuple[dict[str, Any], np.ndarray]] = []  # (record, model input) to score

    def flush() -> None:
        if not pending:
            return
        p = classifier.probabilities([image for _, image in pending])
        for (record, _), value in zip(pending, p):
            record["prob_porn"] = float(value)
            record["verdict"] = classifier.verdict(float(value))
            records.append(record)
        pending.clear()

    show = None if progress is None else not progress
    bar = tqdm(items, desc="predict", unit="file", disable=show, file=sys.stderr)
    for item in bar:
        name = str(item.path)
        try:
            if item.kind == "image":
                image = read_image_file(item.path, bundle.size, bundle.resize)
                pending.append(
                    ({"input": name, "kind": "image", "frame": None, "time_s": None}, image)
                )
            else:
                for index, time_s, image in video_frames(item.path, bundle, sampling):
                    record = {"input": name, "kind": "video", "frame": index, "time_s": time_s}
                    pending.append((record, image))
                    if len(pending) >= batch_size:
                        flush()
        except (MediaError, cv2.error, OSError) as err:
            # Drop this input's frames already scored: a video is judged whole or not at all.
            pending[:] = [entry for entry in pending if entry[0]["input"] != name]
            records[:] = [r for r in records if r["input"] != name]
            errors.append((name, str(err)))
            say(f"alnsfw predict: skipped {name}: {err}")
            continue
        if len(pending) >= batch_size:
            flush()
    flush()
    bar.close()

    frame_table = pd.DataFrame(records, columns=FRAME_COLUMNS)
    frame_table["frame"] = frame_table["frame"].astype("Int64")
    video_table = video_verdicts(frame_table, rule)
    threshold_used = classifier.frame_threshold
    result = PredictResult(frame_table, video_table, errors, ignored, rule, threshold_used)
    if out_dir is not None:
        out = Path(out_dir)
        write_csv(out / "frames.csv", frame_table)
        write_csv(out / "videos.csv", video_table)
    return result


def video_verdicts(frame_table: pd.DataFrame, rule: VideoRule) -> pd.DataFrame:
    """videos.csv from frames.csv's video rows: n_frames, score (rule), verdict."""
    rows = []
    videos = frame_table[frame_table["kind"] == "video"]
    for name, group in videos.groupby("input", sort=False):
        score = rule.score(group["prob_porn"].to_numpy())
        verdict = VERDICTS[int(score >= rule.threshold)]
        rows.append({"input": name, "n_frames": len(group), "score": score, "verdict": verdict})
    return pd.DataFrame(rows, columns=VIDEO_VERDICT_COLUMNS)
