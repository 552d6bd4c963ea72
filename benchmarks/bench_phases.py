"""Benchmark: images/s of each phase of an active-learning cycle, naive vs feature cache.

Phases: train one epoch, score the pool, test. Paths:
- naive: the full ResNet50V2 for everything (`compute.feature_cache: false`), online augmentation;
- online: training as naive (full model, augmented images), scoring from the cache;
- bank: top model on one of K cached augmented views per image;
- none: top model on cached un-augmented features.
- head: the demo's path since issue 21 (`model.trainable_from: post_bn`): only the head trains,
  on a cache of `conv5_block3_out` (bank views), so no convolution runs in a cycle; against
  `bank` (conv5_block3 trained on a `conv5_block2_out` cache) it is the before/after of the fix.
- head:per-batch: `head` with Keras' `train_on_batch` / `predict_on_batch` per batch instead of
  the whole epoch in one graph (alnsfw.model.backend.EpochTrainer, TablePredictor): the
  before/after of the second fix (same weights, bit for bit).
The timings run in one process on the same synthetic images (so the paths share the machine's
state); peak resident memory is measured in one child process per path (peak RSS only grows, so
it cannot be split within one process). From the measured per-image costs, the script projects
the paper's full protocol (100 runs on 16,727 keyframes) onto this machine.

Every phase is timed --repeats times (training: --train-repeats epochs), the paths interleaved
(repeat r times naive, online, bank, none once each before repeat r + 1), so a change in the
load of a shared machine hits all paths alike. Reported per (path, phase): the median rate and
its min-max and IQR; each speed-up over naive as the median of the per-repeat ratios, with its
min-max and IQR (a ratio from a single timing of each side swung from 4.2x to 15.4x between two
runs on a loaded machine).

Usage: .venv/bin/python benchmarks/bench_phases.py --size 64 --out results/bench
Writes phases_{size}px.csv (medians and spreads), phases_raw_{size}px.csv (every timing),
ratios_{size}px.csv, memory_{size}px.csv, projection_{size}px.csv, summary_{size}px.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from paper_protocol import PAPER, protocol_images  # noqa: E402

from alnsfw.model.backend import BACKENDS, select_backend  # noqa: E402  (imports no Keras)


def make_data(path: Path, n: int, size: int) -> None:
    """n learnable RGB images (porn rows reddish) in keyframes.h5's format."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 2).astype(np.int8)
    images = rng.integers(0, 150, (n, size, size, 3)).astype(np.uint8)
    images[labels == 1, ..., 0] += 90
    images[labels == 0, ..., 2] += 90
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, chunks=(1, size, size, 3), compression="gzip")
        f["label"] = labels


def config(
    args: argparse.Namespace,
    augment: str,
    cache: bool,
    jit: bool = False,
    trainable_from: str = "conv5_block3_1",
) -> dict:
    from alnsfw.schema import schema_defaults

    return {
        "model": {
            "weights": "he_normal",
            "weights_seed": 0,
            "input_size": args.size,
            "trainable_from": trainable_from,
            "bn_momentum": "auto",
            "head": {"batchnorm": True, "dense": [256], "dropout": 0.5},
        },
        "training": {
            "learning_rate": 1e-3,
            "batch_size": 32,
            "augment": augment,
            "bank_views": args.views,
            "augmentation": schema_defaults("training", "augmentation"),
        },
        "compute": {
            "backend": args.backend,
            "feature_cache": cache,
            "feature_dtype": args.dtype,
            "jit_compile": jit,
            "threads": args.threads,
            "predict_batch_size": 64,
            "preload_mb": args.preload_mb,
        },
    }


VARIANTS = {  # name: (augment, feature_cache, jit, trainable_from)
    "naive": ("online", False, False, "conv5_block3_1"),
    "online": ("online", True, False, "conv5_block3_1"),
    "bank": ("bank", True, False, "conv5_block3_1"),
    "none": ("none", True, False, "conv5_block3_1"),
    "none+jit": ("none", True, True, "conv5_block3_1"),
    "head": ("bank", True, False, "post_bn"),
    "head:per-batch": ("bank", True, False, "post_bn"),
}


def rows(args: argparse.Namespace):
    import numpy as np

    pool = np.arange(args.pool)
    test = np.arange(args.pool, args.pool + args.test)
    return pool, test


