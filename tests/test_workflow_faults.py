"""Faults a hostile user or a killed job causes, caught before any job runs or at the run's start.

Each test runs Snakemake (dry run where enough) on the smoke preset in a copy of the workflow.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alnsfw.config import ConfigError, check_registry_names

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
needs_snakemake = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not beside python")


def workflow_copy(tmp_path: Path) -> Path:
    """The Snakefile, workflow/, scripts/, src/, presets/ and config.yaml in `tmp_path`/wf."""
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, work / name)
    for name in ("workflow", "scripts", "src", "presets", "profiles"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    return work


def snakemake(work: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SNAKEMAKE), "--configfile", "presets/smoke.yaml", "--cores", "1", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match=r"al\.strategies has unknown \['entrpy'\]"):
        check_registry_names({"al": {"strategies": ["random", "entrpy"]}})
    check_registry_names({"al": {"strategies": ["random", "entropy"]}})


@needs_snakemake
def test_unknown_strategy_fails_the_dry_run_before_any_job(tmp_path):
    work = workflow_copy(tmp_path)
    done = snakemake(work, "-n", "--config", "al={strategies: [random, entrpy]}")
    assert done.returncode != 0
    assert "al.strategies has unknown ['entrpy']" in done.stdout + done.stderr
    assert not (work / "results").exists()
