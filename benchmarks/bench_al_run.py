"""Benchmark: one whole active-learning run, naive vs feature cache, per augmentation mode.

Runs the real loop (alnsfw.al.loop.run_active_learning) on the workflow's keyframes and one
fold's split, once per mode and seed, in one process:
- naive-online: the reference (full model for everything, online augmentation);
- online: same training, scoring/validation/testing from the cache;
- bank: top model on K cached augmented views; none: top model on cached plain features.
Reports wall time (with the one-time cache cost shown apart), its ratio to naive-online, and the
final and mean test accuracy; the spread over seeds is the noise against which accuracy
differences between modes are judged.

`--size N` other than the stored keyframe size runs everything on a temporary copy of
keyframes.h5 whose images are resized to N x N (cv2 INTER_LINEAR; same rows, every other dataset
copied as is). `--weights` (default he_normal) overrides model.weights: speed does not depend on
the weights; `--weights proxy` takes the file rule pretrain_trunk wrote for the config's
model.input_size (it must exist), used as is at --size.
`--max-epochs`, `--query-size`, `--bank-views`, `--pool-limit` shrink a run to fit a time budget;
`--extra-modes` run last, each only if `--budget-s` still allows it.

Usage: .venv/bin/python benchmarks/bench_al_run.py --out results/bench [--size 224]
(needs results/keyframes/keyframes.h5 and results/splits/fold0/seed0.json: `make run`, or
`snakemake --cores 2 results/splits/fold0/seed0.json`). Writes al_run_{size}px.csv and
summary_al_run_{size}px.md.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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

    from alnsfw.schema import SCHEMA_PATH

    config = yaml.safe_load(Path(path).read_text())
    validate(config, str(SCHEMA_PATH))
    config["compute"]["threads"] = threads
    return config


def mode_config(config: dict, mode: str) -> dict:
    augment, cache = MODES[mode]
    cfg = copy.deepcopy(config)
    cfg["training"]["augment"] = augment
    cfg["compute"]["feature_cache"] = cache
    return cfg


def resized_copy(src_path: str, dst_path: str, size: int) -> float:
    """Copy keyframes.h5 to dst_path with `images` resized to size x size; returns seconds.

    Same rows in the same order; every other dataset and the file's attributes are copied as
    they are, except attrs `size` (set to the new size) and `resized_from` (added).
    """
    import cv2
    import h5py
    import numpy as np

    start = time.perf_counter()
    with h5py.File(src_path, "r") as src, h5py.File(dst_path, "w") as dst:
        for name, item in src.items():
            if name != "images":
                src.copy(item, dst, name=name)
        images = src["images"]
        n, old = int(images.shape[0]), int(images.shape[1])
        out = dst.create_dataset(
            "images",
            shape=(n, size, size, 3),
            dtype=images.dtype,
            chunks=(1, size, size, 3) if n else None,
            compression=images.compression,
            compression_opts=images.compression_opts,
        )
        for k in range(0, n, 256):
            block = images[k : k + 256]
            out[k : k + len(block)] = np.stack(
                [cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in block]
            )
        for key, value in images.attrs.items():
            out.attrs[key] = value
        dst.attrs.update(dict(src.attrs))
        dst.attrs["size"] = size
        dst.attrs["resized_from"] = old
    return time.perf_counter() - start


def limit_pool(split, limit: int | None):  # noqa: ANN001, ANN201
    """The split with a seeded random subset of `limit` pool rows (sorted); val/test unchanged."""
    import dataclasses

    import numpy as np

    if limit is None or limit >= len(split.pool):
        return split
    rows = np.random.default_rng(0).choice(split.pool, size=limit, replace=False)
    return dataclasses.replace(split, pool=np.sort(rows))


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
        "epochs": int(cycles["epochs"].sum()),
        "final_accuracy": round(float(cycles["accuracy"].iloc[-1]), 4),
        "mean_accuracy": round(float(cycles["accuracy"].mean()), 4),
    }


def seed_speedups(table):
    """Per mode: naive-online's wall time / the mode's, paired by seed (the two runs of a seed
    run back to back, so load drift hits both), as median, min and max over the seeds. The
    ratio of the means (speedup_vs_naive_online) hides how far one seed's ratio can land."""
    import pandas as pd

    ref = table[table["mode"] == "naive-online"].set_index("seed")["wall_seconds"]
    out = {}
    for mode, runs in table.groupby("mode", sort=False):
        ratios = [ref[s] / w for s, w in zip(runs["seed"], runs["wall_seconds"]) if s in ref]
        if ratios:
            out[mode] = {
                "speedup_seed_median": float(pd.Series(ratios).median()),
                "speedup_seed_min": min(ratios),
                "speedup_seed_max": max(ratios),
            }
    return pd.DataFrame.from_dict(out, orient="index")


