"""Deploy benchmark (not a test): scoring throughput of .keras on TensorFlow, ONNX Runtime and
NudeNet's ONNX detector on the same frames; start-up to first verdict; `alnsfw serve` under load.

All in one run, each measurement in its own process, on --threads cores (default 2):
1. prepare: a 224 px network of this project (He-normal trunk: speed does not depend on the
   weights) saved as .keras and exported as .onnx the way rule export_model does, and the frames
   of tests/data/predict/bbb_clip.mp4 (real encoded video) repeated to --frames frames;
2. throughput: forward passes only (batch --batch), median of --repeats, for TensorFlow
   (Keras' predict_on_batch), ONNX Runtime on our .onnx, and ONNX Runtime on NudeNet 3.4.2's
   320n.onnx (its YOLO detector at 320 px, the model its wheel ships), each fed its own
   preprocessing of the same frames (prepared before timing);
3. start-up to first verdict: wall time of `alnsfw predict` on one image, .keras in the
   workflow's venv vs .onnx in the light venv (--light-python, `pip install '.[predict]'`);
4. load: `alnsfw serve` (light venv if given) on the .onnx, --clients concurrent httpx clients
   sending --requests requests: 70% images, 10% videos (every:10 frames), 20% bad bodies
   (text, truncated PNG, oversized); requests/s, p50/p99 latency per kind, unexpected
   statuses, and the server's resident memory sampled through the run.

Usage: .venv/bin/python benchmarks/bench_deploy.py --out results/bench/deploy \
           [--light-python /tmp/light/bin/python] [--threads 2]
Writes OUT/deploy.json and OUT/deploy.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "predict" / "bbb_clip.mp4"
SIZE = 224


def prepare(out: Path, n_frames: int) -> None:
    """The 224 px model (.keras, .onnx, JSON) and the benchmark frames (frames.npz)."""
    import cv2
    import yaml
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "presets" / "smoke.yaml").read_text())
    config["model"]["input_size"] = SIZE
    config["keyframes"]["size"] = SIZE
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    from alnsfw.model import backend

    backend.prepare(config, seed=0)
    from alnsfw.data.keyframes import fit_square
    from alnsfw.model.network import build_network
    from alnsfw.predict.export import inference_model

    model = inference_model(build_network(config, seed=0, augment=False))
    model.save(out / "m.keras")
    model(np.zeros((1, SIZE, SIZE, 3), np.float32))
    model.export(str(out / "m.onnx"), format="onnx", verbose=False)
    meta = {
        "format": "alnsfw-model/1",
        "input": {"size": SIZE, "resize": "pad"},
        "classes": ["non_porn", "porn"],
        "video": {"aggregation": "mean", "threshold": 0.5},
        "keyframes": dict(config["keyframes"]),
        "source_run": {"fold": None, "seed": None, "method": "benchmark (untrained)"},
    }
    (out / "m.json").write_text(json.dumps(meta, default=str))
    capture = cv2.VideoCapture(str(CLIP))
    raw = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        raw.append(frame)
    capture.release()
    raw = [raw[i % len(raw)] for i in range(n_frames)]
    ours = np.stack([fit_square(cv2.cvtColor(f, cv2.COLOR_BGR2RGB), SIZE, "pad") for f in raw])
    np.savez(out / "frames.npz", ours=ours, raw=np.stack(raw))
    cv2.imwrite(str(out / "frame.png"), raw[0])


def throughput(out: Path, engine: str, threads: int, batch: int, repeats: int) -> dict:
    """Frames per second of one engine's forward passes (median of repeats)."""
    data = np.load(out / "frames.npz")
    if engine == "keras":
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        from alnsfw.predict.runtime import KerasModel

        model = KerasModel(out / "m.keras")
        x = data["ours"].astype(np.float32)
        run = model.predict_on_batch
    elif engine == "onnx":
        from alnsfw.predict.runtime import OnnxModel

        model = OnnxModel(out / "m.onnx", threads)
        x = data["ours"].astype(np.float32)
        run = model.predict_on_batch
    else:  # NudeNet's own detector, with its own preprocessing (done before timing)
        import nudenet
        import onnxruntime as ort
        from nudenet.nudenet import _read_image

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        path = Path(nudenet.__file__).parent / "320n.onnx"
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        x = np.vstack([_read_image(f, 320)[0] for f in data["raw"]]).astype(np.float32)

        def run(b: np.ndarray) -> object:
            return session.run(None, {name: b})

    n = len(x)
    run(x[:batch])  # warm-up (graph building, allocations)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, n, batch):
            run(x[i : i + batch])
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"engine": engine, "frames": n, "batch": batch, "times_s": times, "fps": n / median}


