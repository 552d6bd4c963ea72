"""The first minutes of a new user: `make run` checks the system prerequisites first and names the
one command that installs what is missing, and a half-made .venv is recreated instead of failing
every later `make run` with "No module named pip"."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def project_copy(tmp_path: Path) -> Path:
    """The Makefile and tools/ in an empty folder (what the prerequisite and venv targets read;
    without pyproject.toml the version check falls back to >=3.11)."""
    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(REPO / "Makefile", work / "Makefile")
    shutil.copytree(REPO / "tools", work / "tools")
    return work


def make(work: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )


def fake_python(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fakebin" / "python3"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@needs_make
def test_python_without_ensurepip_names_python3_venv(tmp_path):
    """Debian's python3 without the python3-venv package: venv imports, ensurepip does not."""
    shadow = tmp_path / "shadow" / "ensurepip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError('ensurepip (Debian split)')\n")
    python = fake_python(tmp_path, f'PYTHONPATH={shadow.parent} exec {sys.executable} "$@"')
    done = make(project_copy(tmp_path), "venv", f"PYTHON={python}")
    assert done.returncode != 0
    assert "lacks the venv module or ensurepip" in done.stderr
    assert "apt-get install -y python3-venv\n" in done.stderr, done.stderr
    assert not (tmp_path / "project" / ".venv").exists()  # nothing half-made left behind


@needs_make
def test_old_python_is_named_with_the_version_needed(tmp_path):
    python = fake_python(tmp_path, 'case "$*" in *print*) echo 3.9 ;; *) exit 1 ;; esac')
    work = project_copy(tmp_path)
    shutil.copy(REPO / "pyproject.toml", work / "pyproject.toml")
    done = make(work, "venv", f"PYTHON={python}")
    assert done.returncode != 0
    assert "is Python 3.9; alnsfw needs Python >=3.11" in done.stderr, done.stderr
    assert "make run PYTHON=python3.11" in done.stderr


@needs_make
def test_good_python_passes_the_check(tmp_path):
    done = make(project_copy(tmp_path), "prereqs", f"PYTHON={sys.executable}")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@needs_make
def test_half_made_venv_is_recreated(tmp_path):
    """A .venv without pip (what `python3 -m venv` leaves when ensurepip is missing)."""
    work = project_copy(tmp_path)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(work / ".venv")], check=True)
    (work / ".venv" / ".installed-stamp").touch()
    broken = subprocess.run([str(work / ".venv/bin/python"), "-m", "pip", "--version"])
    assert broken.returncode != 0
    done = make(work, "venv", f"PYTHON={sys.executable}")
    assert done.returncode == 0, done.stderr
    assert "is broken (no working python or pip): recreating it" in done.stdout
    pip = subprocess.run([str(work / ".venv/bin/python"), "-m", "pip", "--version"])
    assert pip.returncode == 0
    assert not (work / ".venv" / ".installed-stamp").exists()  # so `make install` reinstalls
    again = make(work, "venv", f"PYTHON={sys.executable}")
    assert again.returncode == 0 and "recreating" not in again.stdout
