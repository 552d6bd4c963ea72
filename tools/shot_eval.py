"""Keyframes per video against the true shot count, for every detector, on the real-footage set.

`.venv/bin/python tools/shot_eval.py [folder]` prints the table of docs/data.md (Markdown). The
folder (default tests/data/real) holds the clips and `truth.csv` (video, shots); the test
tests/test_data_real_footage.py asserts on the same numbers, so the table and the test agree.
An evaluation tool, not library code: it measures alnsfw.data.keyframes with the detector
thresholds, fold-list patterns and near-black luma that the library and the config schema define.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from alnsfw.data.keyframes import (
    DARK_LUMA,
    KeyframeSettings,
    container_frames,
    extract_from_video,
    keyframe_index,
    read_frames,
)
from alnsfw.data.layout import CLASSES, fold_list_paths
from alnsfw.schema import schema_defaults

REPO = Path(__file__).resolve().parents[1]
REAL_SET = REPO / "tests" / "data" / "real"
# (name in the table, keyframes.method, threshold): each method at its configured default
METHODS: tuple[tuple[str, str, float], ...] = tuple(
    (method, method, float(threshold))
    for method, threshold in schema_defaults("keyframes", "threshold").items()
)
# PySceneDetect's own detectors at their defaults (scenes only, keyframe = middle frame)
STOCK: tuple[tuple[str, str, float], ...] = (
    ("PySceneDetect content", "pyscenedetect-content", 0.0),
    ("PySceneDetect adaptive", "pyscenedetect-adaptive", 0.0),
    ("PySceneDetect threshold", "pyscenedetect-threshold", 0.0),
)


def settings(method: str, threshold: float, size: int) -> KeyframeSettings:
    """The schema's keyframe settings with `method` at `threshold`, square keyframes of `size`."""
    section = {"method": method, "threshold": {method: threshold}, "size": size, "resize": "pad"}
    return KeyframeSettings.from_config({"keyframes": section})


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
                kf = extract_from_video(folder / f"{video}.mp4", settings(method, threshold, 64))
                images = list(kf.images)
            seconds = time.perf_counter() - t0
            # near-black (the detector's DARK_LUMA): judged on the image without its letterbox bars
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
    frames = read_frames(path, [keyframe_index(a, b, "middle") for a, b in bounds])
    return [frames[keyframe_index(a, b, "middle")] for a, b in bounds]


def synthetic_demo(
    dest: str | Path,
    methods: Sequence[tuple[str, str, float]] = METHODS,
    cfg: Mapping[str, Any] | None = None,
) -> dict[str, tuple[int, int, int]]:
    """method -> (videos with keyframes != shots, keyframes, shots) on a synthetic set.

    The videos are rendered under `dest` from `cfg` (a `synthetic` config section; default:
    config.yaml's, the demo's).
    """
    import yaml

    from alnsfw.data.layout import synthetic_names, synthetic_video_path
    from alnsfw.data.synthetic import render_video, write_video

    if cfg is None:
        config = REPO / "config.yaml"
        cfg = yaml.safe_load(config.read_text())["synthetic"]
    videos = []
    for name, cls in synthetic_names(cfg["videos"]):
        video = render_video(name, cls, cfg)
        path = synthetic_video_path(dest, name, cls)
        write_video(path, video.frames, cfg["fps"])
        videos.append((path, len(video.shot_labels)))
    out = {}
    for label, method, threshold in methods:
        counts = [
            (len(extract_from_video(p, settings(method, threshold, 32)).frame), n)
            for p, n in videos
        ]
        wrong = sum(k != n for k, n in counts)
        out[label] = (wrong, sum(k for k, _ in counts), sum(n for _, n in counts))
    return out


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


def as_npdi(dest: str | Path, folder: str | Path = REAL_SET, n_folds: int = 5) -> Path:
    """Lay the set out as an NPDI copy (Database/<class>/<video>.mp4 and 5 fold lists), to time
    the data stage on it. Classes are dealt round-robin: the labels mean nothing here."""
    dest, folder = Path(dest), Path(folder)
    videos = list(read_truth(folder))
    folds: dict[int, list[str]] = {f: [] for f in range(n_folds)}
    for i, video in enumerate(videos):
        target = dest / "Database" / CLASSES[i % len(CLASSES)] / f"{video}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / f"{video}.mp4", target)
        folds[i % n_folds].append(video)
    data = schema_defaults("data")
    lists = fold_list_paths(dest, data["test_list"], data["train_list"], n_folds)
    for fold, (test, train) in lists.items():
        others = [v for f, names in folds.items() if f != fold for v in names]
        for path, names in ((test, folds[fold]), (train, others)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{v}\n" for v in names))
    return dest


def keyframe_sheet(out_png: str | Path, folder: str | Path = REAL_SET, side: int = 96) -> None:
    """A PNG, one row per video: its adaptive keyframes, each labelled with its video frame."""
    import cv2

    folder = Path(folder)
    truth = read_truth(folder)
    width = 1 + max(truth.values())
    rows = []
    for video in truth:
        kf = extract_from_video(folder / f"{video}.mp4", settings(*METHODS[0][1:], side))
        row = np.zeros((side, side * width, 3), np.uint8)
        cv2.putText(row, video, (2, side // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255,) * 3, 1)
        for k, (img, index) in enumerate(zip(kf.images, kf.video_frame, strict=True)):
            tile = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
            cv2.putText(tile, str(index), (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 255), 1)
            row[:, side * (k + 1) : side * (k + 2)] = tile
        rows.append(row)
    cv2.imwrite(str(out_png), np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table for a folder of clips with truth.csv."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(REAL_SET))
    parser.add_argument(
        "--stock", action="store_true", help="add PySceneDetect's own detectors as columns"
    )
    parser.add_argument(
        "--as-npdi", metavar="DEST", help="instead, lay the set out as an NPDI copy under DEST"
    )
    parser.add_argument("--sheet", metavar="PNG", help="instead, draw the adaptive keyframes")
    args = parser.parse_args(argv)
    if args.sheet:
        keyframe_sheet(args.sheet, args.folder)
        return
    if args.as_npdi:
        print(as_npdi(args.as_npdi, args.folder))
        return
    print(table(evaluate(args.folder, METHODS + STOCK if args.stock else METHODS)))
    with tempfile.TemporaryDirectory() as tmp:
        demo = synthetic_demo(tmp)
    print("\nSynthetic demo (config.yaml `synthetic`): videos whose keyframe count differs from")
    print("their shot count, keyframes / shots:")
    for label, (wrong, keyframes, shots) in demo.items():
        print(f"- {label}: {wrong} videos off, {keyframes} / {shots}")


if __name__ == "__main__":
    main()
