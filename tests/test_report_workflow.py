"""The report rules end to end through Snakemake, on hand-made runs in a temporary directory.

Only common.smk and report.smk are included, so the test does not
depend on the data/model stages and takes seconds; the full pipeline is the lead's CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_report_fixtures import FOLDS, SEEDS, STRATEGIES, make_runs

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

SNAKEFILE = f"""
configfile: "config.yaml"

include: "{REPO / "workflow/rules/common.smk"}"
include: "{REPO / "workflow/rules/report.smk"}"

rule all:
    input: TARGETS
"""


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [str(SNAKEMAKE), "--cores", "1", "--snakefile", "Snakefile", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def report_workdir(tmp_path: Path) -> Path:
    """Hand-made runs, Table 1, the Snakefile and the config in `tmp_path` (nothing run yet)."""
    make_runs(tmp_path)
    tables = tmp_path / "results" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"fold": [0, 1], "split": ["test", "test"], "porn": [10, 12]}).to_csv(
        tables / "table1.csv", index=False
    )
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    config = {
        "splits": {"folds": FOLDS, "seeds": SEEDS},
        "al": {"strategies": STRATEGIES},
        "report": {"bootstrap": 200},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


@pytest.fixture
def workdir(tmp_path):
    return report_workdir(tmp_path)


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """The report rules run once on the hand-made runs; read only (copy it to change it)."""
    workdir = report_workdir(tmp_path_factory.mktemp("reported"))
    done = snakemake(workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed beside python")
def test_report_rules_and_html_report(reported, tmp_path):
    workdir = reported
    for name in ("table2", "f1", "roc_auc", "summary", "paired", "stopping"):
        for ext in ("csv", "md", "html"):
            assert (workdir / f"results/tables/{name}.{ext}").stat().st_size > 0
    for fig in ("fold0", "fold1", "summary"):
        for ext in ("png", "pdf"):
            assert (workdir / f"results/figures/{fig}.{ext}").stat().st_size > 0
    assert "Table 1" in (workdir / "results/tables/protocol.html").read_text()
    report = snakemake(workdir, "--report", str(tmp_path / "report.html"))  # outside `reported`
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    assert "fold0.png" in html and "table2.html" in html and "protocol.html" in html
    assert "stopping.html" in html and "stopping_runs.csv" in html
    # front page: Table 2 and the summary figure inline, categories numbered in reading order
    assert "alnsfw-front" in html and "data:image/png;base64," in html
    assert "Table 2" in (workdir / "results/report/front.rst").read_text()
    names = ["1. Learning curves", "2. Tables", "3. Protocol"]
    assert all(name in html for name in names)


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed beside python")
def test_allow_partial_runs_without_missing_runs(workdir):
    (workdir / "results/runs/fold1/seed0/entropy/cycles.csv").unlink()
    strict = snakemake(workdir, "--dry-run")
    assert strict.returncode != 0  # the missing run has no rule to make it
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["report"]["allow_partial"] = True
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    partial = snakemake(workdir)
    assert partial.returncode == 0, partial.stderr[-3000:]
    missing = pd.read_csv(workdir / "results/tables/missing.csv")
    assert list(missing["method"]) == ["entropy"]
    assert "fold1/seed0/entropy" in (workdir / "results/tables/table2.md").read_text()


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed beside python")
def test_rerun_reason_names_the_changed_key(reported, tmp_path):
    workdir = tmp_path / "copy"  # a finished run, file times and .snakemake metadata kept
    shutil.copytree(reported, workdir, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["report"]["within_points"] = 2.0
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake(workdir, "--dry-run", "--rerun-triggers", "params")
    out = dry.stdout + dry.stderr
    assert dry.returncode == 0, out[-3000:]
    assert "('report.within_points', 2.0)" in out, out[-3000:]
    reasons = [line for line in out.splitlines() if line.startswith("Reason: Params")]
    assert len(reasons) == 4, out[-3000:]  # aggregate, human_cost, plot_summary, report_protocol
    for line in reasons:
        assert line.endswith(
            "before: ('report.within_points', 1.0) now: ('report.within_points', 2.0) "
        ), line


CONTACT_SHEET_PROBE = f"""
configfile: "config.yaml"

include: "{REPO / "workflow/rules/common.smk"}"
include: "{REPO / "workflow/rules/data.smk"}"

from snakemake.io import is_flagged
sheet = workflow.get_rule("ingest_report").output.contact_sheet
print("CONTACT_SHEET_IN_REPORT", is_flagged(sheet, "report"))
"""


@pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not installed beside python")
@pytest.mark.parametrize("included", [True, False])
def test_contact_sheet_switch(tmp_path, included):
    """report.contact_sheet: false leaves the keyframe images out of the report (for sharing)."""
    (tmp_path / "Snakefile").write_text(CONTACT_SHEET_PROBE)
    preset = yaml.safe_load((REPO / "presets/smoke.yaml").read_text())
    preset["report"] = {**preset.get("report", {}), "contact_sheet": included}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(preset))
    done = snakemake(tmp_path, "--list-rules")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"CONTACT_SHEET_IN_REPORT {included}" in done.stdout
