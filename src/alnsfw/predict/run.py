"""Score new images and videos with an exported model: the engine of `alnsfw predict`.

Inputs are image files, video files and folders (searched recursively, in sorted order). A video
is reduced to frames the way the workflow does it (one keyframe per detected shot, with the
keyframe settings stored in the model's JSON, through alnsfw.data.keyframes), or, on request,
every k-th frame (`every:K`) or N frames per second (`fps:N`). Every frame is fitted to the
model's square input like the training keyframes (`pad` or `crop`, from the JSON), scored in
batches, and each video gets a score and a verdict from the video rule of the JSON (chosen on the
source run's validation split; see alnsfw.predict.video), unless overridden.

A file that cannot be read (or is neither image nor video) is named on stderr and skipped; the
others are still scored, and `PredictResult.errors` lists it, so the command exits non-zero.
frames.csv and videos.csv are written atomically (alnsfw.io).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from alnsfw.data.keyframes import extract_from_video, fit_square
from alnsfw.io import write_csv
from alnsfw.predict.runtime import load_engine
from alnsfw.predict.video import VideoRule

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
VIDEO_EXTENSIONS = {
    ".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".m4v", ".3gp",
    ".ts", ".ogv",
}  # fmt: skip
FRAME_COLUMNS = ["input", "kind", "frame", "time_s", "prob_porn"]
VIDEO_COLUMNS = ["input", "n_frames", "score", "verdict"]
VERDICTS = ("non_porn", "porn")


class MediaError(ValueError):
    """One input cannot be scored; the message names the file and why."""


@dataclass
class Bundle:
    """An exported model and the JSON written beside it (alnsfw.predict.export).

    `model` is an engine of alnsfw.predict.runtime (predict_on_batch -> [n, 2]).
    """

    model: Any
    meta: dict[str, Any]
    path: Path

    @property
    def size(self) -> int:
        """Side of the square input, in pixels."""
        return int(self.meta["input"]["size"])

    @property
    def resize(self) -> str:
        """How images are fitted to the square (pad or crop), as in training."""
        return str(self.meta["input"].get("resize", "pad"))


def load_bundle(model_path: str | Path, threads: int | None = None) -> Bundle:
    """Load `MODEL.onnx` (ONNX Runtime) or `MODEL.keras` (Keras) and read `MODEL.json` beside it.

    Both files come from rule export_model and share one JSON; the `.onnx` one needs only the
    light install (alnsfw[predict]). `threads`: ONNX Runtime's intra-op threads (default: all).
    """
    path = Path(model_path)
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist (export one: rule export_model)")
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path} is missing: keep the JSON that rule export_model writes beside the "
            ".onnx and .keras files (it holds the input size, the class order and the video rule)."
        )
    meta = json.loads(meta_path.read_text())
    # only now: a wrong path fails fast, without loading ONNX Runtime or the Keras backend
    return Bundle(load_engine(path, threads), meta, path)


@dataclass(frozen=True)
class Item:
    """One input to score."""

    path: Path
    kind: str  # image | video


def _sniff(path: Path) -> str | None:
    """image or video for a file whose extension says nothing; None when neither reads."""
    if cv2.imread(str(path)) is not None:
        return "image"
    capture = cv2.VideoCapture(str(path))
    try:
        ok, _ = capture.read() if capture.isOpened() else (False, None)
    finally:
        capture.release()
    return "video" if ok else None


def discover(inputs: Sequence[str | Path]) -> tuple[list[Item], list[tuple[str, str]], int]:
    """(items, problems, ignored): what to score, inputs that cannot be, non-media in folders.

    Files named on the command line must be images or videos; in folders, only files with an
    image or video extension are taken, and the others (notes, subtitles) are counted, not errors.
    """
    items: list[Item] = []
    problems: list[tuple[str, str]] = []
    ignored = 0
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                ext = child.suffix.lower()
                if ext in IMAGE_EXTENSIONS:
                    items.append(Item(child, "image"))
                elif ext in VIDEO_EXTENSIONS:
                    items.append(Item(child, "video"))
                else:
                    ignored += 1
        elif path.is_file():
            ext = path.suffix.lower()
            kind = (
                "image"
                if ext in IMAGE_EXTENSIONS
                else "video"
                if ext in VIDEO_EXTENSIONS
                else _sniff(path)
            )
            if kind is None:
                problems.append((str(path), "not an image or video that OpenCV can read"))
            else:
                items.append(Item(path, kind))
        else:
            problems.append((str(path), "no such file or folder"))
    return items, problems, ignored


def read_image_file(path: Path, size: int, resize: str) -> np.ndarray:
    """An image file as the model's RGB uint8 input (fitted to size x size like training)."""
    raw = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if raw is None:
        raise MediaError("cannot be read as an image (corrupt, empty or not an image)")
    return fit_square(cv2.cvtColor(raw, cv2.COLOR_BGR2RGB), size, resize)


