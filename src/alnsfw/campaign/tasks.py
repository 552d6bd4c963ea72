"""Label Studio tasks of a campaign: full-resolution task images and the task JSON.

A task shows the video's own path relative to data.root (`relative_source`), the time in
seconds and the frame, and says that its pre-ticked choice is the model's guess and how sure the
model is (`guess_text`; `hide_guess_below` shows no guess on uncertain items). Numeric fields
are JSON numbers; the Data Manager types them through the tab the client makes (client.py).

People label what they can see: the image of a task is the keyframe read again from its video
at the video's own resolution (the frame index `video_frame` is in keyframes.h5), not the
32-224 px training copy. The served folder (`campaign.image_dir`) holds only task images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import h5py
import numpy as np

from alnsfw.campaign.labels import LabelScheme
from alnsfw.io import atomic_path


@dataclass(frozen=True)
class KeyframeIndex:
    """Where each keyframe row comes from: video name, source file, frame index, fps."""

    video: np.ndarray  # str per row
    source: np.ndarray  # video file per row
    video_frame: np.ndarray  # 0-based frame index in the video (-1: shipped image)
    keyframes: str | None = None  # the file (its full_jpeg, when kept, gives task images)

    @classmethod
    def read(cls, keyframes: str | Path) -> KeyframeIndex:
        """From keyframes.h5 (docs/CONTRACT.md)."""
        with h5py.File(keyframes, "r") as h5:
            return cls(
                video=np.asarray(h5["video"].asstr()[:], dtype=object),
                source=np.asarray(h5["source"].asstr()[:], dtype=object),
                video_frame=np.asarray(h5["video_frame"][:], dtype=np.int64),
                keyframes=str(keyframes),
            )

    def video_ids(self) -> np.ndarray:
        """An integer id per row, one per video (al.max_per_video, the by-video draws)."""
        return np.unique(self.video, return_inverse=True)[1].astype(np.int64)


def _read_frames(path: str, indices: Sequence[int]) -> tuple[dict[int, np.ndarray], float]:
    """Frames `indices` of a video, decoded sequentially (exact on every container, like the
    keyframe stage), and the video's fps (0 when it states none)."""
    wanted = set(int(i) for i in indices)
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError(f"cannot open video {path} to read its task images")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    got: dict[int, np.ndarray] = {}
    index = 0
    try:
        while len(got) < len(wanted):
            ok = cap.grab()
            if not ok:
                break
            if index in wanted:
                ok, frame = cap.retrieve()
                if ok:
                    got[index] = frame
            index += 1
    finally:
        cap.release()
    missing = sorted(wanted - set(got))
    if missing:
        raise ValueError(f"video {path} has no frame(s) {missing[:5]} any more: was it replaced?")
    return got, fps


def image_name(video: str, row: int, frame: int) -> str:
    """File name of a task image: video, frame index and row, unique within a campaign."""
    return f"{video}_f{frame:06d}_r{row}.jpg"


def write_task_images(
    rows: Sequence[int], index: KeyframeIndex, image_dir: str | Path
) -> dict[int, dict[str, Any]]:
    """Write the full-resolution image of each row (skipping ones already there); returns
    row -> {file, video, frame, time_s}."""
    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    if index.keyframes is not None:
        stored = _stored_full_images(rows, index, image_dir)
        if stored is not None:
            return stored
    by_video: dict[str, list[int]] = {}
    for row in rows:
        by_video.setdefault(str(index.source[row]), []).append(int(row))
    out: dict[int, dict[str, Any]] = {}
    for source, video_rows in sorted(by_video.items()):
        frames_wanted = [int(index.video_frame[r]) for r in video_rows]
        if min(frames_wanted) < 0:
            raise ValueError(f"{source}: shipped keyframe images have no frame index to re-read")
        frames, fps = _read_frames(source, frames_wanted)
        for row, frame in zip(video_rows, frames_wanted):
            name = image_name(str(index.video[row]), row, frame)
            path = image_dir / name
            image = frames[frame]
            if not path.is_file():
                with atomic_path(path) as tmp:
                    if not cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, 92]):
                        raise OSError(f"could not write task image {path}")
            out[row] = {
                "file": path,
                "video": str(index.video[row]),
                "frame": frame,
                "time_s": round(frame / fps, 3) if fps > 0 else None,
            }
    return out


