"""A synthetic, non-explicit NPDI-like dataset, generated deterministically from a seed.

The real NPDI cannot be shipped, so the default workflow makes its own stand-in with the same
layout and the same difficulty structure, decided by three kinds of scene:

- porn:      several large skin-toned ellipses (the "pattern") on a non-skin background;
- difficult: skin-toned colour in similar amounts, but not in that shape (stripes, small scattered
             patches, large rectangles, or a skin-toned background behind non-skin ellipses);
- easy:      neither skin tones nor the pattern (non-skin ellipses, rectangles, lines).

Neither colour nor shape alone separates the classes, only their conjunction does, so the task is
learnable by a CNN but not by a colour histogram. Each video is a few shots with hard cuts (a new
background hue and layout) and slow motion within a shot; a share of the shots of porn videos show
non-porn content and the other way round, and `frame_labels.csv` records the per-shot truth, as the
paper labels frames by content.

Each video has its own random stream seeded by (seed, class, number), so a video's bytes do not
depend on the others or on the order of generation; MJPG encoding is deterministic, so the same
seed gives byte-identical files.
"""

from __future__ import annotations

import colorsys
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from alnsfw.data.layout import (
    CLASSES,
    class_label,
    fold_list_paths,
    natural_key,
    synthetic_names,
    synthetic_video_path,
)
from alnsfw.io import atomic_path, write_text

log = logging.getLogger(__name__)

PORN, EASY, DIFFICULT = "porn", "easy", "difficult"
# Skin tones from light to dark (RGB); a scene's tone is drawn along this line.
_SKIN_ANCHORS = np.array(
    [[255, 224, 196], [234, 192, 160], [198, 134, 94], [141, 85, 54], [96, 60, 40]], float
)
_NOISE_SIGMA = 5.0  # grey levels of per-frame sensor noise
_DIFFICULT_VARIANTS = ("stripes", "patches", "rectangles", "skin_background")


@dataclass(frozen=True)
class SyntheticVideo:
    """A rendered video: its frames (RGB uint8, [T,H,W,3]) and the content label of each shot."""

    name: str
    video_class: str
    frames: np.ndarray
    shot_labels: tuple[int, ...]
    frames_per_shot: int


def _skin_tone(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0, len(_SKIN_ANCHORS) - 1)
    i = min(int(t), len(_SKIN_ANCHORS) - 2)
    tone = _SKIN_ANCHORS[i] + (t - i) * (_SKIN_ANCHORS[i + 1] - _SKIN_ANCHORS[i])
    return np.clip(tone + rng.normal(0, 6, 3), 0, 255)


def _non_skin(rng: np.random.Generator, hue: float | None = None) -> np.ndarray:
    """A colour away from skin hues (green, cyan, blue, violet), or a grey."""
    if hue is None:
        hue = rng.uniform(95, 295)
    if rng.random() < 0.15:
        return np.full(3, rng.uniform(40, 220))
    r, g, b = colorsys.hsv_to_rgb(hue / 360, rng.uniform(0.35, 0.95), rng.uniform(0.3, 0.95))
    return np.array([r, g, b]) * 255


def _background(rng: np.random.Generator, w: int, h: int, hue: float, skin: bool) -> np.ndarray:
    """A vertical two-colour gradient: the shot's dominant, cut-defining colour."""
    if skin:
        top, bottom = _skin_tone(rng), _skin_tone(rng)
    else:
        top, bottom = _non_skin(rng, hue), _non_skin(rng, hue + rng.uniform(-15, 15))
    ramp = np.linspace(0, 1, h)[:, None, None]
    return np.broadcast_to(top + ramp * (bottom - top), (h, w, 3)).astype(np.float32)


