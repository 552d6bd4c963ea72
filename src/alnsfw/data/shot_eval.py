"""Keyframes per video against the true shot count, for every detector, on the real-footage set.

`python -m alnsfw.data.shot_eval [folder]` prints the table of docs/data.md (Markdown). The folder
(default tests/data/real) holds the clips and `truth.csv` (video, shots); the test
tests/test_data_real_footage.py asserts on the same numbers, so the table and the test agree.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alnsfw.data.keyframes import (
    container_frames,
    extract_from_video,
    keyframe_index,
    read_frames,
)

REAL_SET = Path(__file__).resolve().parents[3] / "tests" / "data" / "real"
# (name in the table, keyframes.method, threshold): each method at its configured default
METHODS: tuple[tuple[str, str, float], ...] = (
    ("adaptive", "adaptive", 3.0),
    ("histogram", "histogram", 0.35),
    ("diff", "diff", 0.09),
)
# PySceneDetect's own detectors at their defaults (scenes only, keyframe = middle frame)
STOCK: tuple[tuple[str, str, float], ...] = (
    ("PySceneDetect content", "pyscenedetect-content", 0.0),
    ("PySceneDetect adaptive", "pyscenedetect-adaptive", 0.0),
    ("PySceneDetect threshold", "pyscenedetect-threshold", 0.0),
)
DARK_LUMA = 20.0  # a keyframe darker than this (mean luma of its video frame) is near-black


@dataclass
class VideoResult:
    """Keyframes of one video by one method."""

    video: str
    method: str
    true_shots: int
    keyframes: int
    dark_keyframes: int
    seconds: float


def read_truth(folder: str | Path) -> dict[str, int]:
    """video -> true shot count, from <folder>/truth.csv."""
    with open(Path(folder) / "truth.csv", newline="") as fh:
        return {row["video"]: int(row["shots"]) for row in csv.DictReader(fh)}


def evaluate(
    folder: str | Path = REAL_SET, methods: Sequence[tuple[str, str, float]] = METHODS
) -> list[VideoResult]:
    """Run every method on every video of the set (keyframes of side 64, padded)."""
    folder = Path(folder)
    out = []
    for video, true in read_truth(folder).items():
        for name, method, threshold in methods:
            t0 = time.perf_counter()
            if method.startswith("pyscenedetect-"):
                images = _stock(folder / f"{video}.mp4", method.split("-", 1)[1])
            else:
                kf = extract_from_video(folder / f"{video}.mp4", 64, "pad", method, threshold)
                images = list(kf.images)
            seconds = time.perf_counter() - t0
            # near-black: judged on the image without its letterbox bars
            luma = [
                float(np.mean(img[img.max(axis=2) > 0])) if img.any() else 0.0 for img in images
            ]
            dark = sum(v < DARK_LUMA for v in luma)
            out.append(VideoResult(video, name, true, len(images), dark, seconds))
    return out


def _stock(path: Path, detector: str) -> list[np.ndarray]:
    """Middle frames of the scenes PySceneDetect finds with a stock detector at its defaults."""
    import scenedetect
    from scenedetect.detectors import AdaptiveDetector, ContentDetector, ThresholdDetector

    make = {
        "content": ContentDetector,
        "adaptive": AdaptiveDetector,
        "threshold": ThresholdDetector,
    }
    scenes = scenedetect.detect(str(path), make[detector]())
    bounds = [(a.frame_num, b.frame_num) for a, b in scenes] or [(0, container_frames(path))]
    frames = read_frames(path, [keyframe_index(a, b) for a, b in bounds])
    return [frames[keyframe_index(a, b)] for a, b in bounds]


def table(results: Sequence[VideoResult]) -> str:
    """Markdown: one row per video, keyframes per method, then totals and |errors|."""
    names = list(dict.fromkeys(r.method for r in results))
    by = {(r.video, r.method): r for r in results}
    videos = list(dict.fromkeys(r.video for r in results))
    lines = [
        "| video | true shots | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for v in videos:
        cells = [str(by[v, m].keyframes) for m in names]
        lines.append(f"| {v} | {by[v, names[0]].true_shots} | " + " | ".join(cells) + " |")
    true_total = sum(by[v, names[0]].true_shots for v in videos)
    total = [sum(by[v, m].keyframes for v in videos) for m in names]
    err = [sum(abs(by[v, m].keyframes - by[v, m].true_shots) for v in videos) for m in names]
    dark = [sum(by[v, m].dark_keyframes for v in videos) for m in names]
    secs = [sum(by[v, m].seconds for v in videos) for m in names]
    lines += [
        f"| **total** | **{true_total}** | " + " | ".join(f"**{t}**" for t in total) + " |",
        "| sum of per-video errors | | " + " | ".join(map(str, err)) + " |",
        "| near-black keyframes | | " + " | ".join(map(str, dark)) + " |",
        "| seconds (all videos) | | " + " | ".join(f"{s:.1f}" for s in secs) + " |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table for a folder of clips with truth.csv."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(REAL_SET))
    parser.add_argument(
        "--stock", action="store_true", help="add PySceneDetect's own detectors as columns"
    )
    args = parser.parse_args(argv)
    print(table(evaluate(args.folder, METHODS + STOCK if args.stock else METHODS)))


if __name__ == "__main__":
    main()
