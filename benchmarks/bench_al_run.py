"""Benchmark: one whole active-learning run, naive vs feature cache, per augmentation mode.

Runs the real loop (alnsfw.al.loop.run_active_learning) on the workflow's keyframes and one
fold's split, once per mode and seed, in one process:
- naive-online: the reference (full model for everything, online augmentation);
- online: same training, scoring/validation/testing from the cache;
- bank: top model on K cached augmented views; none: top model on cached plain features.
Reports wall time (with the one-time cache cost shown apart), its ratio to naive-online, and the
final and mean test accuracy; the spread over seeds is the noise against which accuracy
differences between modes are judged.

Usage: .venv/bin/python benchmarks/bench_al_run.py --out results/bench
(needs results/keyframes/keyframes.h5 and results/splits/fold0/seed0.json: `make run`, or
`snakemake --cores 2 results/splits/fold0/seed0.json`). Writes al_run.csv, summary_al_run.md.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODES = {  # name: (training.augment, compute.feature_cache)
    "naive-online": ("online", False),
    "online": ("online", True),
    "bank": ("bank", True),
    "none": ("none", True),
}


def load_config(path: str, threads: int) -> dict:
    import yaml
    from snakemake.utils import validate  # fills the schema's defaults

    config = yaml.safe_load(Path(path).read_text())
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    config["compute"]["threads"] = threads
    return config


def mode_config(config: dict, mode: str) -> dict:
    augment, cache = MODES[mode]
    cfg = copy.deepcopy(config)
    cfg["training"]["augment"] = augment
    cfg["compute"]["feature_cache"] = cache
    return cfg


def run_one(cfg, files, split, labels, strategy: str, fold: int, seed: int) -> dict:
    import keras

    from alnsfw.al.loop import LoopSettings, run_active_learning
    from alnsfw.al.seeding import RunSeeds, seed_python_numpy
    from alnsfw.model.learner import build_learner

    seeds = RunSeeds.for_run(seed, fold, strategy)
    seed_python_numpy(seeds.learner)
    start = time.perf_counter()
    learner = build_learner(
        cfg, files["keyframes"], files["features"], files["bank"], seeds.learner
    )
    result = run_active_learning(
        learner, split, labels, strategy, LoopSettings.from_config(cfg), seeds
    )
    wall = time.perf_counter() - start
    cycles = result.cycles
    del learner
    keras.backend.clear_session()
    gc.collect()
    return {
        "wall_seconds": round(wall, 2),
        "train_seconds": round(float(cycles["train_seconds"].sum()), 2),
        "score_seconds": round(float(cycles["score_seconds"].sum()), 2),
        "test_seconds": round(float(cycles["test_seconds"].sum()), 2),
        "cycles": len(cycles),
        "final_accuracy": round(float(cycles["accuracy"].iloc[-1]), 4),
        "mean_accuracy": round(float(cycles["accuracy"].mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--keyframes", default="results/keyframes/keyframes.h5")
    parser.add_argument("--split", default="results/splits/fold0/seed0.json")
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args()
    for path in (args.keyframes, args.split):
        if not Path(path).is_file():
            sys.exit(f"{path} is missing: run `make run` (or snakemake the split) first")

    from alnsfw.model.network import configure_threads

    configure_threads(args.threads)
    import h5py
    import numpy as np
    import pandas as pd

    from alnsfw.al.loop import Split
    from alnsfw.model.features import compute_bank, compute_features

    config = load_config(args.configfile, args.threads)
    split_json = json.loads(Path(args.split).read_text())
    split, fold = Split.from_json(split_json), int(split_json["fold"])
    with h5py.File(args.keyframes, "r") as f:
        labels = np.asarray(f["label"][()])
        size = int(f["images"].shape[1])
    config["model"]["input_size"] = size
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-al-") as tmp:
        files = {
            "keyframes": args.keyframes,
            "features": f"{tmp}/features.h5",
            "bank": f"{tmp}/bank.h5",
        }
        start = time.perf_counter()
        compute_features(args.keyframes, files["features"], config)
        cache_s = time.perf_counter() - start
        start = time.perf_counter()
        compute_bank(args.keyframes, files["bank"], mode_config(config, "bank"))
        bank_s = time.perf_counter() - start
        print(f"cache {cache_s:.1f} s, bank {bank_s:.1f} s (once per trunk, shared by all runs)")
        for seed in args.seeds:
            for mode in args.modes:
                cfg = mode_config(config, mode)
                row = {"mode": mode, "seed": seed}
                row |= run_one(cfg, files, split, labels, args.strategy, fold, seed)
                rows.append(row)
                print(
                    f"  {mode:13s} seed {seed}: {row['wall_seconds']:7.1f} s, final accuracy "
                    f"{row['final_accuracy']:.3f}",
                    flush=True,
                )
    table = pd.DataFrame(rows)
    table.to_csv(out / "al_run.csv", index=False)
    agg = table.groupby("mode", sort=False).agg(
        wall_seconds=("wall_seconds", "mean"),
        final_accuracy=("final_accuracy", "mean"),
        final_accuracy_sd=("final_accuracy", "std"),
        mean_accuracy=("mean_accuracy", "mean"),
    )
    if "naive-online" in agg.index:
        agg["speedup_vs_naive_online"] = (
            agg.loc["naive-online", "wall_seconds"] / agg["wall_seconds"]
        )
    text = "\n".join(
        [
            f"# Benchmark: one whole AL run per mode ({args.strategy}, fold {fold}, seeds "
            f"{args.seeds}, {len(split.pool)} pool / {len(split.test)} test images, {size} px)",
            "",
            f"Command: `.venv/bin/python benchmarks/bench_al_run.py --out {args.out}`; TF "
            f"threads {args.threads}; config {args.configfile} with training.augment and "
            "compute.feature_cache varied. One-time cost of the cache (shared by all runs, not "
            f"in the wall times): features {cache_s:.1f} s, bank {bank_s:.1f} s.",
            "",
            agg.round(3).to_markdown(),
            "",
            "final_accuracy_sd: spread over seeds, the noise a mode's accuracy is judged against.",
            "",
            "Per run:",
            "",
            table.to_markdown(index=False),
            "",
        ]
    )
    (out / "summary_al_run.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