def _stored_full_images(
    rows: Sequence[int], index: KeyframeIndex, image_dir: Path
) -> dict[int, dict[str, Any]] | None:
    """Task images from keyframes.h5's `full_jpeg` (keyframes.full_images: the keyframe stage
    kept each at full resolution): bytes copied, nothing decoded. None when it has none."""
    with h5py.File(index.keyframes, "r") as h5:
        if "full_jpeg" not in h5:
            return None
        jpegs, fps = h5["full_jpeg"], h5["video_fps"]
        out: dict[int, dict[str, Any]] = {}
        for row in sorted(int(r) for r in rows):
            frame = int(index.video_frame[row])
            path = image_dir / image_name(str(index.video[row]), row, frame)
            data = np.asarray(jpegs[row], dtype=np.uint8)
            if not path.is_file():
                with atomic_path(path) as tmp:
                    Path(tmp).write_bytes(data.tobytes())
            rate = float(fps[row])
            out[row] = {
                "file": path,
                "video": str(index.video[row]),
                "frame": frame,
                "time_s": round(frame / rate, 3) if rate > 0 else None,
            }
    return out


def relative_source(source: str | Path, root: str | Path) -> str:
    """The video's own path relative to the data folder (`data.root`), as people know it (e.g.
    `Ünïcode dir/sub folder/vidéo 日本.mp4`); the path as stored when it is not under root."""
    try:
        return Path(source).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(source)


def local_files_url(path: Path, document_root: Path) -> str:
    """The URL Label Studio serves a local file at (`d=` is relative to its document root,
    percent-encoded as UTF-8, so any file name works)."""
    try:
        rel = Path(path).resolve().relative_to(Path(document_root).resolve())
    except ValueError as err:
        raise ValueError(
            f"task image {path} is not under the Label Studio document root {document_root}: "
            "set campaign.labelstudio.document_root to a folder above campaign.image_dir"
        ) from err
    return f"/data/local-files/?d={quote(rel.as_posix())}"


def guess_text(prob_porn: float | None, round_no: int, shown: bool, scheme: LabelScheme) -> str:
    """What the task says about its pre-annotation: that it is the model's guess, and how sure
    the model is (or that no guess is shown because the model is unsure)."""
    if prob_porn is None:
        return "no model guess yet: choose what you see"
    label = int(prob_porn >= 0.5)
    sure = 100.0 * (prob_porn if label else 1.0 - prob_porn)
    if not shown:
        return f"no guess shown: the model (round {round_no}) is unsure ({sure:.0f}% sure)"
    return (
        f"pre-ticked: the model's guess (round {round_no}), {scheme.name_of(label)}, "
        f"{sure:.0f}% sure; check it"
    )


def build_task(
    row: int,
    image: dict[str, Any],
    document_root: Path,
    campaign_id: str,
    round_no: int,
    purpose: str,
    rank: int,
    score: float | None,
    prob_porn: float | None,
    *,
    scheme: LabelScheme | None = None,
    video_path: str | None = None,
    queue_score: float | None = None,
    hide_guess_below: float = 0.0,
    model_version: str | None = None,
) -> dict[str, Any]:
    """One Label Studio task: image, the video's own path, time and frame, AL rank and score
    (numbers, JSON ints and floats), the text saying what the pre-annotation is, and the
    pre-annotation itself.

    `video_path`: the video relative to data.root (default: the keyframe's video name).
    `queue_score`: the prediction's `score`, lowest served first by "Uncertainty sampling"
    (default: the model's confidence, which orders as least confidence does).
    `hide_guess_below`: no pre-ticked choice when the model's confidence is below this (the
    prediction stays, empty, to keep the task's place in the queue).
    """
    scheme = scheme or LabelScheme()
    confidence = None
    shown = False
    if prob_porn is not None:
        prob_porn = float(prob_porn)
        confidence = max(prob_porn, 1.0 - prob_porn)
        shown = confidence >= float(hide_guess_below)
    text = guess_text(prob_porn, round_no, shown, scheme)
    shared = _task_data(image, video_path, rank, score, confidence, text, round_no, purpose)
    task: dict[str, Any] = {
        "data": {
            "image": local_files_url(image["file"], document_root),
            **shared,
            "alnsfw_campaign": campaign_id,
            "alnsfw_row": int(row),
        }
    }
    if prob_porn is not None and confidence is not None:
        label = int(prob_porn >= 0.5) if shown else None
        task["predictions"] = [
            {
                "model_version": model_version or f"round-{round_no}",
                "score": float(confidence if queue_score is None else queue_score),
                "result": scheme.result(label),
            }
        ]
    return task


