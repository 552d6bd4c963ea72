"""`make bench`: the phase benchmark and the whole-AL-run benchmark, one summary.md.

Each benchmark runs in its own process (fresh TF, honest peak memory). The AL-run benchmark needs
the workflow's keyframes and one split; they are made with Snakemake first if missing (the data
stage only, about a minute on 2 cores).

Usage: .venv/bin/python benchmarks/run_all.py --out results/bench [--size 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYFRAMES = "results/keyframes/keyframes.h5"
SPLIT = "results/splits/fold0/seed0.json"


def run(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/bench")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    out = Path(args.out)
    py = sys.executable
    run([py, str(HERE / "bench_phases.py"), f"--size={args.size}", f"--out={out}",
         f"--threads={args.threads}"])  # fmt: skip
    if not (Path(KEYFRAMES).is_file() and Path(SPLIT).is_file()):
        snakemake = str(Path(py).with_name("snakemake"))
        run([snakemake, f"--cores={args.threads}", KEYFRAMES, SPLIT])
    run([py, str(HERE / "bench_al_run.py"), f"--out={out}", f"--threads={args.threads}"])
    parts = [
        (out / f"summary_{args.size}px.md").read_text(),
        (out / "summary_al_run.md").read_text(),
    ]
    elapsed = time.perf_counter() - start
    header = (
        "# Speed benchmarks\n\nCommand: `make bench` (= `.venv/bin/python benchmarks/run_all.py "
        f"--out {out}`), {elapsed / 60:.1f} minutes. CSVs beside this file.\n\n"
    )
    demoted = [
        "\n".join("#" + x if x.startswith("#") else x for x in p.splitlines()) for p in parts
    ]
    (out / "summary.md").write_text(header + "\n\n".join(demoted) + "\n")
    print(f"wrote {out / 'summary.md'} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