def _objects(kind: str, rng: np.random.Generator, w: int, h: int) -> list[dict[str, Any]]:
    """The shapes of one shot, each with a colour, a position and a velocity (px/frame)."""
    s = min(w, h)

    def place(**kw: Any) -> dict[str, Any]:  # noqa: ANN401
        kw.setdefault("center", (rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h))
        kw.setdefault("velocity", rng.uniform(-1.0, 1.0, 2) * s / 72)
        kw.setdefault("angle", rng.uniform(0, 180))
        return kw

    objs: list[dict[str, Any]] = []
    if kind == PORN:
        base = _skin_tone(rng)
        for _ in range(rng.integers(2, 5)):
            axes = (rng.uniform(0.16, 0.30) * s, rng.uniform(0.24, 0.42) * s)
            tone = np.clip(base + rng.normal(0, 10, 3), 0, 255)
            highlight = rng.uniform(1.0, 1.1)
            objs.append(place(shape="blob", color=tone, axes=axes, highlight=highlight))
        for _ in range(rng.integers(0, 3)):
            objs.append(place(shape="rect", color=_non_skin(rng), axes=(0.08 * s, 0.05 * s)))
    elif kind == DIFFICULT:
        variant = _DIFFICULT_VARIANTS[rng.integers(len(_DIFFICULT_VARIANTS))]
        base = _skin_tone(rng)
        if variant == "stripes":
            objs.append(
                place(
                    shape="stripes",
                    color=base,
                    period=rng.uniform(0.08, 0.18) * s,
                    center=(0.0, 0.0),
                    velocity=rng.uniform(-1.0, 1.0, 2) * s / 72,
                )
            )
        elif variant == "patches":
            for _ in range(rng.integers(25, 60)):
                tone = np.clip(base + rng.normal(0, 12, 3), 0, 255)
                radius = rng.uniform(0.025, 0.07) * s
                objs.append(place(shape="ellipse", color=tone, axes=(radius, radius)))
        elif variant == "rectangles":
            for _ in range(rng.integers(2, 5)):
                axes = (rng.uniform(0.16, 0.30) * s, rng.uniform(0.24, 0.42) * s)
                tone = np.clip(base + rng.normal(0, 10, 3), 0, 255)
                objs.append(place(shape="rect", color=tone, axes=axes))
        else:  # skin-toned background, non-skin ellipses: the pattern's shape, not its colour
            for _ in range(rng.integers(2, 4)):
                axes = (rng.uniform(0.16, 0.30) * s, rng.uniform(0.24, 0.42) * s)
                objs.append(place(shape="ellipse", color=_non_skin(rng), axes=axes))
            objs.insert(0, {"shape": "skin_background"})
    else:
        for _ in range(rng.integers(2, 6)):
            shape = ("ellipse", "rect", "line")[rng.integers(3)]
            axes = (rng.uniform(0.08, 0.3) * s, rng.uniform(0.08, 0.4) * s)
            objs.append(place(shape=shape, color=_non_skin(rng), axes=axes))
    return objs


