"""How much of the human-cost table is run-to-run noise (docs/human-cost.md).

The "within N points" row of the human-cost table is read on the fold-averaged curve of a few
runs (the demo: 2 folds x 3 seeds), so one run more or less can move it by several cycles. For
each setting directory written by benchmarks/human_cost.py and each strategy this prints:

- the decisions and images shown at the within-N-points point with all runs, and their range
  over the leave-one-run-out curves (one fold x seed run dropped, the same one from the AL runs
  and from full supervision; "not reached" counted when a variant never stays within);
- the accuracy at 100% labelled (mean ± sample std over runs), and the mean ± std over runs of
  the paired difference from the first setting given at each run's last cycle, and at the
  cycles with the same % labelled grid (read linearly), averaged over the grid.

Usage: PYTHONPATH=src .venv/bin/python benchmarks/human_cost_noise.py /tmp/human-cost/keyframe \
           /tmp/human-cost/shot ... [--within-points 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def load(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The AL cycles and full-supervision rows of one setting directory, and its setting name."""
    import yaml

    from alnsfw.report.human_cost import setting_name
    from alnsfw.report.runs import RunSpec, load_cycles, load_full

    specs = []
    for path in sorted((directory / "results/runs").glob("fold*/seed*/*/*.csv")):
        method = path.parent.name
        if path.name != ("metrics.csv" if method == "full" else "cycles.csv"):
            continue
        fold = int(path.parent.parent.parent.name.removeprefix("fold"))
        seed = int(path.parent.parent.name.removeprefix("seed"))
        specs.append(RunSpec(fold, seed, method, str(path)))
    if not specs:
        raise SystemExit(f"{directory}: no results/runs/fold*/seed*/*/cycles.csv; run it first")
    used = yaml.safe_load((directory / "results/tables/config_used.yaml").read_text())
    return load_cycles(specs), load_full(specs), setting_name(used["al"])


def within_point(
    cycles: pd.DataFrame, full: pd.DataFrame, strategy: str, points: float
) -> tuple[float, float]:
    """(decisions, images shown) where the fold-averaged curve stays within `points`; NaN if not."""
    from alnsfw.report.curves import stays_within_from
    from alnsfw.report.human_cost import cost_curves
    from alnsfw.report.tables import fold_averaged_full

    curve = cost_curves(cycles, [strategy], "")
    pct = stays_within_from(
        curve["pct_labelled"], curve["accuracy"], fold_averaged_full(full), points
    )
    if np.isnan(pct):
        return float("nan"), float("nan")
    at = [
        float(np.interp(pct, curve["pct_labelled"], curve[m]))
        for m in ("decisions", "images_shown")
    ]
    return at[0], at[1]


def fmt_range(values: list[float]) -> str:
    """'min-max' of the reached values, with how many variants did not reach."""
    reached = [v for v in values if not np.isnan(v)]
    missed = len(values) - len(reached)
    text = f"{min(reached):.0f}-{max(reached):.0f}" if reached else "-"
    return text + (f" ({missed} not reached)" if missed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--within-points", type=float, default=1.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    loaded = [load(d) for d in args.directories]
    base_cycles = loaded[0][0]
    rows = []
    for cycles, full, setting in loaded:
        for strategy in dict.fromkeys(cycles["strategy"]):
            runs = cycles[["fold", "seed"]].drop_duplicates().itertuples(index=False)
            decisions, images = within_point(cycles, full, strategy, args.within_points)
            loo_d, loo_i = [], []
            for fold, seed in runs:
                keep_c = ~((cycles["fold"] == fold) & (cycles["seed"] == seed))
                keep_f = ~((full["fold"] == fold) & (full["seed"] == seed))
                d, i = within_point(cycles[keep_c], full[keep_f], strategy, args.within_points)
                loo_d.append(d)
                loo_i.append(i)
            own = cycles[cycles["strategy"] == strategy]
            last = own.sort_values("cycle").groupby(["fold", "seed"]).tail(1)
            base = base_cycles[base_cycles["strategy"] == strategy]
            base_last = base.sort_values("cycle").groupby(["fold", "seed"]).tail(1)
            paired_last = last.merge(base_last, on=["fold", "seed"], suffixes=("", "_base"))
            diff_last = paired_last["accuracy"] - paired_last["accuracy_base"]
            grid_diffs = []
            for (fold, seed), run in own.groupby(["fold", "seed"]):
                ref = base[(base["fold"] == fold) & (base["seed"] == seed)]
                lo = max(run["pct_labelled"].min(), ref["pct_labelled"].min())
                hi = min(run["pct_labelled"].max(), ref["pct_labelled"].max())
                grid = np.linspace(lo, hi, 25)
                a = np.interp(grid, run["pct_labelled"], run["accuracy"])
                b = np.interp(grid, ref["pct_labelled"], ref["accuracy"])
                grid_diffs.append(float(np.mean(a - b)))
            rows.append(
                {
                    "setting": setting,
                    "strategy": strategy,
                    "decisions": "not reached" if np.isnan(decisions) else f"{decisions:.0f}",
                    "decisions, leave one run out": fmt_range(loo_d),
                    "images": "not reached" if np.isnan(images) else f"{images:.0f}",
                    "images, leave one run out": fmt_range(loo_i),
                    "accuracy at the last cycle": f"{last['accuracy'].mean():.2f} ± "
                    f"{last['accuracy'].std(ddof=1):.2f}",
                    "paired diff. at the last cycle": f"{diff_last.mean():+.2f} ± "
                    f"{diff_last.std(ddof=1):.2f}",
                    "paired diff. over the curve": f"{np.mean(grid_diffs):+.2f} ± "
                    f"{np.std(grid_diffs, ddof=1):.2f}",
                }
            )
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