PHASES = ("train_epoch", "score_pool", "test")


class Variant:
    """One path's Learner, built and warmed up (tracing outside the timings), ready to time."""

    def __init__(self, args: argparse.Namespace, files: dict, name: str, epochs: int) -> None:
        import h5py
        import numpy as np

        from alnsfw.model.learner import build_learner

        augment, cache, jit, trainable_from = VARIANTS[name]
        prefix = "head_" if name.startswith("head") else ""  # its own cache: conv5_block3_out
        self.name = name
        self.learner = build_learner(
            config(args, augment, cache, jit, trainable_from),
            files["keyframes"],
            files[f"{prefix}features"],
            files[f"{prefix}bank"],
            0,
        )
        if name.endswith(":per-batch"):
            self.learner._epochs.in_graph = self.learner._predictor.in_graph = False
        self.pool, self.test = rows(args)
        with h5py.File(files["keyframes"], "r") as f:
            self.onehot = np.eye(2, dtype=np.float32)[f["label"][:]]
        self.learner._train_epoch(self.learner._draw_plan(self.pool[:64], 1)[0], self.onehot)
        self.learner.predict_proba(self.test[:8])
        self.plans = iter(self.learner._draw_plan(self.pool, max(epochs, 1)))

    def time(self, phase: str) -> dict:
        """Time one run of `phase` (one epoch, one pass over the pool or the test set)."""
        if phase == "train_epoch":
            plan = next(self.plans)
            fn, n = (lambda: self.learner._train_epoch(plan, self.onehot)), len(self.pool)
        elif phase == "score_pool":
            fn, n = (lambda: self.learner.predict_proba(self.pool)), len(self.pool)
        else:
            fn, n = (lambda: self.learner.predict_proba(self.test)), len(self.test)
        start = time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        return {"path": self.name, "phase": phase, "images": n, "seconds": seconds}


def run_interleaved(
    variants: dict[str, Variant], plan: dict[str, list[str]], repeats: dict[str, int]
) -> list[dict]:
    """Time every (path, phase) `repeats[phase]` times, round-robin: repeat r times every path
    once before repeat r + 1 starts, so a change in the machine's load between repeats (other
    processes on a shared machine) hits naive and cached alike, and the per-repeat ratio
    compares two timings taken seconds apart. Returns one raw row per timing."""
    out = []
    for r in range(max(repeats.values())):
        for phase in PHASES:
            if r >= repeats[phase]:
                continue
            for name, phases in plan.items():
                if phase in phases:
                    row = variants[name].time(phase) | {"repeat": r}
                    out.append(row)
                    rate = row["images"] / row["seconds"]
                    print(f"  r{r} {name:9s} {phase:11s} {rate:9.1f} images/s", flush=True)
    return out


