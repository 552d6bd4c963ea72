"""Faults a hostile user or a killed job causes, caught before any job runs or at the run's start.

Each test runs Snakemake (dry run where enough) on the smoke preset in a copy of the workflow.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alnsfw.config import check_registry_names
from alnsfw.schema import ConfigError

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
needs_snakemake = pytest.mark.skipif(not SNAKEMAKE.exists(), reason="snakemake not beside python")


def workflow_copy(tmp_path: Path) -> Path:
    """The workflow's files (Snakefile, config, rules, scripts, library, envs) in `tmp_path`/wf."""
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, work / name)
    for name in ("workflow", "scripts", "src", "presets", "profiles", "envs"):
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


def stale_temporaries(work: Path) -> list[Path]:
    """Temporaries as a SIGKILLed atomic write leaves them (alnsfw.io.atomic_path names)."""
    paths = [
        work / "results/features/.features.h5.k3j_9x2a.tmp.h5",
        work / "results/runs/fold0/seed0/entropy/.cycles.csv.ab12cd34.tmp.csv",
        work / "resources/smoke/.frame_labels.csv.zz99yy88.tmp.csv",
    ]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1000)
    return paths


def test_remove_stale_temporaries_only_takes_atomic_temporaries(tmp_path):
    from alnsfw.io import STALE_TEMPORARY, atomic_path, remove_stale_temporaries

    for name in ("x.h5", "cycles.csv", "keyframes.h5"):  # the pattern fits the real names
        with atomic_path(tmp_path / name) as tmp:
            assert STALE_TEMPORARY.match(tmp.name), tmp.name
            tmp.write_text("x")
    stale = stale_temporaries(tmp_path)
    keep = [tmp_path / "results/.hidden", tmp_path / "results/a.tmp.h5", tmp_path / "results/x.h5"]
    for path in keep:
        path.write_text("x")
    removed = remove_stale_temporaries([tmp_path / "results", tmp_path / "resources"])
    assert sorted(removed) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


@needs_snakemake
def test_a_run_starts_by_removing_stale_temporaries(tmp_path):
    work = workflow_copy(tmp_path)
    stale = stale_temporaries(work)
    done = snakemake(work, "resources/smoke/frame_labels.csv")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not any(p.exists() for p in stale)
    assert "stale temporary" in done.stdout + done.stderr


@needs_snakemake
def test_dry_run_prints_no_empty_shell_commands(tmp_path):
    """Every rule runs a script, so printed shell commands would all read `None`."""
    work = workflow_copy(tmp_path)
    done = snakemake(work, "-n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Shell command: None" not in done.stdout + done.stderr
    assert "train_runs" in done.stdout  # presets/smoke.yaml: compute.batch_runs


@needs_snakemake
def test_every_rule_describes_itself_in_list_rules(tmp_path):
    work = workflow_copy(tmp_path)
    done = snakemake(work, "--list-rules")
    assert done.returncode == 0, done.stderr[-2000:]
    rules = [line for line in done.stdout.splitlines() if line and " " not in line.split()[0]]
    assert len(rules) >= 15, done.stdout
    undocumented = [line for line in rules if "(" not in line]
    assert not undocumented, undocumented
