"""A version users can cite: `alnsfw --version`, CITATION.cff, CHANGELOG.md and pyproject agree."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_version_flag_prints_the_installed_version():
    out = subprocess.run(
        [sys.executable, "-m", "alnsfw.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip() == f"alnsfw {_project_version()}"


def test_citation_and_changelog_name_the_project_version():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert str(cff["version"]) == _project_version()
    assert cff["preferred-citation"]["doi"] == "10.14716/ijtech.v13i6.5842"
    assert f"## {_project_version()}" in (REPO / "CHANGELOG.md").read_text()
