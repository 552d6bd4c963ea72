"""The Python API, in the style of opennsfw2 and NudeNet: one object, plain floats and verdicts.

    from alnsfw.predict.api import Classifier
    clf = Classifier("results/models/fold0/seed0/full.onnx")        # or .keras
    clf.predict_image("photo.jpg")              # 0.03: P(porn)
    clf.classify_image(open("x.png", "rb").read())  # {"prob_porn": 0.91, "verdict": "porn"}
    clf.predict_images([path, array, data])      # [0.03, 0.91, ...]
    clf.predict_video("clip.mp4", frames="fps:1", early_exit=True)
        # {"prob_porn": 0.12, "verdict": "non_porn", "frames": [{"frame", "time_s", "prob_porn"}]}

An image is a path, an RGB array (HxWx3 uint8) or encoded bytes; a video is a path or bytes.
Verdicts use the model's operating point (its JSON), or the one given:
`Classifier(model, operating_point="recall=0.95")` (alnsfw.predict.operating). `alnsfw predict`
and `alnsfw serve` score through this class. NumPy, OpenCV and the model's engine only.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from alnsfw.predict.media import (
    VERDICTS,
    Bundle,
    MediaError,
    array_image,
    decode_image,
    load_bundle,
    parse_sampling,
    read_image_file,
    sampled_frame_estimate,
    video_frames,
)
from alnsfw.predict.operating import Target, pick
from alnsfw.video_eval import VideoRule

Image = str | os.PathLike | bytes | np.ndarray


def video_rule(bundle: Bundle, overrides: dict[str, Any] | None = None) -> VideoRule:
    """The video rule of the model JSON, with `overrides` (aggregation, threshold, top_k)."""
    data = dict(bundle.meta.get("video") or {"aggregation": "mean", "threshold": 0.5})
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return VideoRule.from_dict(data)


def frame_threshold(meta: dict[str, Any]) -> float:
    """The image / keyframe verdict threshold of a model JSON: its operating point, else 0.5
    (models exported before operating points)."""
    point = (meta.get("operating_point") or {}).get("frame") or {}
    return float(point.get("threshold", 0.5))


class Classifier:
    """An exported model ready to score images and videos (see the module docstring)."""

    def __init__(
        self,
        model: str | os.PathLike | Bundle,
        operating_point: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.bundle = model if isinstance(model, Bundle) else load_bundle(model, threads)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.frame_threshold = frame_threshold(self.bundle.meta)
        self.rule = video_rule(self.bundle)
        # one model call at a time: the engines use every core they are given anyway, and a
        # Keras model is not safe to call from several threads (alnsfw serve scores in a pool)
        self._lock = threading.Lock()
        if operating_point is not None:
            self.set_operating_point(operating_point)

    def set_operating_point(self, text: str) -> None:
        """Frame and video thresholds for `text` (recall=R, fpr=F, accuracy, threshold=T, T),
        picked from the validation curves in the model's JSON."""
        thresholds = pick(self.bundle.meta, Target.parse(text))
        self.frame_threshold = thresholds["frame"]
        self.rule = VideoRule(
            self.rule.aggregation, thresholds["video"], self.rule.top_k, self.rule.frame_threshold
        )

    # --- images ------------------------------------------------------------------------------
    def prepare(self, image: Image) -> np.ndarray:
        """One image (path, RGB array or encoded bytes) as the model's input."""
        size, resize = self.bundle.size, self.bundle.resize
        if isinstance(image, bytes | bytearray | memoryview):
            return decode_image(bytes(image), size, resize)
        if isinstance(image, np.ndarray):
            return array_image(image, size, resize)
        return read_image_file(Path(image), size, resize)

    def probabilities(self, inputs: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """P(porn) of prepared inputs, in batches of batch_size. For Keras a short last batch is
        padded with zeros so it always sees one batch shape (compiled once); ONNX Runtime takes
        any batch as it is (engine.fixed_batch)."""
        n = len(inputs)
        out = np.zeros(n, dtype=np.float64)
        for start in range(0, n, self.batch_size):
            x = np.stack(inputs[start : start + self.batch_size]).astype(np.float32)
            k = len(x)
            if k < self.batch_size and getattr(self.bundle.model, "fixed_batch", True):
                pad = np.zeros((self.batch_size - k,) + x.shape[1:], np.float32)
                x = np.concatenate([x, pad])
            with self._lock:
                probs = np.asarray(self.bundle.model.predict_on_batch(x))
            out[start : start + k] = probs[:k, 1]
        return out

    def predict_image(self, image: Image) -> float:
        """P(porn) of one image."""
        return float(self.probabilities([self.prepare(image)])[0])

    def predict_images(self, images: Sequence[Image]) -> list[float]:
        """P(porn) of each image, batched."""
        return [float(p) for p in self.probabilities([self.prepare(i) for i in images])]

    def verdict(self, prob_porn: float) -> str:
        """porn when P(porn) >= the frame threshold of the operating point."""
        return VERDICTS[int(prob_porn >= self.frame_threshold)]

    def classify_image(self, image: Image) -> dict[str, Any]:
        """{prob_porn, verdict} of one image."""
        p = self.predict_image(image)
        return {"prob_porn": p, "verdict": self.verdict(p)}

    def classify_images(self, images: Sequence[Image]) -> list[dict[str, Any]]:
        """{prob_porn, verdict} of each image."""
        return [{"prob_porn": p, "verdict": self.verdict(p)} for p in self.predict_images(images)]

    # --- videos ------------------------------------------------------------------------------
    def predict_video(
        self, video: str | os.PathLike | bytes, frames: str = "keyframes", early_exit: bool = False
    ) -> dict[str, Any]:
        """Score a video (path or bytes): its frames' P(porn) and times, a score and a verdict.

        `frames`: keyframes (one per shot, as the workflow), every:K or fps:N. `early_exit`: stop
        once the remaining frames cannot change the verdict (VideoRule.settled); the score is
        then that of the frames scored (`early_exit: true` in the result). Raises MediaError for
        a file that is not a readable, complete video.
        """
        if isinstance(video, bytes | bytearray | memoryview):
            with tempfile.NamedTemporaryFile(suffix=".video", delete=True) as tmp:
                tmp.write(bytes(video))
                tmp.flush()
                return self.predict_video(tmp.name, frames, early_exit)
        path, sampling = Path(video), parse_sampling(frames)
        if not path.is_file():
            raise MediaError(f"{path}: no such video file")
        start = time.perf_counter()
        stream = video_frames(path, self.bundle, sampling)
        if sampling[0] == "keyframes":  # extracted all at once anyway: the count is exact
            extracted = list(stream)
            stream, expected = iter(extracted), len(extracted)
        else:
            expected = sampled_frame_estimate(path, sampling)
        records: list[dict[str, Any]] = []
        batch: list[tuple[int, float, np.ndarray]] = []
        stopped = False

        def score(batch: list[tuple[int, float, np.ndarray]]) -> None:
            probs = self.probabilities([img for _, _, img in batch])
            for (index, time_s, _), p in zip(batch, probs):
                records.append({"frame": index, "time_s": time_s, "prob_porn": float(p)})

        for item in stream:
            batch.append(item)
            if len(batch) < self.batch_size:
                continue
            score(batch)
            batch = []
            if early_exit and expected is not None:
                remaining = max(expected - len(records), 0)
                if self.rule.settled([r["prob_porn"] for r in records], remaining):
                    stopped = True
                    break
        if batch:
            score(batch)
        if hasattr(stream, "close"):
            stream.close()  # releases the capture of a video left part-read
        if not records:
            raise MediaError("no frame could be scored (corrupt or empty video)")
        value = self.rule.score([r["prob_porn"] for r in records])
        return {
            "prob_porn": float(value),
            "verdict": VERDICTS[int(value >= self.rule.threshold)],
            "n_frames": len(records),
            "frames": records,
            "early_exit": stopped,
            "aggregation": self.rule.aggregation,
            "threshold": float(self.rule.threshold),
            "seconds": round(time.perf_counter() - start, 4),
        }
