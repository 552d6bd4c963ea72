"""Human cost on the demo (docs/human-cost.md): six settings x {random, least confidence}.

Settings: al.unit keyframe | shot | video, each without and with CEAL pseudo-labels
(presets/human-cost.yaml, on top of config.yaml: 2 folds x 3 seeds). The first setting runs the
whole workflow in <out>/keyframe; every other one starts from a copy of it (file times and
Snakemake's metadata kept), so only the active-learning runs and the report rules, whose params
changed, run again: the data stage, feature cache and full supervision are shared.

Usage: PYTHONPATH=src .venv/bin/python benchmarks/human_cost.py --out /tmp/human-cost [--cores 1]
       [--only keyframe video-pl] [--configfile PRESET ...] [--config KEY=VALUE ...]
Writes <out>/compare/human_cost.{csv,md,png} (alnsfw.report.human_cost.compare).
On NPDI: --configfile presets/npdi-paper.yaml --config data='{root: /path/to/NPDI}' (the preset's
files go between config.yaml and presets/human-cost.yaml, so the latter's strategies win).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SETTINGS = {
    "keyframe": "{unit: keyframe}",
    "keyframe-pl": "{unit: keyframe, pseudo_labels: {enabled: true}}",
    "shot": "{unit: shot}",
    "shot-pl": "{unit: shot, pseudo_labels: {enabled: true}}",
    "video": "{unit: video}",
    "video-pl": "{unit: video, pseudo_labels: {enabled: true}}",
}


def run(
    work: Path, al: str, cores: int, configfiles: Sequence[Path] = (), config: Sequence[str] = ()
) -> float:
    """One workflow run of a setting in `work`; returns its wall seconds.

    `configfiles` (a preset such as presets/npdi-paper.yaml) go between config.yaml and
    presets/human-cost.yaml; `config` are further KEY=VALUE overrides (data.root on NPDI).
    """
    files = [ROOT / "config.yaml", *configfiles, ROOT / "presets/human-cost.yaml"]
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(work)]
    command += ["--configfile", *map(str, files)]
    command += ["--cores", str(cores), "--config", f"al={al}", *config]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=work)
    (work / "human_cost_run.log").write_text(done.stdout + done.stderr)
    if done.returncode:
        raise SystemExit(f"{work}: snakemake failed, see {work / 'human_cost_run.log'}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--only", nargs="*", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--within-points", type=float, default=1.0)
    parser.add_argument(
        "--configfile", nargs="*", type=Path, default=[], help="e.g. presets/npdi-paper.yaml"
    )
    parser.add_argument("--config", nargs="*", default=[], help="e.g. data='{root: /data/NPDI}'")
    args = parser.parse_args()
    for item in args.config:
        if "=" not in item or item.split("=", 1)[0].strip() == "al":
            parser.error(
                f"--config {item!r}: give KEY=VALUE with a key other than al (each setting sets "
                "al itself; put other al.* keys in a preset passed with --configfile)"
            )
    configfiles = [path.resolve() for path in args.configfile]
    for path in configfiles:
        if not path.is_file():
            parser.error(f"--configfile {path}: no such file")
    sys.path.insert(0, str(ROOT / "src"))
    from alnsfw.report.human_cost import compare

    args.out.mkdir(parents=True, exist_ok=True)
    first = args.out / args.only[0]
    done = []
    for name in args.only:
        work = args.out / name
        if not work.exists() and work != first:
            shutil.copytree(first, work, symlinks=True, ignore=shutil.ignore_patterns("locks"))
        work.mkdir(exist_ok=True)
        seconds = run(work, SETTINGS[name], args.cores, configfiles, args.config)
        print(f"{name}: {seconds:.0f} s", flush=True)
        done.append(work)
    table = compare(done, args.out / "compare", args.within_points)
    print((args.out / "compare" / "human_cost.md").read_text())
    print(f"{len(table)} rows: {args.out / 'compare'}")


if __name__ == "__main__":
    main()
