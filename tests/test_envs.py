"""The conda environment files (envs/*.yaml, for `snakemake --sdm conda`) match pyproject.toml.

Conda itself is not needed: each file is parsed, and every package it pins must be one of
pyproject.toml's dependencies, at the same version. Names are compared after PEP 503
normalisation, and through NAME_TO_PYPI where conda-forge's name (or a variant wheel) differs.
"""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))

# conda-forge (or variant wheel) name -> the pyproject.toml dependency it stands for
NAME_TO_PYPI = {
    "tensorflow": "tensorflow-cpu",  # conda-forge and the GPU wheel have no -cpu in the name
    "tensorflow-gpu": "tensorflow-cpu",
    "py-opencv": "opencv-python-headless",  # conda-forge's Python bindings of OpenCV
    "opencv": "opencv-python-headless",
    "python-tabulate": "tabulate",
}
# Dependencies that only the Snakemake process itself needs, never a rule's environment.
MAIN_PROCESS_ONLY = {"snakemake", "jsonschema"}
# Packages an environment may list without a pin (tools, not libraries of ours).
UNPINNED_OK = {"python", "pip"}
# Which env each rule family uses: each must provide what that stage imports.
REQUIRED = {
    "data": {"numpy", "h5py", "pandas", "opencv-python-headless", "matplotlib", "pyyaml"},
    "model": {"numpy", "h5py", "pandas", "tensorflow-cpu", "keras", "scikit-learn"},
    "model-gpu": {"numpy", "h5py", "pandas", "tensorflow-cpu", "keras", "scikit-learn"},
    "report": {"numpy", "pandas", "matplotlib", "pyyaml", "tabulate", "scipy"},
}

SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(\[[^\]]*\])?\s*(?:(==|=)\s*([^\s;#,]+))?\s*$")


def normalise(name: str) -> str:
    name = re.sub(r"[-_.]+", "-", name).lower()
    return NAME_TO_PYPI.get(name, name)


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """'numpy==2.4.6' -> ('numpy', '==', '2.4.6'); 'tensorflow[and-cuda]==2.21.0' too."""
    match = SPEC.match(spec)
    assert match, f"unsupported package spec {spec!r}: use NAME==VERSION"
    name, _extras, op, version = match.groups()
    return name, op, version


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    # the core (what scoring needs) and the workflow extra: what the rules' environments run
    for dep in project["dependencies"] + project["optional-dependencies"]["workflow"]:
        name, op, version = parse_spec(dep)
        assert op == "==", f"pyproject.toml dependency {dep!r} is not pinned"
        pins[normalise(name)] = version
    return pins


def env_packages(path: Path) -> dict[str, tuple[str | None, str | None]]:
    """All packages of an env file (conda and pip sections): name -> (operator, version)."""
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict), f"{path.name}: not a mapping"
    assert env.get("channels"), f"{path.name}: no channels"
    packages = {}
    for dep in env["dependencies"]:
        specs = dep["pip"] if isinstance(dep, dict) else [dep]
        assert not isinstance(dep, dict) or set(dep) == {"pip"}, f"{path.name}: {dep}"
        for spec in specs:
            name, op, version = parse_spec(spec)
            key = normalise(name)
            assert key not in packages, f"{path.name}: {name} listed twice"
            packages[key] = (op, version)
    return packages


def test_there_is_an_env_per_rule_family():
    assert {p.stem for p in ENV_FILES} == set(REQUIRED)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_equal_pyproject(path):
    pins = pyproject_pins()
    packages = env_packages(path)
    for name, (op, version) in packages.items():
        if name in UNPINNED_OK:
            continue
        assert name in pins, f"{path.name}: {name} is not a dependency in pyproject.toml"
        assert op == "==", f"{path.name}: {name} must be pinned exactly (==), got {op}{version}"
        assert version == pins[name], (
            f"{path.name}: {name}=={version}, but pyproject.toml pins {pins[name]}"
        )
    missing = REQUIRED[path.stem] - set(packages)
    assert not missing, f"{path.name} lacks {sorted(missing)}"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_python_matches_requires_python(path):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minor = re.search(r">=\s*3\.(\d+)", project["requires-python"]).group(1)
    op, version = env_packages(path)["python"]
    assert version == f"3.{minor}", f"{path.name}: python {version}, pyproject wants 3.{minor}"


def test_envs_cover_every_runtime_dependency():
    listed = set().union(*(env_packages(p) for p in ENV_FILES))
    missing = set(pyproject_pins()) - MAIN_PROCESS_ONLY - listed
    assert not missing, f"no env provides {sorted(missing)}"


def test_spec_parsing_and_name_mapping():
    assert parse_spec("tensorflow[and-cuda]==2.21.0") == ("tensorflow", "==", "2.21.0")
    assert parse_spec("python=3.11") == ("python", "=", "3.11")
    assert parse_spec("pip") == ("pip", None, None)
    assert normalise("PyYAML") == "pyyaml"
    assert normalise("py_opencv") == "opencv-python-headless"
    assert normalise("tensorflow") == "tensorflow-cpu"
