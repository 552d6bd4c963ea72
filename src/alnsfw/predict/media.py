"""Media and models for scoring: load an exported model with its JSON, read images (files,
arrays, bytes) and videos into the model's square input, and find the inputs in folders.

NumPy and OpenCV only (plus the engine of alnsfw.predict.runtime): the light install's layer
below the Python API (alnsfw.predict.api), `alnsfw predict` and `alnsfw serve`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from alnsfw.data.keyframes import KeyframeSettings, extract_from_video, fit_square
from alnsfw.predict.runtime import load_engine

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
VIDEO_EXTENSIONS = {
    ".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".m4v", ".3gp",
    ".ts", ".ogv",
}  # fmt: skip
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


def video_fps(path: Path) -> float:
    """Frames per second that the container states (NaN when it states none)."""
    capture = cv2.VideoCapture(str(path))
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS)) if capture.isOpened() else 0.0
    finally:
        capture.release()
    return fps if np.isfinite(fps) and fps > 0 else float("nan")


def extractor_settings(meta: dict[str, Any], size: int, resize: str) -> KeyframeSettings:
    """The keyframe settings of the model JSON's `keyframes` (the workflow's settings when the
    model was exported), at the model's input `size` and `resize`.

    An export from a validated config states every key, so scoring reads no schema (the light
    install has neither it nor PyYAML); an older or hand-made JSON gets the schema's defaults for
    the keys it lacks.
    """
    section = {k: v for k, v in (meta.get("keyframes") or {}).items() if v is not None}
    section |= {"size": size, "resize": resize}
    if all(k in section for k in ("method", "threshold", "position", "min_shot_seconds")):
        return KeyframeSettings.from_section(section)
    threshold = section.get("threshold")
    if threshold is not None and not isinstance(threshold, dict) and "method" in section:
        section["threshold"] = {section["method"]: threshold}
    return KeyframeSettings.from_config({"keyframes": section})


def video_frames(
    path: Path, bundle: Bundle, sampling: tuple[str, float]
) -> Iterator[tuple[int, float, np.ndarray]]:
    """(0-based frame index, time in s, RGB input) of the frames of a video that get scored."""
    fps = video_fps(path)
    if not np.isfinite(fps) and _sniff(path) != "video":
        raise MediaError("cannot be opened as a video (corrupt, empty or not a video file)")
    mode, value = sampling
    if mode == "keyframes":
        try:
            # A truncated video is an error (named and skipped): a verdict from part of a video
            # could differ from the verdict on all of it.
            settings = extractor_settings(bundle.meta, bundle.size, bundle.resize)
            keyframes = extract_from_video(path, settings, on_truncated="error")
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


def decode_image(data: bytes, size: int, resize: str) -> np.ndarray:
    """Encoded image bytes (JPEG, PNG, ...) as the model's RGB uint8 input."""
    raw = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if raw is None:
        raise MediaError("cannot be decoded as an image (corrupt, truncated or not an image)")
    return fit_square(cv2.cvtColor(raw, cv2.COLOR_BGR2RGB), size, resize)


def array_image(image: np.ndarray, size: int, resize: str) -> np.ndarray:
    """An RGB array (HxWx3, HxWx4 with alpha dropped, or HxW grey) as the model's input.

    uint8 0-255 as is; floats are taken as 0-255 too (as the exported model's input), clipped.
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < 1:
        raise MediaError(f"an image array must be HxWx3 RGB (or HxWx4, HxW), got {a.shape}")
    a = a[:, :, :3]
    if a.dtype != np.uint8:
        a = np.clip(np.rint(a.astype(np.float64)), 0, 255).astype(np.uint8)
    return fit_square(np.ascontiguousarray(a), size, resize)


def sampled_frame_estimate(path: Path, sampling: tuple[str, float]) -> int | None:
    """An over-estimate of how many frames video_frames yields in a sampling mode (None when the
    container does not say its frame count): 10% + 2 above OpenCV's count, which can be off."""
    capture = cv2.VideoCapture(str(path))
    try:
        count = float(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0.0
        fps = float(capture.get(cv2.CAP_PROP_FPS)) if capture.isOpened() else 0.0
    finally:
        capture.release()
    if not (np.isfinite(count) and count > 0):
        return None
    mode, value = sampling
    step = value if mode == "every" else (fps / value if np.isfinite(fps) and fps > 0 else 1.0)
    return int(np.ceil(count * 1.1 / max(step, 1.0))) + 2