def startup(out: Path, python: str, model: str, repeats: int, threads: int) -> dict:
    """Wall time of `alnsfw predict --model MODEL frame.png`, a fresh process each time."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["ALNSFW_THREADS"] = str(threads)
    cmd = [python, "-m", "alnsfw.cli", "predict", "--model", str(out / model), "--no-progress"]
    cmd += ["--out", str(out / f"startup-{model}"), str(out / "frame.png")]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"python": python, "model": model, "times_s": times, "median_s": median}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(out: Path, python: str, clients: int, requests: int, threads: int) -> dict:
    """`alnsfw serve` under `clients` concurrent clients sending `requests` requests."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    max_bytes = 2_000_000
    cmd = [python, "-m", "alnsfw.cli", "serve", "--model", str(out / "m.onnx"), "--port"]
    cmd += [str(port), "--threads", str(threads), "--max-bytes", str(max_bytes)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    image = (out / "frame.png").read_bytes()
    video = CLIP.read_bytes()
    bodies = {
        "image": (image, "", 200),
        "video": (video, "?frames=every:10", 200),
        "bad:text": (b"not an image at all", "", 415),
        "bad:truncated": (image[: len(image) // 3], "", 415),
        "bad:oversized": (b"\0" * (max_bytes + 1), "", 413),
    }
    kinds = ["image"] * 70 + ["video"] * 10 + ["bad:text"] * 7 + ["bad:truncated"] * 7
    kinds += ["bad:oversized"] * 6
    rng = np.random.default_rng(0)
    plan = [kinds[i] for i in rng.integers(0, len(kinds), requests)]
    results: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    cursor = iter(range(requests))
    memory: list[tuple[float, float]] = []
    done = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=120) as http:
            while True:
                with lock:
                    i = next(cursor, None)
                if i is None:
                    return
                body, query, _ = bodies[plan[i]]
                start = time.perf_counter()
                try:
                    status = http.post(f"{url}/predict{query}", content=body).status_code
                except httpx.TransportError:
                    status = -1
                with lock:
                    results.append((plan[i], time.perf_counter() - start, status))

    def sample() -> None:
        while not done.is_set():
            memory.append((len(results), _rss_mb(server.pid)))
            time.sleep(0.5)

    rss_start = _rss_mb(server.pid)
    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    alive = server.poll() is None and httpx.get(f"{url}/health").status_code == 200
    server.terminate()
    server.wait(timeout=30)
    by_kind = {}
    for kind in sorted(set(plan)):
        lat = np.array([t for k, t, _ in results if k == kind])
        by_kind[kind] = {
            "n": int(len(lat)),
            "p50_ms": float(np.percentile(lat, 50) * 1000),
            "p99_ms": float(np.percentile(lat, 99) * 1000),
        }
    unexpected = [(k, s) for k, _, s in results if s != bodies[k][2]]
    after_100 = [m for n, m in memory if n >= 100]
    lat = np.array([t for _, t, _ in results])
    return {
        "clients": clients,
        "requests": len(results),
        "wall_s": wall,
        "requests_per_s": len(results) / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1000),
        "p99_ms": float(np.percentile(lat, 99) * 1000),
        "by_kind": by_kind,
        "unexpected_statuses": len(unexpected),
        "unexpected_examples": unexpected[:5],
        "rss_mb": {
            "start": rss_start,
            "after_100_requests": after_100[0] if after_100 else float("nan"),
            "end": memory[-1][1] if memory else float("nan"),
            "max": max(m for _, m in memory) if memory else float("nan"),
        },
        "alive_after": alive,
    }


def in_subprocess(args: argparse.Namespace, step: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--out", str(args.out), "--threads", str(args.threads)]
    cmd += ["--batch", str(args.batch), "--repeats", str(args.repeats), "--step", *step]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(res: dict) -> str:
    t = {r["engine"]: r for r in res["throughput"]}
    base = t["keras"]["fps"]
    lines = [
        "# Deploy benchmark",
        "",
        f"`benchmarks/bench_deploy.py`, {res['threads']} threads, {res['date']}. "
        "The machine was shared with other jobs: absolute numbers are rough, ratios within "
        "one run are the result.",
        "",
        f"## Throughput ({t['keras']['frames']} frames of a real clip, batch "
        f"{t['keras']['batch']}, forward pass only, median of {len(t['keras']['times_s'])})",
        "",
        "| engine | model | frames/s | x TensorFlow | s per minute of video at 1 frame/s "
        "| at every frame (25 fps) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    names = {
        "keras": ("`.keras` on TensorFlow", f"ours, ResNet50V2 {SIZE} px"),
        "onnx": ("ONNX Runtime", f"ours, `.onnx`, {SIZE} px"),
        "nudenet": ("ONNX Runtime", "NudeNet 3.4.2 `320n.onnx` detector, 320 px"),
    }
    for key in ("keras", "onnx", "nudenet"):
        fps = t[key]["fps"]
        lines.append(
            f"| {names[key][0]} | {names[key][1]} | {fps:.1f} | {fps / base:.2f} "
            f"| {60 / fps:.1f} | {1500 / fps:.0f} |"
        )
    s = {r["model"]: r for r in res["startup"]}
    lines += [
        "",
        "## Start-up to first verdict (`alnsfw predict` on one image, fresh process)",
        "",
        "| install | model | median s | runs |",
        "|---|---|---:|---|",
    ]
    for model, label in (("m.keras", "workflow venv (TensorFlow)"), ("m.onnx", "light venv")):
        if model in s:
            r = s[model]
            runs = ", ".join(f"{x:.2f}" for x in r["times_s"])
            lines.append(f"| {label} | `{model}` | {r['median_s']:.2f} | {runs} |")
    if "m.keras" in s and "m.onnx" in s:
        ratio = s["m.keras"]["median_s"] / s["m.onnx"]["median_s"]
        lines.append(f"\n.onnx in the light venv starts {ratio:.1f}x faster.")
    ld = res["load"]
    lines += [
        "",
        f"## `alnsfw serve` under load ({ld['clients']} clients, {ld['requests']} requests)",
        "",
        f"{ld['requests_per_s']:.1f} requests/s over {ld['wall_s']:.0f} s; p50 "
        f"{ld['p50_ms']:.0f} ms, p99 {ld['p99_ms']:.0f} ms; unexpected statuses: "
        f"{ld['unexpected_statuses']}; server alive after: {ld['alive_after']}; resident memory "
        f"(MB) start {ld['rss_mb']['start']:.0f}, after 100 requests "
        f"{ld['rss_mb']['after_100_requests']:.0f}, end {ld['rss_mb']['end']:.0f}, max "
        f"{ld['rss_mb']['max']:.0f}.",
        "",
        "| kind | n | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
    ]
    for kind, r in ld["by_kind"].items():
        lines.append(f"| {kind} | {r['n']} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench/deploy"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--light-python", help="python of a venv with only alnsfw[predict]")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.step:
        engine = args.step[1] if len(args.step) > 1 else ""
        result = throughput(args.out, engine, args.threads, args.batch, args.repeats)
        print(json.dumps(result))
        return
    print("prepare", flush=True)
    prepare(args.out, args.frames)
    res = {"threads": args.threads, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    res["throughput"] = []
    for engine in ("keras", "onnx", "nudenet"):
        print("throughput", engine, flush=True)
        res["throughput"].append(in_subprocess(args, ["throughput", engine]))
    print("startup", flush=True)
    light = args.light_python or sys.executable
    res["startup"] = [
        startup(args.out, sys.executable, "m.keras", args.repeats, args.threads),
        startup(args.out, light, "m.onnx", args.repeats, args.threads),
    ]
    print("load", flush=True)
    res["load"] = load(args.out, light, args.clients, args.requests, args.threads)
    (args.out / "deploy.json").write_text(json.dumps(res, indent=1))
    (args.out / "deploy.md").write_text(report(res))
    print(report(res))


if __name__ == "__main__":
    main()