def _task_data(
    image: Mapping[str, Any],
    video_path: str | None,
    rank: int,
    score: float | None,
    confidence: float | None,
    guess: str,
    round_no: int,
    purpose: str,
) -> dict[str, Any]:
    """The data fields a keyframe task and a unit task share (a unit's: of its first keyframe):
    where the image is from, its queue rank and score, the guess line."""
    time_s = image.get("time_s")
    return {
        "video": image["video"],
        "video_path": str(video_path if video_path is not None else image["video"]),
        "time_s": None if time_s is None else float(time_s),
        "frame": int(image["frame"]),
        "al_rank": int(rank),
        "al_score": None if score is None else float(score),
        "confidence": None if confidence is None else round(confidence, 4),
        "guess": guess,
        "round": int(round_no),
        "purpose": purpose,
    }


def build_unit_task(
    rows: Sequence[int],
    images: dict[int, dict[str, Any]],
    document_root: Path,
    campaign_id: str,
    round_no: int,
    purpose: str,
    rank: int,
    score: float | None,
    probs: Sequence[float | None] | None,
    *,
    scheme: LabelScheme | None = None,
    video_path: str | None = None,
    hide_guess_below: float = 0.0,
    model_version: str | None = None,
) -> dict[str, Any]:
    """One task of a unit campaign (al.unit shot / video, labels.UNIT_LABEL_CONFIG): the
    keyframes of `rows` (one video, in frame order) side by side, each with its own choice
    pre-filled with the model's guess (`probs`: P(porn) per row, None where there is none).

    `data.images` is the Repeater's list (url, caption per keyframe), `data.alnsfw_rows` the
    rows in the same order (`alnsfw_row`, the first, names the task as in a keyframe
    campaign). Audit, validation and kick-off items go out as one-image units: a project has one
    labelling config. The queue `score` is the mean confidence of the guesses shown.
    """
    scheme = scheme or LabelScheme()
    rows = [int(r) for r in rows]
    probs = list(probs) if probs is not None else [None] * len(rows)
    first = images[rows[0]]
    labels: list[int | None] = []
    confidences: list[float] = []
    entries = []
    for row, prob in zip(rows, probs):
        image = images[row]
        label = None
        if prob is not None:
            conf = max(float(prob), 1.0 - float(prob))
            confidences.append(conf)
            label = int(float(prob) >= 0.5) if conf >= float(hide_guess_below) else None
        labels.append(label)
        time_s = image.get("time_s")
        where = f"{time_s} s, frame {image['frame']}" if time_s is not None else ""
        entries.append(
            {
                "url": local_files_url(image["file"], document_root),
                "caption": f"{len(entries) + 1}. " + (where or f"frame {image['frame']}"),
                "row": row,
                "frame": int(image["frame"]),
            }
        )
    confidence = float(np.mean(confidences)) if confidences else None
    shown = any(label is not None for label in labels)
    if confidence is None:  # guesses come later (each round's predictions, or /predict)
        text = "a ticked choice is the model's guess: check each keyframe"
    elif shown:
        text = (
            f"pre-ticked: the model's guesses (round {round_no}), {100 * confidence:.0f}% sure "
            "on average; check each keyframe"
        )
    else:
        text = f"no guess shown: the model (round {round_no}) is unsure"
    task: dict[str, Any] = {
        "data": {
            "images": entries,
            "n_keyframes": len(rows),
            **_task_data(first, video_path, rank, score, confidence, text, round_no, purpose),
            "alnsfw_campaign": campaign_id,
            "alnsfw_row": rows[0],
            "alnsfw_rows": rows,
        }
    }
    if confidence is not None:
        task["predictions"] = [
            {
                "model_version": model_version or f"round-{round_no}",
                "score": confidence,
                "result": scheme.results(labels),
            }
        ]
    return task
