"""The GPU check: a slice of the paper protocol at paper scale, run with our own code on one GPU.

What it does, in one process tree (no Snakemake, no TensorFlow, no network):
1. data: presets/paper-scale-synthetic.yaml's dataset (800 videos, ~16,800 keyframes at 224 px)
   through the data stage's functions (alnsfw.data.stages: synthesize, keyframes per video in a
   process pool, merge, the fold-0/seed-0 split). The videos are rendered at 96x72 px instead of
   320x240 (keyframes are stored at 224 px either way): the GPU phases do not depend on it;
2. the feature cache and the augmentation bank (alnsfw.model.features), timed;
3. per mode (`online`: the paper's semantics, full model trained on augmented images, scoring
   from the cache; `bank`: top model on cached augmented views): one AL run alone, then N runs
   packed onto the GPU at once (the three strategies and the baseline of fold 0 / seed 0, more
   seeds when N > 4), each in its own process as the workflow runs them
   (alnsfw.al.jobs.active_learning_job / full_supervision_job), each limited to its share of the
   GPU memory (alnsfw.packing). A run stops at the first cycle that would start after
   --run-budget-s: the slice measures as many cycles as fit;
4. per-phase images/s (training incl. validation, scoring the pool, testing; steady state, the
   first call, which compiles, apart), per-run wall time, GPU memory (nvidia-smi, sampled), and
   the projection for the whole protocol (75 AL runs + 25 baselines, every epoch run: an upper
   bound) from the packed aggregate rates.

Writes to --out (default $OUT or results/gpu_slice): slice.jsonl (every measurement as it
happens), runs.csv, rates.csv, projection.csv, summary.md. `--dry-run` shrinks everything (16
videos at 32 px, 2 runs packed, CPU) to check the script end to end; its numbers mean nothing.

Usage: benchmarks/gpu_slice.sh [--dry-run] (sets up Keras from benchmarks/wheels if missing);
or KERAS_BACKEND=jax python benchmarks/gpu_slice.py --out DIR [--pack 8] [--modes online,bank].
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

import yaml  # noqa: E402
from paper_protocol import PAPER, protocol_images  # noqa: E402

PRESET = ROOT / "presets/paper-scale-synthetic.yaml"
STRATEGIES = ("random", "least_confidence", "entropy")
DRY = {  # --dry-run: the same code at a size that runs on 2 CPU cores in a few minutes
    "synthetic": {
        "videos": {"vPorn": 8, "vNonPornEasy": 4, "vNonPornDifficulty": 4},
        "shots_per_video": [3, 4],
        "frames_per_shot": 3,
        "frame_size": [48, 36],
    },
    "keyframes": {"size": 32},
    "model": {"input_size": 32, "head": {"dense": [16]}},
    "training": {"max_epochs": 1, "patience": 1, "bank_views": 2},
    "al": {"query_size": 8},
    "baseline": {"epochs": 1},
    "compute": {"predict_batch_size": 32},
}


# ----------------------------------------------------------------------------- configuration


def merge(dst: dict, src: dict) -> dict:
    """Deep-merge src into dst (in place) and return dst."""
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            merge(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)
    return dst


def slice_config(args: argparse.Namespace, work: Path) -> dict:
    """The preset over the schema's defaults, adapted to the slice (see the module docstring)."""
    from alnsfw.schema import load_schema, schema_defaults

    cfg = merge(schema_defaults(), yaml.safe_load(PRESET.read_text()))
    _null_defaults(cfg, load_schema())
    merge(
        cfg,
        {
            "data": {"root": str(work / "dataset")},
            "synthetic": {"frame_size": [96, 72]},
            # No ImageNet download on the device; speed does not depend on the weights.
            "model": {"weights": "he_normal"},
            "compute": {
                "backend": args.backend,
                "gpu": args.gpu,
                "threads": args.threads,
            },
        },
    )
    if args.dry_run:
        merge(cfg, DRY)
    return cfg


def _null_defaults(cfg: dict, node: dict) -> None:
    """Keys whose schema default is null (schema_defaults leaves them out; the workflow's
    validation fills them in, and the jobs read them)."""
    for name, child in node.get("properties", {}).items():
        if "default" in child and child["default"] is None:
            cfg.setdefault(name, None)
        elif isinstance(cfg.get(name), dict):
            _null_defaults(cfg[name], child)