def noise_lines(agg, n_test: int, seeds: list[int]) -> list[str]:  # noqa: ANN001
    """How far each cached mode's final accuracy is from naive-online's, against the noise."""
    if "naive-online" not in agg.index:
        return []
    ref = agg.loc["naive-online"]
    lines = [
        "Noise, judged two ways: (a) the spread over seeds (seeds "
        f"{seeds}: each seed changes the initial labelled set, the learner's initialisation and "
        "the augmentation draws): a mode is within noise if |Δ| <= 2 x the pooled SD over seeds "
        f"of the two modes; (b) the binomial standard error of one accuracy on {n_test} test "
        "images, sqrt(p(1-p)/n). With 2 seeds (a) is a rough estimate.",
        "",
    ]
    for mode in agg.index:
        if mode == "naive-online":
            continue
        delta = agg.loc[mode, "final_accuracy"] - ref["final_accuracy"]
        sds = [ref["final_accuracy_sd"], agg.loc[mode, "final_accuracy_sd"]]
        pooled = math.sqrt(sum(s**2 for s in sds) / 2) if all(s == s for s in sds) else math.nan
        p = ref["final_accuracy"]
        se = math.sqrt(max(p * (1 - p), 1e-12) / n_test)
        if pooled == pooled:
            verdict = "within noise" if abs(delta) <= 2 * pooled else "outside noise"
            verdict += f" (2 x pooled seed SD = {2 * pooled:.3f})"
        else:
            verdict = "noise not estimable (one seed)"
        lines.append(
            f"- {mode} vs naive-online: Δ final accuracy {delta:+.3f}; {verdict}; binomial "
            f"SE {se:.3f} (|Δ| = {abs(delta) / se:.1f} SE)."
        )
    return lines + [""]