def _stats(values: list[float]) -> dict:
    """Median, min, max and the interquartile range (linear interpolation) of `values`."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"median": med, "min": v.min(), "max": v.max(), "q1": q1, "q3": q3, "n": len(v)}


def summarise(raw: list[dict], reference: str = "naive") -> tuple[list[dict], list[dict]]:
    """Per (path, phase): the median rate and its spread; per (path, phase) other than the
    reference: the ratio of rates to the reference, as the median of the per-repeat ratios.

    A ratio from one timing of each side swings with whatever else the machine is doing (4.2x and
    15.4x in two runs); the median of R paired ratios (same repeat index, timed back to back) is
    robust to one disturbed timing, and min-max / IQR show how far a single measurement can land.
    Rows of `raw`: path, phase, repeat, images, seconds. `images_per_s` (and `seconds`) in the
    result are medians, so the columns keep their meaning of "the rate of this phase".
    """
    groups: dict[tuple[str, str], dict[int, dict]] = {}
    for row in raw:
        groups.setdefault((row["path"], row["phase"]), {})[row["repeat"]] = row
    phases, ratios = [], []
    for (path, phase), by_rep in groups.items():
        rates = [r["images"] / r["seconds"] for r in by_rep.values()]
        st = _stats(rates)
        phases.append(
            {
                "path": path,
                "phase": phase,
                "images": next(iter(by_rep.values()))["images"],
                "seconds": round(_stats([r["seconds"] for r in by_rep.values()])["median"], 4),
                "images_per_s": round(st["median"], 2),
                "repeats": st["n"],
                "images_per_s_min": round(st["min"], 2),
                "images_per_s_max": round(st["max"], 2),
                "images_per_s_q1": round(st["q1"], 2),
                "images_per_s_q3": round(st["q3"], 2),
            }
        )
        ref = groups.get((reference, phase))
        if path == reference or ref is None:
            continue
        paired = [
            (row["images"] / row["seconds"]) / (ref[r]["images"] / ref[r]["seconds"])
            for r, row in by_rep.items()
            if r in ref
        ]
        if not paired:
            continue
        st = _stats(paired)
        ratios.append(
            {
                "path": path,
                "phase": phase,
                "ratio": round(st["median"], 3),
                "ratio_min": round(st["min"], 3),
                "ratio_max": round(st["max"], 3),
                "ratio_q1": round(st["q1"], 3),
                "ratio_q3": round(st["q3"], 3),
                "pairs": st["n"],
            }
        )
    return phases, ratios


def child(args: argparse.Namespace) -> None:
    """One path's phases (one timing each) in a fresh process; print its peak RSS as JSON."""
    files = json.loads(args.files)
    select_backend(args.backend, args.threads)
    variant = Variant(args, files, args.child, 1)
    for phase in PHASES:
        variant.time(phase)
    print("RSS " + json.dumps({"path": args.child, "peak_rss_mb": round(peak_rss_mb(), 1)}))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the
    parent across fork+exec, so a child would report the (larger) parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_memory(args: argparse.Namespace, files: dict, names: list[str]) -> list[dict]:
    out = []
    for label in names:  # "name" (arrays in memory up to --preload-mb) or "name:stream"
        name, _, stream = label.partition(":")
        shared = _shared_args(args) | ({"preload_mb": 0} if stream else {})
        cmd = [sys.executable, __file__, "--child", name, "--files", json.dumps(files)]
        cmd += [f"--{k.replace('_', '-')}={v}" for k, v in shared.items()]
        text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        line = next(x for x in text.splitlines() if x.startswith("RSS "))
        reads = "HDF5 batches" if stream else f"in memory (<= {args.preload_mb:.0f} MB)"
        out.append(json.loads(line[4:]) | {"data": reads})
        print(f"  peak RSS {label:11s} {out[-1]['peak_rss_mb']:8.0f} MB", flush=True)
    return out


def _shared_args(args: argparse.Namespace) -> dict:
    keys = ("size", "pool", "test", "views", "threads", "backend", "dtype", "preload_mb", "repeats")
    return {k: getattr(args, k) for k in keys}


def paper_images() -> dict:
    """Images through each phase in the whole paper protocol (all epochs run: an upper bound);
    scoring counts validation, pool and test passes together."""
    p = protocol_images()
    return {
        "cycles_per_run": p["cycles_per_run"],
        "pool": p["pool"],
        "train": p["train"],
        "score": p["val"] + p["score"] + p["test"],
        "runs": p["al_runs"] + p["baselines"],
    }


def projection(phases: list[dict], cache_rates: dict, views: int) -> list[dict]:
    rate = {(r["path"], r["phase"]): r["images_per_s"] for r in phases}
    work = paper_images()
    n = PAPER["keyframes"]
    out = []
    for path in ("naive", "online", "bank", "none"):
        if (path, "train_epoch") not in rate:
            continue
        score_path = "naive" if path == "naive" else "online"
        score_rate = (rate[(score_path, "score_pool")] + rate[(score_path, "test")]) / 2
        train_h = work["train"] / rate[(path, "train_epoch")] / 3600
        score_h = work["score"] / score_rate / 3600
        once_h = 0.0
        if path != "naive":
            once_h += n / cache_rates["features"] / 3600
        if path == "bank":
            once_h += n * views / cache_rates["bank"] / 3600
        out.append(
            {
                "path": path,
                "train_images": int(work["train"]),
                "score_images": int(work["score"]),
                "train_hours": round(train_h, 1),
                "score_hours": round(score_h, 1),
                "cache_hours": round(once_h, 2),
                "total_hours": round(train_h + score_h + once_h, 1),
            }
        )
    naive = next(r for r in out if r["path"] == "naive")["total_hours"]
    for r in out:
        r["speedup_vs_naive"] = round(naive / r["total_hours"], 2)
    return out


