"""The Snakemake job grid of the experiment: one job per fold x seed x strategy (or per fold x
seed with compute.batch_runs), one baseline each.

A dry run of the real Snakefile on presets/smoke.yaml widened to 2 folds x 2 seeds x 2 strategies,
in a temporary working directory (nothing is computed).
"""

import re
import subprocess
import sys
from itertools import product
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
EXTRA = """
splits: {folds: [0, 1], seeds: [0, 3]}
al: {strategies: [random, margin]}
"""


def snakemake(tmp_path: Path, *args: str, batch: bool = False) -> str:
    extra = tmp_path / "extra.yaml"
    extra.write_text(EXTRA + f"compute: {{batch_runs: {str(batch).lower()}}}\n")
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    command += ["--configfile", str(ROOT / "presets" / "smoke.yaml"), str(extra), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


@pytest.fixture(autouse=True)
def needs_the_feature_rules():
    if "feature_inputs" not in (ROOT / "workflow" / "rules" / "features.smk").read_text():
        pytest.skip("workflow/rules/features.smk does not define feature_inputs() yet")


@pytest.mark.parametrize("batch", [False, True], ids=["one-run-per-job", "batch-runs"])
def test_dry_run_lists_one_job_per_run(tmp_path, batch):
    stats = snakemake(tmp_path, "-n", "--quiet", "rules", batch=batch)
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", stats, flags=re.M))
    if batch:  # one job per fold and seed trains its 2 strategies and its baseline
        assert counts["train_runs"] == str(2 * 2)
        assert "active_learning" not in counts and "full_supervision" not in counts
    else:
        assert counts["active_learning"] == str(2 * 2 * 2)
        assert counts["full_supervision"] == str(2 * 2)

    summary = snakemake(tmp_path, "--summary", batch=batch)
    rules = ("train_runs",) if batch else ("active_learning", "full_supervision")
    made = {
        rule: {line.split("\t")[0] for line in summary.splitlines() if f"\t{rule}\t" in line}
        for rule in rules
    }
    runs = "results/runs/fold{}/seed{}"
    al_files = {
        f"{runs.format(f, s)}/{strategy}/{name}"
        for f, s, strategy, name in product(
            (0, 1),
            (0, 3),
            ("random", "margin"),
            ("cycles.csv", "queries.csv", "predictions.csv", "stopping.csv", "final_weights.h5"),
        )
    }
    full_files = {
        f"{runs.format(f, s)}/full/{name}"
        for f, s, name in product(
            (0, 1), (0, 3), ("metrics.csv", "history.csv", "predictions.csv", "final_weights.h5")
        )
    }
    if batch:
        assert made["train_runs"] == al_files | full_files
    else:
        assert made["active_learning"] == al_files
        assert made["full_supervision"] == full_files
