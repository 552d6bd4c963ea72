"""Pretraining speed: rule pretrain_trunk's training loop against plain Keras `train_on_batch`.

Issue 21 measured the whole pretraining step at 5 images/s against 11 for plain Keras
`train_on_batch` of a ResNet50V2 (64 px, batch 32) on one 2-core machine. This benchmark puts
both in one process on the same model and data, so the ratio does not depend on what else the
machine runs: `ours` is what `alnsfw.model.pretrain.pretrain_trunk` does (backend.prepare: TF
threads intra N / inter 1, op determinism; then `model.fit` over the whole array), `plain` is a
`train_on_batch` loop over the same batches. Both are timed `--repeats` times, interleaved;
the medians of wall-clock images/s and of images per CPU-second (user + system of the process,
which the load of a shared machine disturbs less) are written as CSV and Markdown.

Usage: .venv/bin/python benchmarks/bench_pretrain.py --out results/bench [--size 64]
       [--images 256] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

from alnsfw.model import backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    cfg = {"compute": {"backend": "tensorflow", "threads": args.threads}}
    backend.prepare(cfg, 0, threads=args.threads)  # what pretrain_trunk does first
    import keras
    import numpy as np

    from alnsfw.model.pretrain import build_proxy_model, proxy_dataset

    images, labels = proxy_dataset(args.images, args.size, 0)
    x = images.astype(np.float32)
    model, _ = build_proxy_model(args.size, 0)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    bs = args.batch_size

    def ours() -> None:
        model.fit(x, labels, batch_size=bs, epochs=1, shuffle=True, verbose=0)

    def plain() -> None:
        for i in range(0, len(x), bs):
            model.train_on_batch(x[i : i + bs], labels[i : i + bs])

    paths = {"ours": ours, "plain": plain}
    # Trace both graphs before timing.
    model.fit(x[: 2 * bs], labels[: 2 * bs], batch_size=bs, epochs=1, verbose=0)
    model.train_on_batch(x[:bs], labels[:bs])
    rows = []
    for r in range(args.repeats):
        for name, fn in paths.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rows.append({"repeat": r, "path": name, "wall_s": wall, "cpu_s": cpu})
            print(f"repeat {r} {name}: {args.images / wall:.1f} img/s", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "pretrain.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    def med(name: str, key: str) -> float:
        return statistics.median(args.images / r[key] for r in rows if r["path"] == name)

    lines = [
        f"Pretraining, {args.size} px, batch {bs}, {args.images} images per timing, "
        f"{args.threads} TF threads, median of {args.repeats}:",
        "",
        "| path | images/s (wall) | images per CPU-second |",
        "|---|---:|---:|",
    ]
    for name in paths:
        lines.append(f"| {name} | {med(name, 'wall_s'):.1f} | {med(name, 'cpu_s'):.2f} |")
    lines += [
        "",
        f"ours / plain: {med('ours', 'wall_s') / med('plain', 'wall_s'):.2f}x wall, "
        f"{med('ours', 'cpu_s') / med('plain', 'cpu_s'):.2f}x per CPU-second",
    ]
    (out / "pretrain.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