def _draw(canvas: np.ndarray, obj: dict[str, Any], t: int) -> None:
    """Draw one object at frame t of its shot, in place."""
    shape = obj["shape"]
    if shape == "skin_background":
        return
    cx, cy = np.asarray(obj["center"]) + t * np.asarray(obj["velocity"])
    color = tuple(float(c) for c in obj["color"])
    h, w = canvas.shape[:2]
    if shape == "stripes":
        yy, xx = np.mgrid[0:h, 0:w]
        theta = np.deg2rad(obj["angle"])
        phase = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
        mask = (phase % obj["period"]) < obj["period"] / 2
        canvas[mask] = color
        return
    center = (int(round(cx)), int(round(cy)))
    axes = (max(1, int(round(obj["axes"][0]))), max(1, int(round(obj["axes"][1]))))
    if shape in ("blob", "ellipse"):
        cv2.ellipse(canvas, center, axes, obj["angle"], 0, 360, color, -1, cv2.LINE_AA)
        if shape == "blob":  # a soft highlight: the rounded, lit look of the pattern
            hi = tuple(min(255.0, c * obj["highlight"]) for c in color)
            inner = (max(1, axes[0] // 2), max(1, axes[1] // 2))
            cv2.ellipse(canvas, center, inner, obj["angle"], 0, 360, hi, -1, cv2.LINE_AA)
    elif shape == "rect":
        box = cv2.boxPoints(((cx, cy), (2 * axes[0], 2 * axes[1]), obj["angle"]))
        cv2.fillPoly(canvas, [np.round(box).astype(np.int32)], color, cv2.LINE_AA)
    elif shape == "line":
        d = np.array([np.cos(np.deg2rad(obj["angle"])), np.sin(np.deg2rad(obj["angle"]))])
        p0 = np.round(np.array([cx, cy]) - d * axes[0]).astype(int)
        p1 = np.round(np.array([cx, cy]) + d * axes[0]).astype(int)
        thickness = max(1, axes[1] // 6)
        cv2.line(canvas, tuple(map(int, p0)), tuple(map(int, p1)), color, thickness, cv2.LINE_AA)


def _shot_kinds(
    video_class: str, n_shots: int, cfg: Mapping[str, Any], rng: np.random.Generator
) -> list[str]:
    """Content kind of each shot: the video's own, flipped with the configured probability."""
    kinds = []
    for _ in range(n_shots):
        if video_class == "vPorn":
            flip = rng.random() < cfg["porn_shot_flip"]
            kinds.append((EASY if rng.random() < 0.5 else DIFFICULT) if flip else PORN)
        else:
            own = EASY if video_class == "vNonPornEasy" else DIFFICULT
            kinds.append(PORN if rng.random() < cfg["nonporn_shot_flip"] else own)
    return kinds


def _shot_hues(n_shots: int, rng: np.random.Generator) -> list[float]:
    """Background hues of consecutive shots at least 60 degrees apart: every cut is a clear cut."""
    hues = [rng.uniform(95, 295)]
    while len(hues) < n_shots:
        hue = rng.uniform(95, 295)
        if abs(hue - hues[-1]) >= 60:
            hues.append(hue)
    return hues


def render_video(name: str, video_class: str, cfg: Mapping[str, Any]) -> SyntheticVideo:
    """Render one synthetic video from the `synthetic` config section; pure and deterministic."""
    number = int("".join(c for c in name if c.isdigit()))
    rng = np.random.default_rng([cfg["seed"], CLASSES.index(video_class), number])
    w, h = cfg["frame_size"]
    lo, hi = cfg["shots_per_video"]
    n_shots = int(rng.integers(lo, hi + 1))
    kinds = _shot_kinds(video_class, n_shots, cfg, rng)
    hues = _shot_hues(n_shots, rng)
    frames = []
    for kind, hue in zip(kinds, hues):
        objs = _objects(kind, rng, w, h)
        skin_bg = bool(objs) and objs[0].get("shape") == "skin_background"
        background = _background(rng, w, h, hue, skin=skin_bg)
        gain = rng.uniform(0.85, 1.1)
        for t in range(cfg["frames_per_shot"]):
            canvas = background.copy()
            for obj in objs:
                _draw(canvas, obj, t)
            canvas *= gain * (1 + rng.normal(0, 0.01))
            canvas += rng.normal(0, _NOISE_SIGMA, canvas.shape).astype(np.float32)
            frames.append(np.clip(canvas, 0, 255).astype(np.uint8))
    labels = tuple(int(k == PORN) for k in kinds)
    return SyntheticVideo(name, video_class, np.stack(frames), labels, cfg["frames_per_shot"])


def write_video(path: str | Path, frames: np.ndarray, fps: int) -> None:
    """Write RGB frames as an MJPG .avi (a codec every OpenCV build reads back), atomically."""
    h, w = frames.shape[1:3]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write MJPG video '{path}'")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()


def assign_folds(names: list[tuple[str, str]], n_folds: int, seed: int) -> dict[int, list[str]]:
    """Test videos of each fold: shuffled per class, dealt round-robin (stratified by class).

    The deal continues across classes instead of restarting at fold 0, so fold sizes differ by at
    most one and small classes spread over different folds.
    """
    rng = np.random.default_rng([seed, 5])
    folds: dict[int, list[str]] = {f: [] for f in range(n_folds)}
    turn = 0
    for cls in CLASSES:
        members = sorted((n for n, c in names if c == cls), key=natural_key)
        for i in rng.permutation(len(members)):
            folds[turn % n_folds].append(members[i])
            turn += 1
    return {f: sorted(v, key=natural_key) for f, v in folds.items()}


def synthesize_dataset(
    root: str | Path,
    cfg: Mapping[str, Any],
    n_folds: int = 5,
    test_pattern: str = "test/fold{fold}_video.txt",
    train_pattern: str = "training/fold{others}_video.txt",
    threads: int = 1,
) -> dict[str, int]:
    """Write the whole synthetic dataset under `root` in the NPDI layout.

    Writes Database/<class>/<video>.avi, the fold lists, and frame_labels.csv with one row per
    shot (video, frame = shot/keyframe number from 1, label): all rows, not only the relabelled
    ones, so the file is the complete ground truth; rows whose label differs from the video's are
    the relabelled frames. Returns counts for the log. Videos are rendered and encoded on
    `threads` threads (NumPy and OpenCV release the GIL); each has its own random stream, so the
    files do not depend on the thread count.
    """
    root = Path(root)
    names = synthetic_names(cfg["videos"])
    rows = ["video,frame,label"]
    n_shots = n_flipped = 0

    def make(item: tuple[str, str]) -> tuple[int, ...]:
        name, cls = item
        video = render_video(name, cls, cfg)
        write_video(synthetic_video_path(root, name, cls), video.frames, cfg["fps"])
        return video.shot_labels

    with ThreadPoolExecutor(max_workers=max(1, int(threads))) as pool:
        labels = list(pool.map(make, names))
    for (name, cls), shot_labels in zip(names, labels):
        for i, lab in enumerate(shot_labels, start=1):
            rows.append(f"{name},{i},{lab}")
            n_flipped += int(lab != class_label(cls))
        n_shots += len(shot_labels)
        log.info("wrote %s (%s): %d shots, labels %s", name, cls, len(shot_labels), shot_labels)
    write_text(root / "frame_labels.csv", "\n".join(rows) + "\n")
    tests = assign_folds(names, n_folds, cfg["seed"])
    for fold, (test_path, train_path) in fold_list_paths(
        root, test_pattern, train_pattern, n_folds
    ).items():
        train = sorted((n for f, v in tests.items() if f != fold for n in v), key=natural_key)
        write_text(test_path, "".join(f"{n}\n" for n in tests[fold]))
        write_text(train_path, "".join(f"{n}\n" for n in train))
    log.info(
        "%d videos, %d shots, %d shots whose content differs from the video label",
        len(names),
        n_shots,
        n_flipped,
    )
    return {"videos": len(names), "shots": n_shots, "relabelled": n_flipped}
