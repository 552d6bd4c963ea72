"""The config schema is package data: an installed, non-editable alnsfw finds its defaults.

Why: the schema's path used to be computed from the checkout (`workflow/schemas/`), so only an
editable install (or a run from the repository) could load the defaults that every stage's
settings take from it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from alnsfw.schema import SCHEMA_PATH, schema_defaults

REPO = Path(__file__).resolve().parents[1]


def test_schema_lives_inside_the_package():
    assert SCHEMA_PATH.is_file()
    assert SCHEMA_PATH.is_relative_to(REPO / "src" / "alnsfw")
    assert schema_defaults("splits")["n_folds"] == 5


def test_non_editable_install_finds_the_schema(tmp_path: Path):
    """Install the package (no deps; its build backend in pip's isolated build env, as any user's
    install gets it) into a folder, then load the defaults with only that folder
    (and the venv's site-packages, for PyYAML) on the path: never this checkout's src/."""
    target = tmp_path / "site"
    source = tmp_path / "source"  # a copy: the build writes build/ and *.egg-info beside it
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        cwd=tmp_path,
    )
    probe = (
        "import sys; sys.path[:] = [p for p in sys.path if 'src' not in p.split('/')]; "
        f"sys.path.insert(0, {str(target)!r}); "
        "import alnsfw.schema as s; "
        "assert s.SCHEMA_PATH.is_relative_to(sys.path[0]), s.SCHEMA_PATH; "
        "print(s.schema_defaults('splits')['n_folds'])"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", probe],
        check=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == "5"