def run_config(cfg: dict, mode: str, packed: int = 1) -> dict:
    """What the training rules pass a job (experiment.smk's params, with the runtime compute
    keys), for one augmentation mode and `packed` jobs sharing the GPU."""
    out = {k: copy.deepcopy(cfg[k]) for k in ("training", "model", "compute", "al", "baseline")}
    out["training"]["augment"] = mode
    out["compute"]["runs_per_gpu"] = packed
    return out


# ----------------------------------------------------------------------------- measurements


class Recorder:
    """slice.jsonl: one JSON line per measurement, written as it happens (a cut-off run keeps
    what it measured)."""

    def __init__(self, out: Path) -> None:
        self.path = out / "slice.jsonl"
        self.lock = threading.Lock()

    def __call__(self, **row: Any) -> dict:  # noqa: ANN401
        row = {"t": round(time.time(), 1), **row}
        line = json.dumps(row, default=str)
        print(line, flush=True)
        with self.lock, self.path.open("a") as f:
            f.write(line + "\n")
        return row


class GpuMemory:
    """Samples nvidia-smi every `every` seconds: peak memory used on the GPU, and per process."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.available = shutil.which("nvidia-smi") is not None
        self.peak_total_mb = 0.0
        self.total_mb = None
        self.peak_by_pid: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> GpuMemory:
        if self.available:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def reset(self) -> None:
        self.peak_total_mb = 0.0
        self.peak_by_pid = {}

    def _query(self, what: str) -> list[list[str]]:
        out = subprocess.run(
            ["nvidia-smi", f"--query-{what}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                gpu = self._query("gpu=memory.used,memory.total")
                if gpu:
                    self.peak_total_mb = max(self.peak_total_mb, float(gpu[0][0]))
                    self.total_mb = float(gpu[0][1])
                for pid, used in self._query("compute-apps=pid,used_memory"):
                    self.peak_by_pid[int(pid)] = max(self.peak_by_pid.get(int(pid), 0), float(used))
            except (subprocess.SubprocessError, ValueError, IndexError):
                pass
            self._stop.wait(self.every)


def devices(args: argparse.Namespace) -> dict:
    """Backend, versions and the devices it sees, from a fresh process (Keras picks the backend
    at its first import)."""
    code = (
        "import json, keras, jax; print(json.dumps({'keras': keras.__version__, "
        "'backend': keras.backend.backend(), 'jax': jax.__version__, "
        "'devices': [str(d) for d in jax.devices()]}))"
    )
    env = child_env(args)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"cannot start Keras on {args.backend}: {done.stderr[-2000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    if args.gpu and not any("cuda" in d.lower() or "gpu" in d.lower() for d in info["devices"]):
        raise SystemExit(f"--gpu, but JAX sees no GPU: {info['devices']} (install jax[cuda12])")
    return info


def child_env(args: argparse.Namespace) -> dict:
    env = dict(os.environ, KERAS_BACKEND=args.backend, PYTHONPATH=os.pathsep.join(sys.path))
    # As the workflow does (common.smk): jobs share XLA's compile cache, so the packed runs reuse
    # what the run alone compiled (same model, same shapes).
    work = Path(args.work) if args.work else Path(args.out) / "work"  # removed at the end
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(work / "xla-cache"))
    if not args.gpu:
        env["JAX_PLATFORMS"] = "cpu"
    return env


# ----------------------------------------------------------------------------- data stage


def _video(job: tuple) -> tuple[str, tuple[int, ...], int, float, float]:
    """One video: render and write it (alnsfw.data.synthetic), then its keyframe shard
    (alnsfw.data.stages.extract_keyframes), as synthesize_dataset and the extract_keyframes rule
    do; returns its shot labels, keyframe count and the two timings."""
    from alnsfw.data import stages
    from alnsfw.data.synthetic import render_video, write_video

    name, video_class, source, inputs, out, synthetic, keyframes = job
    start = time.perf_counter()
    video = render_video(name, video_class, synthetic)
    write_video(inputs[0], video.frames, synthetic["fps"])
    mid = time.perf_counter()
    n = stages.extract_keyframes(name, video_class, source, inputs, out, keyframes)
    return name, video.shot_labels, n, mid - start, time.perf_counter() - mid


def write_labels_and_folds(root: Path, cfg: dict, shot_labels: dict[str, tuple[int, ...]]) -> None:
    """frame_labels.csv and the fold lists exactly as alnsfw.data.synthetic.synthesize_dataset
    writes them (the dry-run test compares the two)."""
    from alnsfw.data.layout import fold_list_paths, natural_key, synthetic_names
    from alnsfw.data.synthetic import assign_folds
    from alnsfw.io import write_text

    names = synthetic_names(cfg["synthetic"]["videos"])
    rows = ["video,frame,label"]
    for name, _ in names:
        rows += [f"{name},{i},{lab}" for i, lab in enumerate(shot_labels[name], start=1)]
    write_text(root / "frame_labels.csv", "\n".join(rows) + "\n")
    n_folds, data = cfg["splits"]["n_folds"], cfg["data"]
    tests = assign_folds(names, n_folds, cfg["synthetic"]["seed"])
    lists = fold_list_paths(root, data["test_list"], data["train_list"], n_folds)
    for fold, (test_path, train_path) in lists.items():
        train = sorted((n for f, v in tests.items() if f != fold for n in v), key=natural_key)
        write_text(test_path, "".join(f"{n}\n" for n in tests[fold]))
        write_text(train_path, "".join(f"{n}\n" for n in train))


def build_data(cfg: dict, work: Path, record: Recorder, workers: int) -> dict[str, str]:
    """The data stage at paper scale: each video rendered, written and cut into keyframes by
    the library's functions in a process pool (synthesize_dataset itself is serial: ~0.3 s a
    video, minutes for 800), then merge_keyframes and make_splits as the rules call them."""
    from alnsfw.data import stages
    from alnsfw.data.layout import planned_videos

    data, root = cfg["data"], Path(cfg["data"]["root"])
    videos = planned_videos(cfg)
    shards = [work / "shards" / f"{v.name}.h5" for v in videos]
    shards[0].parent.mkdir(parents=True, exist_ok=True)
    for v in videos:
        Path(v.inputs[0]).parent.mkdir(parents=True, exist_ok=True)
    jobs = [
        (
            v.name,
            v.video_class,
            v.source,
            list(v.inputs),
            str(s),
            cfg["synthetic"],
            cfg["keyframes"],
        )
        for v, s in zip(videos, shards)
    ]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        done = pool.map(_video, jobs, chunksize=4)
    video_s = time.perf_counter() - start
    write_labels_and_folds(root, cfg, {name: labels for name, labels, *_ in done})
    paths = {
        "keyframes": str(work / "keyframes.h5"),
        "manifest": str(work / "manifest.csv"),
        "split": str(work / "split_fold0_seed0.json"),
    }
    start = time.perf_counter()
    stages.merge_keyframes(
        [str(s) for s in shards],
        paths["keyframes"],
        paths["manifest"],
        str(root / "frame_labels.csv"),
        data["on_missing"],
    )
    merge_s = time.perf_counter() - start
    split = stages.make_splits(paths["manifest"], paths["split"], 0, 0, data, cfg["splits"])
    shutil.rmtree(work / "shards")
    record(
        what="data",
        videos=len(videos),
        keyframes=sum(d[2] for d in done),
        size=cfg["keyframes"]["size"],
        counts=split["counts"],
        workers=workers,
        videos_and_keyframes_s=round(video_s, 1),
        cpu_synthesize_s=round(sum(d[3] for d in done), 1),
        cpu_keyframes_s=round(sum(d[4] for d in done), 1),
        merge_s=round(merge_s, 1),
        keyframes_mb=round(Path(paths["keyframes"]).stat().st_size / 2**20, 1),
    )
    return paths


# ----------------------------------------------------------------------------- model jobs


def worker_main(spec_path: str) -> None:
    """One job in its own process (as Snakemake runs it): features, bank, an AL run, a baseline.

    Writes <spec>.result.json: wall time, and every fit / predict_proba call with its rows and
    seconds (the per-phase rates are computed from them).
    """
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    spec = json.loads(Path(spec_path).read_text())
    from alnsfw.packing import apply_gpu_share

    applied = apply_gpu_share(spec["config"]["compute"])
    calls: list[dict] = []
    started = time.perf_counter()
    result: dict[str, Any] = {"env": applied, "pid": os.getpid()}
    kind = spec["kind"]
    if kind in ("features", "bank"):
        from alnsfw.model.features import compute_bank, compute_features

        fn = compute_features if kind == "features" else compute_bank
        fn(keyframes_h5=spec["keyframes"], out_h5=spec["out"], cfg=spec["config"])
    else:
        from alnsfw.al import jobs

        deadline = time.monotonic() + spec["budget_s"]
        test_rows = len(json.loads(Path(spec["split"]).read_text())["test"])

        def build(config, keyframes, features, bank, seed):  # noqa: ANN001, ANN202
            inner = jobs.build_network_learner(config, keyframes, features, bank, seed)
            return Budgeted(inner, deadline, calls, test_rows)

        out = Path(spec["run_dir"])
        common = {
            "keyframes": spec["keyframes"],
            "split": spec["split"],
            "config": spec["config"],
            "fold": 0,
            "seed": spec["seed"],
            "features": spec["features"],
            "bank": spec.get("bank"),
            "build": build,
        }
        try:
            if kind == "full":
                names = ("metrics", "history", "predictions")
                jobs.full_supervision_job(
                    outputs={n: str(out / f"{n}.csv") for n in names}, **common
                )
            else:
                names = ("cycles", "queries", "predictions")
                jobs.active_learning_job(
                    outputs={n: str(out / f"{n}.csv") for n in names}, strategy=kind, **common
                )
            result["finished"] = True
        except OutOfBudget:
            result["finished"] = False
    result["wall_s"] = time.perf_counter() - started
    result["calls"] = calls
    Path(spec_path + ".result.json").write_text(json.dumps(result))


class OutOfBudget(Exception):
    """Raised at the start of a cycle that would begin after the run's time budget."""