def _spread(median: float, lo: float, hi: float, fmt: str = "{:.1f}", unit: str = "") -> str:
    """One markdown cell: the median and, in brackets, the min-max over the repeats."""
    return f"{fmt.format(median)}{unit} ({fmt.format(lo)}–{fmt.format(hi)})"


def rate_table(phases: list[dict]):
    """Paths x phases, each cell "median (min–max)" images/s."""
    import pandas as pd

    frame = pd.DataFrame(phases)
    frame["cell"] = [
        _spread(r.images_per_s, r.images_per_s_min, r.images_per_s_max) for r in frame.itertuples()
    ]
    table = frame.pivot(index="path", columns="phase", values="cell")
    table = table.reindex([v for v in VARIANTS if v in table.index])
    return table[[c for c in PHASES if c in table.columns]].fillna("")


def ratio_table(ratios: list[dict]):
    """Paths x phases, each cell "median of the per-repeat ratios x (min–max)"."""
    import pandas as pd

    frame = pd.DataFrame(ratios)
    frame["cell"] = [
        _spread(r.ratio, r.ratio_min, r.ratio_max, "{:.1f}", "x") for r in frame.itertuples()
    ]
    table = frame.pivot(index="path", columns="phase", values="cell")
    order = [*VARIANTS, "head vs head:per-batch"]
    table = table.reindex([v for v in order if v in table.index])
    return table[[c for c in PHASES if c in table.columns]].fillna("")