def weights_note(weights: str, size: int) -> str:
    """What the summary says about the trunk's weights."""
    if weights == "he_normal":
        return (
            "Weights he_normal, not the demo's `proxy`: speed does not depend on the weights, "
            "and `proxy` needs the trunk pretrained by rule pretrain_trunk; accuracies are those "
            "of this un-pretrained trunk, not the demo's."
        )
    return (
        f"Weights {weights} (ResNet50V2's weights do not depend on the input size; a trunk "
        f"pretrained at another size is used as is at {size} px)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", default="config.yaml")
    parser.add_argument("--keyframes", default="results/keyframes/keyframes.h5")
    parser.add_argument("--split", default="results/splits/fold0/seed0.json")
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument(
        "--extra-modes",
        nargs="*",
        default=[],
        choices=list(MODES),
        help="run after all --modes runs, each only if --budget-s still allows it",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=None,
        help="seconds from this script's start that extra modes must fit in",
    )
    parser.add_argument(
        "--size", type=int, default=None, help="image side; default the stored keyframe size"
    )
    parser.add_argument(
        "--weights",
        default="he_normal",
        help="overrides model.weights; proxy: rule pretrain_trunk's file (must exist)",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="overrides training.max_epochs"
    )
    parser.add_argument("--query-size", type=int, default=None, help="overrides al.query_size")
    parser.add_argument(
        "--bank-views",
        type=int,
        default=None,
        help="overrides training.bank_views (a cycle draws one view per image and epoch)",
    )
    parser.add_argument(
        "--pool-limit", type=int, default=None, help="a seeded random subset of this many pool rows"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args()
    script_start = time.perf_counter()
    for path in (args.keyframes, args.split):
        if not Path(path).is_file():
            sys.exit(f"{path} is missing: run `make run` (or snakemake the split) first")

    from alnsfw.model.backend import select_backend

    config = load_config(args.configfile, args.threads)
    select_backend(config["compute"]["backend"], args.threads)  # before Keras is imported
    import h5py
    import numpy as np
    import pandas as pd

    from alnsfw.al.loop import Split
    from alnsfw.model.features import compute_bank, compute_features

    weights = args.weights
    if weights == "proxy":  # the trunk rule pretrain_trunk made at the demo's input size
        from alnsfw.model.tags import proxy_weights_file

        weights = proxy_weights_file(config)
        if not Path(weights).is_file():
            sys.exit(f"{weights} is missing: `snakemake --cores 2 {weights}` (pretrain_trunk)")
    config["model"]["weights"] = weights
    if args.max_epochs is not None:
        config["training"]["max_epochs"] = args.max_epochs
    if args.query_size is not None:
        config["al"]["query_size"] = args.query_size
    if args.bank_views is not None:
        config["training"]["bank_views"] = args.bank_views
    split_json = json.loads(Path(args.split).read_text())
    split, fold = Split.from_json(split_json), int(split_json["fold"])
    n_pool_full = len(split.pool)
    split = limit_pool(split, args.pool_limit)
    with h5py.File(args.keyframes, "r") as f:
        labels = np.asarray(f["label"][()])
        stored = int(f["images"].shape[1])
    size = args.size or stored
    config["model"]["input_size"] = size
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="bench-al-") as tmp:
        keyframes, resize_s = args.keyframes, 0.0
        if size != stored:
            keyframes = f"{tmp}/keyframes_{size}px.h5"
            resize_s = resized_copy(args.keyframes, keyframes, size)
            print(f"resized {stored} -> {size} px in {resize_s:.1f} s", flush=True)
        files = {
            "keyframes": keyframes,
            "features": f"{tmp}/features.h5",
            "bank": f"{tmp}/bank.h5",
        }
        start = time.perf_counter()
        compute_features(keyframes, files["features"], config)
        cache_s = time.perf_counter() - start
        start = time.perf_counter()
        compute_bank(keyframes, files["bank"], mode_config(config, "bank"))
        bank_s = time.perf_counter() - start
        print(f"cache {cache_s:.1f} s, bank {bank_s:.1f} s (once per trunk, shared by all runs)")

        def run(mode: str, seed: int) -> None:
            cfg = mode_config(config, mode)
            row = {"mode": mode, "seed": seed}
            row |= run_one(cfg, files, split, labels, args.strategy, fold, seed)
            rows.append(row)
            print(
                f"  {mode:13s} seed {seed}: {row['wall_seconds']:7.1f} s, final accuracy "
                f"{row['final_accuracy']:.3f}",
                flush=True,
            )

        for seed in args.seeds:
            for mode in args.modes:
                run(mode, seed)
        for mode in [m for m in args.extra_modes if m not in args.modes]:
            for seed in args.seeds:
                # Estimate: this mode's earlier seed, else the slowest cached mode so far.
                done = [r["wall_seconds"] for r in rows if r["mode"] == mode]
                cached = [r["wall_seconds"] for r in rows if MODES[r["mode"]][1]]
                guess = max(done or cached or [0.0])
                elapsed = time.perf_counter() - script_start
                if args.budget_s is not None and elapsed + guess > args.budget_s:
                    skipped.append(f"{mode} seed {seed}")
                    print(f"  {mode} seed {seed}: skipped (budget)", flush=True)
                    continue
                run(mode, seed)
    table = pd.DataFrame(rows)
    table.to_csv(out / f"al_run_{size}px.csv", index=False)
    agg = table.groupby("mode", sort=False).agg(
        wall_seconds=("wall_seconds", "mean"),
        final_accuracy=("final_accuracy", "mean"),
        final_accuracy_sd=("final_accuracy", "std"),
        mean_accuracy=("mean_accuracy", "mean"),
    )
    once = {m: cache_s + (bank_s if MODES[m][0] == "bank" else 0.0) for m in MODES}
    once = {m: (v if MODES[m][1] else 0.0) for m, v in once.items()}
    if "naive-online" in agg.index:
        ref = agg.loc["naive-online", "wall_seconds"]
        agg["speedup_vs_naive_online"] = ref / agg["wall_seconds"]
        agg["speedup_incl_cache"] = ref / (agg["wall_seconds"] + agg.index.map(once))
        agg = agg.join(seed_speedups(table))
    overrides = [f"model.weights={args.weights}", f"model.input_size={size}"]
    if args.max_epochs is not None:
        overrides.append(f"training.max_epochs={args.max_epochs}")
    if args.query_size is not None:
        overrides.append(f"al.query_size={args.query_size}")
    if args.bank_views is not None:
        overrides.append(f"training.bank_views={args.bank_views}")
    pool_note = (
        f"{len(split.pool)} pool images (a seeded random subset of the split's {n_pool_full}, "
        "to fit the time budget)"
        if len(split.pool) < n_pool_full
        else f"{len(split.pool)} pool images"
    )
    command = " ".join(sys.argv[1:])
    resized = (
        f" Images resized from the stored {stored} px to {size} px (cv2 INTER_LINEAR, "
        f"{resize_s:.1f} s, not counted)."
        if size != stored
        else ""
    )
    text = "\n".join(
        [
            f"# Benchmark: one whole AL run per mode at {size} px ({args.strategy}, fold {fold}, "
            f"seeds {args.seeds}, {len(split.pool)} pool / {len(split.val)} val / "
            f"{len(split.test)} test images)",
            "",
            f"Command: `.venv/bin/python benchmarks/bench_al_run.py {command}`; TF threads "
            f"{args.threads}; config {args.configfile} with training.augment and "
            f"compute.feature_cache varied and {', '.join(overrides)}; {pool_note}; "
            f"al.query_size {config['al']['query_size']}, training.max_epochs "
            f"{config['training']['max_epochs']} (patience {config['training']['patience']})."
            f"{resized} {weights_note(weights, size)}",
            "",
            "One-time cost of the cache (shared by all runs of a trunk, e.g. the 100 runs of the "
            f"paper protocol; not in wall_seconds): features {cache_s:.1f} s, bank {bank_s:.1f} s, "
            f"for all {len(labels)} keyframe rows. speedup_incl_cache charges it all to one run "
            "(the worst case).",
            "",
            agg.round(3).to_markdown(),
            "",
            "final_accuracy_sd: spread over seeds, the noise a mode's accuracy is judged against. "
            "speedup_seed_median / _min / _max: naive-online's wall time over the mode's, paired "
            "by seed (run back to back), median and range over the seeds.",
            "",
            *noise_lines(agg, len(split.test), args.seeds),
            *([f"Skipped for the time budget: {', '.join(skipped)}.", ""] if skipped else []),
            "Per run:",
            "",
            table.to_markdown(index=False),
            "",
        ]
    )
    (out / f"summary_al_run_{size}px.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