class Budgeted:
    """A learner that records each call's rows and seconds, and refuses to start training after
    the deadline (the run then ends after its last whole cycle)."""

    def __init__(self, inner: Any, deadline: float, calls: list, n_test: int) -> None:  # noqa: ANN401
        self.inner, self.deadline, self.calls, self.n_test = inner, deadline, calls, n_test

    def fit(self, train_rows, val_rows, *args, **kwargs):  # noqa: ANN001, ANN201
        if self.calls and time.monotonic() > self.deadline:
            raise OutOfBudget
        start = time.perf_counter()
        fit = self.inner.fit(train_rows, val_rows, *args, **kwargs)
        seconds = time.perf_counter() - start
        epochs = int(fit["epochs"]) if isinstance(fit, dict) and "epochs" in fit else 1
        self.calls.append(
            {
                "phase": "train",
                "rows": len(train_rows),
                "val_rows": len(val_rows),
                "epochs": epochs,
                "images": (len(train_rows) + len(val_rows)) * epochs,
                "train_images": len(train_rows) * epochs,
                "seconds": seconds,
            }
        )
        return fit

    def predict_proba(self, rows):  # noqa: ANN001, ANN201
        start = time.perf_counter()
        out = self.inner.predict_proba(rows)
        phase = "test" if len(rows) == self.n_test else "score"
        seconds = time.perf_counter() - start
        self.calls.append(
            {"phase": phase, "rows": len(rows), "images": len(rows), "seconds": seconds}
        )
        return out

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - reset, save, load, ...
        return getattr(self.inner, name)


