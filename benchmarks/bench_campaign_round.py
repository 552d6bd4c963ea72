"""A campaign round at scale: pull + train + score + push on N synthetic keyframes at 224 px.

    .venv/bin/python benchmarks/bench_campaign_round.py --rows 20000 --out results/bench

What a moderation team's folder of ~20,000 keyframes costs per round once its feature cache
exists (the cache is the one-time cost the workflow measures elsewhere: ~4.5 images/s for
ResNet50V2 at 224 px on 2 cores, benchmarks/bench_open_nsfw.py). The keyframes file is
synthetic (one small JPEG per row as its full-resolution task image, so a push copies bytes), the
feature cache is random float16 of the real trunk output shape at 224 px ([N, 7, 7, 2048], 4 GB
at 20,000 rows) carrying the real trunk's fingerprint, so the learner accepts it and reads it as
it reads a real one; the annotator answers every task at once (in memory, no Label Studio: its
own costs are measured in docs/campaign.md). Timings are per round (the round report's `time:`
line) and the process's peak resident memory, in CSV and Markdown.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tools"))


def make_keyframes(path: Path, rows: int, per_video: int, seed: int) -> np.ndarray:
    """keyframes.h5 with the campaign's datasets; returns hidden labels (half the videos porn)."""
    from alnsfw.data.shards import write_full_jpeg, write_index

    rng = np.random.default_rng(seed)
    n_videos = rows // per_video
    video = np.repeat(np.arange(n_videos), per_video)[:rows]
    truth = (rng.random(n_videos) < 0.5).astype(np.int8)[video]
    ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (360, 640, 3), dtype=np.uint8))
    assert ok
    with h5py.File(path, "w") as h5:
        h5.create_dataset("images", data=np.zeros((rows, 8, 8, 3), np.uint8))
        names = [f"clip{v:05d}" for v in video]
        write_index(  # the datasets every keyframes.h5 has (alnsfw.data.shards)
            h5,
            {
                "video": names,
                "frame": np.tile(np.arange(1, per_video + 1), n_videos)[:rows],
                "video_class": ["unlabelled"] * rows,
                "label": np.full(rows, -1, np.int8),
                "video_label": np.full(rows, -1, np.int8),
                "source": [f"/videos/{n}.mp4" for n in names],
                "video_frame": np.tile(np.arange(per_video) * 25, n_videos)[:rows],
            },
        )
        write_full_jpeg(h5, [jpeg.tobytes()] * rows, [25.0] * rows)
    return truth


def make_features(cfg: dict, keyframes: Path, out: Path, rows: int, seed: int) -> None:
    """Random features of the trunk's shape with the real trunk's attributes (fingerprint)."""
    from alnsfw.model import backend
    from alnsfw.model.features import _attrs
    from alnsfw.model.network import build_network

    backend.prepare(cfg, seed=0)
    net = build_network(cfg, seed=0, augment=False)
    shape = tuple(int(d) for d in net.trunk.output.shape[1:])
    rng = np.random.default_rng(seed)
    chunk = 500
    with h5py.File(out, "w") as h5:
        ds = h5.create_dataset(
            "features", shape=(rows, *shape), dtype=np.float16, chunks=(16, *shape)
        )
        for a in range(0, rows, chunk):
            b = min(rows, a + chunk)
            ds[a:b] = np.abs(rng.standard_normal((b - a, *shape))).astype(np.float16)
        h5.attrs.update(_attrs(cfg, net, keyframes, rows) | {"dtype": "float16"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--query", type=int, default=100)
    parser.add_argument("--work", default="results/bench/campaign-round")
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args()

    from campaign_vs_simulation import TruthAnnotator

    from alnsfw.campaign.core import Campaign
    from alnsfw.config import load_config
    from alnsfw.model.tags import feature_files

    work = Path(args.work).resolve()
    (work / "results/keyframes").mkdir(parents=True, exist_ok=True)
    (work / "videos").mkdir(exist_ok=True)
    cfg = load_config(
        [],
        [
            f"data={{source: folder, root: {work / 'videos'}}}",
            f"model={{input_size: {args.size}}}",
            "training={augment: none, max_epochs: 5, patience: 2}",
            f"al={{query_size: {args.query}}}",
            f"campaign={{dir: {work / 'campaign'}, image_dir: {work / 'campaign/images'}, "
            "audit_size: 400, val_size: 200, initial_size: 200}",
        ],
        base=ROOT / "config.yaml",
        check=False,
    )
    keyframes = work / "results/keyframes/keyframes.h5"
    features = work / feature_files(cfg)["features"]
    t0 = time.perf_counter()
    truth = make_keyframes(keyframes, args.rows, 10, 0)
    features.parent.mkdir(parents=True, exist_ok=True)
    if not features.is_file():
        make_features(cfg, keyframes, features, args.rows, 0)
    print(f"synthetic keyframes and features: {time.perf_counter() - t0:.0f} s", flush=True)
    client = TruthAnnotator(truth.astype(np.int64))
    campaign = Campaign(cfg, str(keyframes), client)  # one process: the served campaign's path
    campaign.start()
    lines = []
    for _ in range(args.rounds):
        report = campaign.round()
        line = {"rows": args.rows, "size": args.size, "round_no": report.round}
        line |= {f"{k} s": v for k, v in report.seconds.items()}
        line["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        lines.append(line)
        print(line, flush=True)
    table = pd.DataFrame(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "campaign_round.csv", index=False)
    (out / "campaign_round.md").write_text(table.round(2).to_markdown(index=False) + "\n")
    print(table.round(2).to_markdown(index=False))


if __name__ == "__main__":
    main()
