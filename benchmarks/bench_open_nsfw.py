"""open_nsfw (docs/peers.md): trunk speed against ResNet50V2, and false positives on real footage.

1. Feature extraction images/s at 224 px, in one process at --threads: the open_nsfw trunk by
   ONNX Runtime (what rule cache_features runs for model.trunk: open_nsfw, pooled features) and
   ResNet50V2's trunk by Keras (conv5_block2_out, what it caches for the paper's split), each
   on the same --images random images in batches of 32, median of --repeats timings.
2. The peer on real footage without nudity (tests/data/real, tests/data/predict): one frame
   every --every seconds of each clip, P(porn) with the package's own preprocessing; per-frame
   false-positive rate (P >= 0.5), per-video false-positive rate (a video is flagged when its
   frames' mean, or their max, reaches 0.5), and a montage PNG of the highest-scored frames.

Usage: .venv/bin/python benchmarks/bench_open_nsfw.py --out results/bench [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
# the clips, sampled as tools/real_footage_fpr.py samples them (one reader for both)
from real_footage_fpr import CLIPS, clip_frames  # noqa: E402


def speed(images: int, threads: int, repeats: int) -> dict[str, float]:
    from alnsfw.model import backend

    backend.select_backend("tensorflow", threads)
    import keras

    from alnsfw.model import open_nsfw

    x = np.random.default_rng(0).uniform(0, 255, (images, 224, 224, 3)).astype(np.float32)
    base = keras.applications.ResNet50V2(include_top=False, weights=None, input_shape=x.shape[1:])
    resnet = keras.Model(base.input, base.get_layer("conv5_block2_out").output)

    def resnet_run() -> None:
        for a in range(0, images, 32):
            resnet.predict_on_batch(x[a : a + 32] / 127.5 - 1)

    def onnx_run() -> None:
        for a in range(0, images, 32):
            open_nsfw.pooled_features(x[a : a + 32], threads)

    out = {}
    for name, fn in (("open_nsfw (ONNX Runtime)", onnx_run), ("ResNet50V2 (Keras)", resnet_run)):
        fn()  # warm-up: graph building, session creation
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        out[name] = images / statistics.median(times)
    return out


def real_footage(every: float, threads: int, out: Path) -> dict[str, object]:
    from PIL import Image

    from alnsfw.model import open_nsfw

    per_video, scored = {}, []
    for clip in CLIPS:
        imgs = clip_frames(clip, every)
        p = open_nsfw.peer_scores(imgs, threads=threads)
        per_video[Path(clip).name] = {
            "frames": len(p),
            "mean": float(p.mean()),
            "max": float(p.max()),
        }
        scored += [(float(s), Path(clip).name, im) for s, im in zip(p, imgs)]
    all_p = np.array([s for s, _, _ in scored])
    top = sorted(scored, key=lambda t: -t[0])[:12]
    tiles = [Image.fromarray(im).resize((240, 135)) for _, _, im in top]
    sheet = Image.new("RGB", (240 * 4, 135 * 3), "white")
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % 4) * 240, (k // 4) * 135))
    sheet.save(out / "open_nsfw_top_frames.png")
    return {
        "clips": len(CLIPS),
        "frames": int(all_p.size),
        "frame_fpr_at_0.5": float(np.mean(all_p >= 0.5)),
        "video_fpr_mean_at_0.5": float(np.mean([v["mean"] >= 0.5 for v in per_video.values()])),
        "video_fpr_max_at_0.5": float(np.mean([v["max"] >= 0.5 for v in per_video.values()])),
        "top_frames": [(round(s, 4), name) for s, name, _ in top],
        "per_video": per_video,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between frames")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rates = speed(args.images, args.threads, args.repeats)
    real = real_footage(args.every, args.threads, out)
    (out / "open_nsfw.json").write_text(json.dumps({"images_per_s": rates, "real": real}, indent=1))
    lines = [
        "# open_nsfw: trunk speed and real-footage false positives",
        "",
        f"Feature extraction at 224 px, {args.threads} threads, {args.images} images, median of "
        f"{args.repeats}:",
        "",
        *[f"- {name}: {rate:.1f} images/s" for name, rate in rates.items()],
        "",
        f"Peer on {real['frames']} frames of {real['clips']} real clips without nudity (one every "
        f"{args.every:g} s): frame FPR at 0.5 = {real['frame_fpr_at_0.5']:.3f}; video FPR "
        f"(mean >= 0.5) = {real['video_fpr_mean_at_0.5']:.3f}, (max >= 0.5) = "
        f"{real['video_fpr_max_at_0.5']:.3f}. Highest-scored frames: open_nsfw_top_frames.png.",
    ]
    (out / "summary_open_nsfw.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