def launch(specs: list[dict], work: Path, args: argparse.Namespace) -> list[dict]:
    """Start one process per spec at once, wait for all; return their results."""
    procs = []
    for spec in specs:
        path = work / "specs" / f"{spec['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(spec))
        log = open(work / "specs" / f"{spec['name']}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(args),
        )
        procs.append((spec, path, proc, log))
    results = []
    for spec, path, proc, log in procs:
        rc = proc.wait()
        log.close()
        result_path = Path(str(path) + ".result.json")
        if rc != 0 or not result_path.exists():
            tail = Path(log.name).read_text()[-3000:]
            raise SystemExit(f"job {spec['name']} failed (exit {rc}):\n{tail}")
        results.append({"spec": spec, **json.loads(result_path.read_text())})
    return results


def phase_rates(calls: list[dict]) -> dict[str, float | None]:
    """images/s per phase: steady state (the first call of a phase, which compiles, left out
    when there are more) and first call (with compilation)."""
    out: dict[str, float | None] = {}
    for phase in ("train", "score", "test"):
        mine = [c for c in calls if c["phase"] == phase]
        steady = mine[1:] if len(mine) > 1 else mine
        seconds = sum(c["seconds"] for c in steady)
        out[f"{phase}_img_s"] = sum(c["images"] for c in steady) / seconds if seconds else None
        out[f"{phase}_first_s"] = mine[0]["seconds"] if mine else None
        out[f"{phase}_calls"] = len(mine)
    return out