def summary(args, phases, ratios, memory, cache_rates, proj, elapsed) -> str:
    import pandas as pd

    work = paper_images()
    command = " ".join(sys.argv[1:])
    lines = [
        f"# Benchmark: naive vs feature cache, {args.size} px",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_phases.py {command}` ({elapsed:.0f} s). "
        f"Machine: {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), TF threads {args.threads}; weights "
        f"he_normal (speed does not depend on the weights), batch 32, {args.pool} pool and "
        f"{args.test} test images, cache {args.dtype}, bank K={args.views}.",
        "",
        "## Images per second (same process, same data)",
        "",
        f"Each phase timed {args.train_repeats} times (train_epoch) or {args.repeats} times "
        "(score_pool, test), the paths interleaved (repeat r times every path once before "
        "repeat r + 1): median (min–max) over the repeats.",
        "",
        rate_table(phases).to_markdown(),
        "",
        "Speed-up over naive: the median of the per-repeat ratios (path's rate / naive's rate "
        "in the same repeat), (min–max) over the repeats. A ratio measured once can land "
        "anywhere in that range. The last row compares head with head:per-batch instead.",
        "",
        ratio_table(ratios).to_markdown(),
        "",
        "online trains like naive (full model on augmented images) and scores from the cache. "
        "Scoring is the same for online, bank and none (the top model on cached features).",
        "",
        f"One-time cost per (weights, size): features {cache_rates['features']:.1f} images/s, "
        f"bank {cache_rates['bank']:.1f} views/s.",
        "",
        "## Peak resident memory (one child process per path)",
        "",
        pd.DataFrame(memory).to_markdown(index=False) if memory else "Skipped (--no-memory).",
        "",
        f"## Projection: the paper's protocol ({work['runs']} runs, {work['cycles_per_run']} "
        f"cycles per AL run, pool {work['pool']}) at {args.size} px on this machine",
        "",
        "Every cycle and the baseline are assumed to run all their epochs (an upper bound), "
        "with the validation set scored after every epoch.",
        "",
        pd.DataFrame(proj).to_markdown(index=False),
        "",
    ]
    if args.size != 224:
        lines += [
            f"(Measured at {args.size} px; the paper uses 224 px: run with `--size 224` for "
            "its projection.)",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--pool", type=int, help="pool images (default 512 at <=96 px, else 128)")
    parser.add_argument("--test", type=int, help="test images (default pool / 2)")
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", default="tensorflow", choices=BACKENDS, help="Keras backend")
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument("--preload-mb", dest="preload_mb", type=float, default=1024)
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timings of each scoring phase (score_pool, test); median and spread reported",
    )
    parser.add_argument(
        "--train-repeats",
        dest="train_repeats",
        type=int,
        help="timed epochs per path (default --repeats at <= 96 px, else min(--repeats, 3))",
    )
    parser.add_argument("--jit", action="store_true", help="also time the top model with XLA")
    parser.add_argument("--no-memory", action="store_true", help="skip the child processes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.pool = args.pool or (512 if args.size <= 96 else 128)
    args.test = args.test or args.pool // 2
    if args.train_repeats is None:
        args.train_repeats = args.repeats if args.size <= 96 else min(args.repeats, 3)
    if args.repeats < 1 or args.train_repeats < 1:
        parser.error("--repeats and --train-repeats must be at least 1")
    if args.child:
        child(args)
        return

    select_backend(args.backend, args.threads)  # before Keras is imported
    import pandas as pd

    from alnsfw.model.features import compute_bank, compute_features

    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        files = {
            "keyframes": f"{tmp}/keyframes.h5",
            "features": f"{tmp}/features.h5",
            "bank": f"{tmp}/bank.h5",
            "head_features": f"{tmp}/head_features.h5",
            "head_bank": f"{tmp}/head_bank.h5",
        }
        make_data(Path(files["keyframes"]), args.pool + args.test, args.size)
        print(f"{args.size} px, {args.pool} pool + {args.test} test images", flush=True)
        cfg = config(args, "bank", True)
        stats = compute_features(files["keyframes"], files["features"], cfg)
        bank = compute_bank(files["keyframes"], files["bank"], cfg)
        cache_rates = {
            "features": stats["images"] / stats["seconds"],
            "bank": bank["images"] * bank["views"] / bank["seconds"],
        }
        print(f"  cache: {cache_rates['features']:.1f} images/s, bank {cache_rates['bank']:.1f}")
        head_cfg = config(args, "bank", True, False, "post_bn")
        compute_features(files["keyframes"], files["head_features"], head_cfg)
        compute_bank(files["keyframes"], files["head_bank"], head_cfg)
        plan = {"naive": list(PHASES), "online": list(PHASES), "head": list(PHASES)}
        plan["head:per-batch"] = list(PHASES)
        plan |= {"bank": ["train_epoch"], "none": ["train_epoch"]}
        if args.jit:
            plan["none+jit"] = list(PHASES)
        repeats = {"train_epoch": args.train_repeats, "score_pool": args.repeats}
        repeats["test"] = args.repeats
        variants = {name: Variant(args, files, name, args.train_repeats) for name in plan}
        raw = run_interleaved(variants, plan, repeats)
        del variants
        gc.collect()
        raw += [  # bank / none score exactly like online (top model on the cache)
            r | {"path": other}
            for r in list(raw)
            if r["path"] == "online" and r["phase"] != "train_epoch"
            for other in ("bank", "none")
        ]
        phases, ratios = summarise(raw)
        ratios += [
            r | {"path": "head vs head:per-batch"}
            for r in summarise(raw, reference="head:per-batch")[1]
            if r["path"] == "head"
        ]
        memory = (
            []
            if args.no_memory
            else measure_memory(
                args, files, ["naive", "naive:stream", "bank", "none", "none:stream"]
            )
        )
    proj = projection(phases, cache_rates, args.views)
    elapsed = time.perf_counter() - start
    tag = f"{args.size}px"
    pd.DataFrame(phases).to_csv(out / f"phases_{tag}.csv", index=False)
    raw_frame = pd.DataFrame(raw)
    raw_frame["images_per_s"] = (raw_frame["images"] / raw_frame["seconds"]).round(2)
    raw_frame["seconds"] = raw_frame["seconds"].round(4)
    raw_frame.to_csv(out / f"phases_raw_{tag}.csv", index=False)
    pd.DataFrame(ratios).to_csv(out / f"ratios_{tag}.csv", index=False)
    pd.DataFrame(memory).to_csv(out / f"memory_{tag}.csv", index=False)
    pd.DataFrame(proj).to_csv(out / f"projection_{tag}.csv", index=False)
    (out / f"summary_{tag}.md").write_text(
        summary(args, phases, ratios, memory, cache_rates, proj, elapsed)
    )
    print((out / f"summary_{tag}.md").read_text())
    print(f"done in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