def parse_sampling(text: str) -> tuple[str, float]:
    """`keyframes`, `every:K` (every K-th frame) or `fps:N` (N frames per second of video)."""
    if text == "keyframes":
        return "keyframes", 0.0
    kind, _, value = text.partition(":")
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if kind == "every" and number >= 1 and number == int(number):
        return "every", number
    if kind == "fps" and number > 0:
        return "fps", number
    raise ValueError(
        f"--frames {text!r}: use keyframes (one per shot, as the workflow), every:K (K >= 1, "
        "e.g. every:10) or fps:N (N > 0, e.g. fps:1)"
    )


def _fps(path: Path) -> float:
    capture = cv2.VideoCapture(str(path))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS)) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return fps if np.isfinite(fps) and fps > 0 else float("nan")


def extractor_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of extract_from_video from the model JSON's `keyframes` (the workflow's
    settings when the model was exported); the extractor's own defaults for keys it lacks.

    A truncated video is an error (named and skipped): a verdict from part of a video could
    differ from the verdict on all of it.
    """
    settings = dict(meta.get("keyframes") or {})
    kwargs: dict[str, Any] = {"on_truncated": "error"}
    method = settings.get("method")
    if method:
        kwargs["method"] = method
        threshold = settings.get("threshold")
        if isinstance(threshold, dict):
            threshold = threshold.get(method)
        if threshold is not None:
            kwargs["threshold"] = float(threshold)
    for key in ("position", "min_shot_seconds"):
        if settings.get(key) is not None:
            kwargs[key] = settings[key]
    return kwargs


def video_frames(
    path: Path, bundle: Bundle, sampling: tuple[str, float]
) -> Iterator[tuple[int, float, np.ndarray]]:
    """(0-based frame index, time in s, RGB input) of the frames of a video that get scored."""
    fps = _fps(path)
    if not np.isfinite(fps) and _sniff(path) != "video":
        raise MediaError("cannot be opened as a video (corrupt, empty or not a video file)")
    mode, value = sampling
    if mode == "keyframes":
        try:
            keyframes = extract_from_video(
                path, bundle.size, bundle.resize, **extractor_settings(bundle.meta)
            )
        except Exception as err:  # DataError and OpenCV failures alike: the file is at fault
            raise MediaError(str(err)) from err
        for index, image in zip(keyframes.video_frame, keyframes.images):
            yield int(index), float(index) / fps, image
        return
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise MediaError("cannot be opened as a video")
    step = value if mode == "every" else (fps / value if np.isfinite(fps) else 1.0)
    next_pick, index, n = 0.0, 0, 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index + 1e-9 >= next_pick:
                n += 1
                next_pick += max(step, 1.0)
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                yield index, float(index) / fps, fit_square(rgb, bundle.size, bundle.resize)
            index += 1
    finally:
        capture.release()
    if n == 0:
        raise MediaError("no frame could be decoded (corrupt or empty video)")


@dataclass
class PredictResult:
    """What `predict` found: per-frame and per-video tables, and the inputs it had to skip."""

    frames: pd.DataFrame
    videos: pd.DataFrame
    errors: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0
    rule: VideoRule | None = None

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
            flagged = int((images["prob_porn"] >= 0.5).sum())
            lines.append(f"{len(images)} image(s): {flagged} with P(porn) >= 0.5")
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


def _rule_of(bundle: Bundle, overrides: dict[str, Any]) -> VideoRule:
    data = dict(bundle.meta.get("video") or {"aggregation": "mean", "threshold": 0.5})
    data.update({k: v for k, v in overrides.items() if v is not None})
    return VideoRule.from_dict(data)


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
) -> PredictResult:
    """Score `inputs` with `model` (path of a .keras export, or a loaded Bundle).

    Writes out_dir/frames.csv (input, kind, frame, time_s, prob_porn; frame and time_s empty for
    images) and out_dir/videos.csv (input, n_frames, score, verdict) when `out_dir` is given.
    `aggregation`, `threshold` and `top_k` override the JSON's video rule; `progress` None shows
    a bar only on a terminal.
    """
    from tqdm import tqdm

    bundle = model if isinstance(model, Bundle) else load_bundle(model)
    rule = _rule_of(bundle, {"aggregation": aggregation, "threshold": threshold, "top_k": top_k})
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
        x = np.stack([image for _, image in pending]).astype(np.float32)
        n = len(x)
        if n < batch_size:  # one batch shape, so the backend compiles the forward pass once
            x = np.concatenate([x, np.zeros((batch_size - n,) + x.shape[1:], np.float32)])
        p = np.asarray(bundle.model.predict_on_batch(x), dtype=np.float64)[:n, 1]
        for (record, _), value in zip(pending, p):
            record["prob_porn"] = float(value)
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
    result = PredictResult(frame_table, video_table, errors, ignored, rule)
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
    return pd.DataFrame(rows, columns=VIDEO_COLUMNS)