# ----------------------------------------------------------------------------- protocol


def project(
    protocol: dict, rates: dict, cache_s: float, n_keyframes_paper: int, n_keyframes_here: int
) -> dict:
    """GPU-hours of the whole protocol at the aggregate (packed) rates of one mode.

    Training time = (train + val) passes / training-phase rate (which includes the per-epoch
    validation); scoring and testing at their rates; plus the one-time cache, scaled from this
    dataset's size to NPDI's.
    """
    h = 3600.0
    if not rates.get("train_img_s"):
        return {"hours": None}
    train_h = (protocol["train"] + protocol["val"]) / rates["train_img_s"] / h
    score_rate = rates.get("score_img_s") or rates.get("test_img_s")
    test_rate = rates.get("test_img_s") or score_rate
    score_h = protocol["score"] / score_rate / h if score_rate else math.nan
    test_h = protocol["test"] / test_rate / h if test_rate else math.nan
    cache_h = cache_s * n_keyframes_paper / max(1, n_keyframes_here) / h
    return {
        "train_h": train_h,
        "score_h": score_h,
        "test_h": test_h,
        "cache_h": cache_h,
        "hours": train_h + score_h + test_h + cache_h,
    }


# ----------------------------------------------------------------------------- main


def run_specs(
    mode: str, n: int, cfg: dict, paths: dict, args: argparse.Namespace, work: Path, tag: str
) -> list[dict]:
    """N runs of fold 0: the three strategies and the baseline, then further seeds."""
    kinds = [*STRATEGIES, "full"]
    specs = []
    for i in range(n):
        kind, seed = kinds[i % len(kinds)], i // len(kinds)
        if n == 1:
            kind = args.solo
        name = f"{mode}-{tag}-{kind}-s{seed}"
        specs.append(
            {
                "name": name,
                "kind": kind,
                "seed": seed,
                "config": run_config(cfg, mode, n),
                "keyframes": paths["keyframes"],
                "split": paths["split"],
                "features": paths["features"],
                "bank": paths["bank"] if mode == "bank" else None,
                "run_dir": str(work / "runs" / name),
                "budget_s": args.run_budget_s,
            }
        )
    return specs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU: checks the script")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "results/gpu_slice"))
    ap.add_argument("--work", help="scratch folder (default: <out>/work, removed at the end)")
    ap.add_argument("--backend", default="jax", choices=["jax", "tensorflow"])
    ap.add_argument(
        "--gpu",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use the GPU (default: yes unless --dry-run)",
    )
    ap.add_argument("--pack", type=int, default=None, help="runs packed on the GPU (default 8)")
    ap.add_argument("--modes", default="online,bank")
    ap.add_argument("--solo", default="entropy", help="strategy of the run measured alone")
    ap.add_argument(
        "--run-budget-s",
        type=float,
        default=None,
        help="no AL cycle starts after this many seconds of a run (default 30)",
    )
    ap.add_argument("--threads", type=int, default=2, help="CPU threads per job")
    ap.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="processes for keyframe extraction"
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = ap.parse_args()
    if args.worker:
        worker_main(args.worker)
        return
    if args.gpu is None:
        args.gpu = not args.dry_run
    if args.pack is None:
        args.pack = 2 if args.dry_run else 8
    if args.run_budget_s is None:
        args.run_budget_s = 5.0 if args.dry_run else 30.0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    record = Recorder(out)
    started = time.perf_counter()
    memory = GpuMemory().start()
    info = devices(args)
    record(
        what="env",
        dry_run=args.dry_run,
        python=platform.python_version(),
        host=platform.node(),
        cpus=os.cpu_count(),
        pack=args.pack,
        run_budget_s=args.run_budget_s,
        xla_flags=os.environ.get("XLA_FLAGS", ""),
        gpu_total_mb=memory.total_mb,
        **info,
    )
    cfg = slice_config(args, work)
    paths = build_data(cfg, work, record, args.workers)
    counts = json.loads(Path(paths["split"]).read_text())["counts"]
    n_here = sum(counts[k]["total"] for k in ("pool", "val", "test"))

    cache_s = {}
    for kind in ("features", "bank"):
        memory.reset()
        name = kind
        spec = {
            "name": name,
            "kind": kind,
            "config": run_config(cfg, "bank"),
            "keyframes": paths["keyframes"],
            "out": str(work / f"{kind}.h5"),
        }
        (res,) = launch([spec], work, args)
        paths[kind] = spec["out"]
        views = cfg["training"]["bank_views"] if kind == "bank" else 1
        cache_s[kind] = res["wall_s"]
        record(
            what=kind,
            images=n_here * views,
            wall_s=round(res["wall_s"], 1),
            img_s=round(n_here * views / res["wall_s"], 1),
            gpu_peak_mb=memory.peak_total_mb or None,
            disk_mb=round(Path(spec["out"]).stat().st_size / 2**20, 1),
        )

    protocol = protocol_images()  # the paper protocol, also in a dry run (only rates shrink)
    record(what="protocol", **{k: v for k, v in protocol.items() if not isinstance(v, dict)})
    rows, rate_rows, projections = [], [], []
    for mode in args.modes.split(","):
        for tag, n in (("solo", 1), (f"pack{args.pack}", args.pack)):
            memory.reset()
            t0 = time.perf_counter()
            results = launch(run_specs(mode, n, cfg, paths, args, work, tag), work, args)
            wall = time.perf_counter() - t0
            per_phase: dict[str, list[float]] = {}
            for res in results:
                rates = phase_rates(res["calls"])
                cycles = sum(1 for c in res["calls"] if c["phase"] == "train")
                row = {
                    "mode": mode,
                    "packed": n,
                    "run": res["spec"]["name"],
                    "kind": res["spec"]["kind"],
                    "wall_s": round(res["wall_s"], 1),
                    "cycles": cycles,
                    "finished": res["finished"],
                    "gpu_peak_mb": memory.peak_by_pid.get(res["pid"]),
                    **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in rates.items()},
                }
                rows.append(row)
                record(what="run", **row)
                for phase in ("train", "score", "test"):
                    if rates[f"{phase}_img_s"]:
                        per_phase.setdefault(f"{phase}_img_s", []).append(rates[f"{phase}_img_s"])
            # Aggregate = mean per-process rate x N: all N processes run each phase in the
            # protocol, though in the slice `random` never scores (it needs no model output).
            agg = {k: n * sum(v) / len(v) for k, v in per_phase.items()}
            rate_row = {
                "mode": mode,
                "packed": n,
                "wall_s": round(wall, 1),
                "gpu_peak_mb": memory.peak_total_mb or None,
                **{k: round(v, 1) for k, v in agg.items()},
            }
            rate_rows.append(rate_row)
            record(what="aggregate", **rate_row)
            once = cache_s["features"] + (cache_s["bank"] if mode == "bank" else 0.0)
            proj = project(protocol, agg, once, PAPER["keyframes"], n_here)
            projections.append({"mode": mode, "packed": n, **proj})
            record(what="projection", mode=mode, packed=n, **proj)
    memory.stop()
    write_tables(out, rows, rate_rows, projections, protocol, args, time.perf_counter() - started)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def md_table(df: Any) -> str:  # noqa: ANN401
    """A pandas DataFrame as a Markdown table (tabulate may be missing on the device)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = [
        "| " + " | ".join("" if v is None else str(v) for v in row) + " |"
        for row in df.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body])


def write_tables(
    out: Path,
    rows: list,
    rates: list,
    projections: list,
    protocol: dict,
    args: argparse.Namespace,
    elapsed: float,
) -> None:
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "runs.csv", index=False)
    pd.DataFrame(rates).to_csv(out / "rates.csv", index=False)
    proj = pd.DataFrame(projections)
    proj.to_csv(out / "projection.csv", index=False)
    lines = [
        "# GPU slice"
        + (" (DRY RUN: tiny sizes on CPU, numbers mean nothing)" if args.dry_run else ""),
        "",
        f"Whole slice: {elapsed / 60:.1f} min. Protocol: {protocol['al_runs']} AL runs x "
        f"{protocol['cycles_per_run']} cycles + {protocol['baselines']} baselines; image passes "
        f"train {protocol['train']:,.0f}, validation {protocol['val']:,.0f}, scoring "
        f"{protocol['score']:,.0f}, test {protocol['test']:,.0f} (every epoch run: upper bound).",
        "",
        "## Aggregate images/s (N x the mean per-process rate while packed, steady state)",
        "",
        md_table(pd.DataFrame(rates)),
        "",
        "## Projection for the whole protocol (GPU-hours)",
        "",
        md_table(proj.round(3)),
        "",
        "## Runs",
        "",
        md_table(pd.DataFrame(rows)),
        "",
    ]
    (out / "summary.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
