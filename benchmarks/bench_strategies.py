"""Benchmark: what each query strategy costs per cycle, against the cycle's training time.

Two parts, one process:

1. Selection (the strategy itself, from model outputs to the chosen batch) on synthetic arrays of
   the paper's scale: pool 10,706 (one NPDI fold), 20% labelled at the start (2,141), 500 queries
   per cycle, al.mc_samples 20, embeddings of 256 (the default head) and 2,048 dimensions (the
   pooled trunk, head `dense: []`). Timed at the first query cycle (largest unlabelled pool), the
   middle one (largest labelled x unlabelled product: core-set's worst) and the last; median and
   range of `--repeats`, the cap `al.max_per_video` off and on (frames per video as in NPDI: 21).
2. Model outputs and training on the real network at 224 px (He-normal trunk, `augment: none`:
   the fastest training mode, so the strictest comparison): images/s of predict_proba, embed,
   mc_dropout_proba (20 samples) and one training epoch of the top model, on `--rows` synthetic
   images through the feature cache. A cycle's training time is then
   epochs x (labelled / train rate + validation rows / predict rate), validation = 2,676 rows
   (benchmarks/paper_protocol.py).

Optionally (`--runs DIR`), the measured per-cycle seconds of a workflow run (cycles.csv:
train_seconds, score_seconds, select_seconds) per strategy, e.g. the demo preset.

Usage: .venv/bin/python benchmarks/bench_strategies.py --out results/bench
       [--runs results/runs --keyframes results/keyframes/keyframes.h5 [--demo-only]]
Writes strategies_selection.csv, strategies_forward.csv, [strategies_demo.csv] and
summary_strategies.md under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from paper_protocol import FRAMES_PER_VIDEO, PAPER, split_sizes  # noqa: E402

_, VAL, POOL = split_sizes()  # the paper's fold: 2,676 validation, 10,706 pool keyframes
QUERY, MC = PAPER["query"], 20
STRATEGIES = ["random", "least_confidence", "entropy", "margin", "bald", "coreset", "badge"]
NEEDS_FORWARD = {  # which model outputs the loop computes for each strategy, and on which rows
    "random": None,
    "least_confidence": ("predict", "unlabelled"),
    "entropy": ("predict", "unlabelled"),
    "margin": ("predict", "unlabelled"),
    "bald": ("mc", "unlabelled"),
    "coreset": ("embed", "pool"),
    "badge": ("embed", "unlabelled"),
}


def labelled_counts() -> list[int]:
    from alnsfw.al.pool import cycle_sizes

    return cycle_sizes(POOL, round(0.2 * POOL), QUERY)


def timed(fn) -> tuple[float, float]:  # noqa: ANN001
    """Wall and CPU seconds (all threads of this process) of fn(): the CPU time is what a
    shared machine's other processes disturb least."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def synthetic_view(n: int, m: int, dim: int, cap: int | None, rng: np.random.Generator):
    """A PoolView with every field a strategy may ask for, of the given sizes."""
    from alnsfw.al.strategies import PoolView

    emb = np.maximum(rng.normal(size=(n + m, dim)), 0).astype(np.float32)  # after a ReLU
    p1 = rng.beta(0.5, 0.5, size=n)
    probabilities = np.stack([1 - p1, p1], axis=1)
    mc1 = np.clip(p1[None, :] + rng.normal(0, 0.1, size=(MC, n)), 0, 1)
    mc = np.stack([1 - mc1, mc1], axis=2)
    videos = rng.permutation(np.arange(n) // FRAMES_PER_VIDEO)
    return PoolView(
        n=n,
        batch_size=QUERY,
        probabilities=probabilities,
        mc_probabilities=mc,
        embeddings=emb[:n],
        labelled_embeddings=emb[n:],
        video_ids=videos,
        max_per_video=cap,
    )


def bench_selection(repeats: int, dims: list[int]) -> pd.DataFrame:
    from alnsfw.al.strategies import get_strategy, select

    counts = labelled_counts()
    queries = len(counts) - 1
    cycles = sorted({0, queries // 2, queries - 1})
    records = []
    for dim in dims:
        for cycle in cycles:
            m = counts[cycle]
            for cap in (None, 2):
                view = synthetic_view(POOL - m, m, dim, cap, np.random.default_rng(cycle))
                for name in STRATEGIES:
                    times, cpu = [], []
                    for r in range(repeats):
                        rng = np.random.default_rng(r)
                        spec = get_strategy(name)
                        wall, used = timed(lambda s=spec, v=view, g=rng: select(s.rank(v, g), v))
                        times.append(wall)
                        cpu.append(used)
                    records.append(
                        {
                            "dim": dim,
                            "cycle": cycle,
                            "labelled": m,
                            "unlabelled": POOL - m,
                            "max_per_video": cap or 0,
                            "strategy": name,
                            "select_s_median": statistics.median(times),
                            "select_s_min": min(times),
                            "select_s_max": max(times),
                            "select_cpu_s_median": statistics.median(cpu),
                        }
                    )
                    print(json.dumps(records[-1]), flush=True)
    return pd.DataFrame.from_records(records)


def bench_forward(rows: int, threads: int) -> dict[str, float]:
    """Images/s of predict, embed, 20-sample MC dropout and one training epoch at 224 px."""
    import h5py

    from alnsfw.model.features import compute_features
    from alnsfw.model.learner import build_learner
    from alnsfw.schema import schema_defaults

    cfg = {
        "model": {
            "weights": "he_normal",
            "weights_seed": 0,
            "input_size": 224,
            "trainable_from": "conv5_block3_1",
            "bn_momentum": "auto",
            "head": {"batchnorm": False, "dense": [256], "dropout": 0.5},
        },
        "training": {
            "learning_rate": 1e-3,
            "batch_size": 32,
            "augment": "none",
            "augmentation": schema_defaults("training", "augmentation"),
        },
        "compute": {
            "feature_cache": True,
            "feature_dtype": "float16",
            "jit_compile": False,
            "threads": threads,
            "predict_batch_size": 64,
            "preload_mb": 4096,
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        keyframes, features = f"{tmp}/keyframes.h5", f"{tmp}/features.h5"
        rng = np.random.default_rng(0)
        with h5py.File(keyframes, "w") as f:
            f["images"] = rng.integers(0, 255, (rows, 224, 224, 3), dtype=np.uint8)
            f["label"] = (rng.random(rows) < 0.5).astype(np.int8)
        compute_features(keyframes, features, cfg)
        learner = build_learner(cfg, keyframes, features, None, 0)
        all_rows = np.arange(rows)
        learner.predict_proba(all_rows[:8])  # trace outside the timings
        learner.embed(all_rows[:8])
        learner.fit(all_rows[:32], all_rows[32:40], 1, 1)
        out = {}
        for name, fn in (
            ("predict", lambda: learner.predict_proba(all_rows)),
            ("embed", lambda: learner.embed(all_rows)),
            ("mc", lambda: learner.mc_dropout_proba(all_rows, MC, 0)),
            ("train_epoch", lambda: learner._train_epoch(learner._draw_plan(all_rows, 1)[0])),
        ):
            runs = [timed(fn) for _ in range(3)]
            out[name] = rows / statistics.median(w for w, _ in runs)
            out[f"{name}_cpu"] = rows / statistics.median(c for _, c in runs)
            print(
                f"{name}: {out[name]:.1f} images/s, {out[name + '_cpu']:.1f} per CPU-s", flush=True
            )
    return out


def cycle_table(selection: pd.DataFrame, rates: dict[str, float]) -> pd.DataFrame:
    """Per strategy, dim and timed cycle: selection, forward passes and training seconds."""
    records = []
    for row in selection.itertuples():
        forward = NEEDS_FORWARD[row.strategy]
        forward_s = 0.0
        if forward:
            kind, where = forward
            n = POOL if where == "pool" else row.unlabelled
            forward_s = n / rates[kind]
        per_epoch = row.labelled / rates["train_epoch"] + VAL / rates["predict"]
        cpu_forward = 0.0
        if forward:
            cpu_forward = n / rates[f"{kind}_cpu"]
        cpu_epoch = row.labelled / rates["train_epoch_cpu"] + VAL / rates["predict_cpu"]
        records.append(
            {
                "strategy": row.strategy,
                "dim": row.dim,
                "cycle": row.cycle,
                "max_per_video": row.max_per_video,
                "select_s": row.select_s_median,
                "forward_s": forward_s,
                "train_s_5_epochs": 5 * per_epoch,
                "train_s_3_epochs": 3 * per_epoch,
                "select_pct_of_train_3": 100 * row.select_s_median / (3 * per_epoch),
                "total_pct_of_train_3": 100 * (row.select_s_median + forward_s) / (3 * per_epoch),
                "cpu_select_pct_of_train_3": 100 * row.select_cpu_s_median / (3 * cpu_epoch),
                "cpu_total_pct_of_train_3": 100
                * (row.select_cpu_s_median + cpu_forward)
                / (3 * cpu_epoch),
            }
        )
    return pd.DataFrame.from_records(records)


def video_spread(runs: Path, keyframes: str) -> pd.DataFrame:
    """Per strategy: mean videos per query batch and mean of each batch's largest per-video
    count, from a workflow's queries.csv (how many labels near-duplicates take)."""
    from alnsfw.al.jobs import read_video_ids

    videos = read_video_ids(keyframes)
    records = []
    for path in sorted(runs.glob("fold*/seed*/*/queries.csv")):
        for _, batch in pd.read_csv(path).groupby("cycle"):
            counts = np.bincount(videos[batch["row"].to_numpy()])
            records.append(
                {
                    "strategy": path.parent.name,
                    "batch": len(batch),
                    "videos_per_batch": int((counts > 0).sum()),
                    "max_per_video": int(counts.max()),
                }
            )
    return pd.DataFrame.from_records(records).groupby("strategy", sort=False).mean().reset_index()


def demo_table(runs: Path) -> pd.DataFrame:
    """Mean seconds per cycle (cycles that query) by strategy, from a workflow's cycles.csv."""
    frames = []
    for path in sorted(runs.glob("fold*/seed*/*/cycles.csv")):
        frame = pd.read_csv(path)
        frame = frame[frame["n_labelled"] < frame["n_labelled"].max()]  # the query cycles
        frame["strategy"] = path.parent.name
        frames.append(frame)
    data = pd.concat(frames)
    cols = ["train_seconds", "score_seconds", "select_seconds"]
    table = data.groupby("strategy", sort=False)[cols].mean()
    table["score_select_pct_of_train"] = (
        100 * (table["score_seconds"] + table["select_seconds"]) / table["train_seconds"]
    )
    table["cycles"] = data.groupby("strategy", sort=False).size()
    return table.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 2048])
    parser.add_argument("--rows", type=int, default=512, help="images of the 224 px timing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", help="a workflow's results/runs, for the measured demo costs")
    parser.add_argument("--keyframes", help="its keyframes.h5, for the videos per query batch")
    parser.add_argument("--demo-only", action="store_true", help="only the --runs tables")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# Strategy cost per cycle", ""]
    if args.runs:
        demo = demo_table(Path(args.runs))
        demo.to_csv(out / "strategies_demo.csv", index=False)
        lines += [
            f"## Measured in {args.runs} (mean per query cycle)",
            "",
            demo.to_markdown(index=False, floatfmt=".3f"),
            "",
        ]
        if args.keyframes:
            spread = video_spread(Path(args.runs), args.keyframes)
            spread.to_csv(out / "strategies_videos.csv", index=False)
            lines += ["## Videos per query batch", "", spread.to_markdown(index=False), ""]
        if args.demo_only:
            (out / "summary_strategies_demo.md").write_text("\n".join(lines))
            print("\n".join(lines))
            return
    selection = bench_selection(args.repeats, args.dims)
    selection.to_csv(out / "strategies_selection.csv", index=False)
    rates = bench_forward(args.rows, args.threads)
    pd.DataFrame([rates]).to_csv(out / "strategies_forward.csv", index=False)
    table = cycle_table(selection, rates)
    table.to_csv(out / "strategies_cycles.csv", index=False)
    worst = (
        table.sort_values("select_pct_of_train_3")
        .groupby(["strategy", "dim", "max_per_video"], sort=False)
        .tail(1)
    )
    worst = worst.sort_values(["dim", "max_per_video", "strategy"])
    lines += [
        "## Paper scale: worst timed cycle per strategy (224 px, 2 threads)",
        "",
        f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        "",
        "images/s (and per CPU-second): " + ", ".join(f"{k} {v:.1f}" for k, v in rates.items()),
        "",
        worst.to_markdown(index=False, floatfmt=".3f"),
        "",
    ]
    (out / "summary_strategies.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
