"""Dependencies have one home each: ranges in pyproject.toml, exact versions in constraints.txt.

The lock (constraints.txt, written by `make lock` = tools/lock.py) holds the version of every
distribution `make install` resolves; each pyproject.toml range must admit its locked version.
The conda environment files (envs/*.yaml, for `snakemake --sdm conda`) pin the locked versions.
Conda itself is not needed: each file is parsed, and every package it pins must be in the lock,
at the same version. Names are compared after PEP 503 normalisation, and through NAME_TO_PYPI
where conda-forge's name (or a variant wheel) differs.
"""

import functools
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))
LOCK = ROOT / "constraints.txt"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

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


def runtime_dependencies() -> set[str]:
    """The core (what scoring needs) and the workflow extra: what the rules' environments run."""
    deps = PROJECT["dependencies"] + PROJECT["optional-dependencies"]["workflow"]
    return {normalise(Requirement(dep).name) for dep in deps}


def requirements() -> list[tuple[str, Requirement]]:
    """(where, requirement) for pyproject.toml's dependencies and every extra's, self-references
    (alnsfw[workflow]) left out."""
    out = [("dependencies", Requirement(dep)) for dep in PROJECT["dependencies"]]
    for extra, deps in PROJECT["optional-dependencies"].items():
        out += [(extra, Requirement(dep)) for dep in deps]
    return [(where, req) for where, req in out if req.name != PROJECT["name"]]


def locked() -> dict[str, str]:
    """constraints.txt: canonical name -> exact version."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"constraints.txt: {line!r} is not NAME==VERSION"
        key = canonicalize_name(name)
        assert key not in pins, f"constraints.txt: {name} listed twice"
        pins[key] = version.strip()
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
def test_env_pins_equal_the_lock(path):
    pins = locked()
    packages = env_packages(path)
    for name, (op, version) in packages.items():
        if name in UNPINNED_OK:
            continue
        assert name in pins, f"{path.name}: {name} is not in constraints.txt"
        assert op == "==", f"{path.name}: {name} must be pinned exactly (==), got {op}{version}"
        assert version == pins[name], (
            f"{path.name}: {name}=={version}, but constraints.txt locks {pins[name]}"
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
    missing = runtime_dependencies() - MAIN_PROCESS_ONLY - listed
    assert not missing, f"no env provides {sorted(missing)}"


# --- pyproject.toml ranges and the lock -----------------------------------------------------------
# Extras the Makefile does not install: their requirements need not be locked.
NOT_LOCKED_EXTRAS = {"gpu"}


def test_every_requirement_is_a_bounded_range():
    """A range, not a pin (the pin is the lock's), with an upper bound (a new major is a choice)."""
    for where, req in requirements():
        ops = {spec.operator for spec in req.specifier}
        assert ">=" in ops and "<" in ops and "==" not in ops, (
            f"pyproject.toml [{where}] {req}: give a range >=TESTED,<NEXT_MAJOR; the exact "
            "version belongs in constraints.txt (make lock)"
        )


def test_pyproject_ranges_admit_the_locked_versions():
    pins = locked()
    for where, req in requirements():
        key = canonicalize_name(req.name)
        if where in NOT_LOCKED_EXTRAS and key not in pins:
            continue
        assert key in pins, f"pyproject.toml [{where}] {req}: {key} is not in constraints.txt"
        assert req.specifier.contains(Version(pins[key]), prereleases=True), (
            f"pyproject.toml [{where}] {req} excludes the locked {key}=={pins[key]}: widen the "
            "range or update the lock (docs/development.md, Dependencies)"
        )


def test_lock_is_what_this_venv_resolves():
    """tools/lock.py on the venv running the tests writes constraints.txt again: the lock names
    every distribution of the install (a dependency added to pyproject.toml without `make lock`
    fails here) and the venv holds the locked versions."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools/lock.py")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    fresh = [line for line in out.stdout.splitlines() if not line.startswith("#")]
    lock = [line for line in LOCK.read_text().splitlines() if not line.startswith("#")]
    assert fresh == lock, (
        "constraints.txt differs from the installed venv; run `make install`, or `make lock` "
        f"after changing dependencies. Only in the venv: {sorted(set(fresh) - set(lock))}; "
        f"only in the lock: {sorted(set(lock) - set(fresh))}"
    )


def test_makefile_installs_with_the_lock():
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK := constraints.txt" in makefile
    assert "pip install --quiet -c $(LOCK) -e '.[dev,slurm,campaign]'" in makefile
    assert "$(STAMP): pyproject.toml $(LOCK)" in makefile


def test_spec_parsing_and_name_mapping():
    assert parse_spec("tensorflow[and-cuda]==2.21.0") == ("tensorflow", "==", "2.21.0")
    assert parse_spec("python=3.11") == ("python", "=", "3.11")
    assert parse_spec("pip") == ("pip", None, None)
    assert normalise("PyYAML") == "pyyaml"
    assert normalise("py_opencv") == "opencv-python-headless"
    assert normalise("tensorflow") == "tensorflow-cpu"


# --- Each rule's env provides what that rule really imports --------------------------------------
# Derived, not listed by hand: the rule's script, then every alnsfw module it reaches (imports
# anywhere in a module count, function-local ones included, because a job may run that function),
# and the third-party top-level modules they name, mapped to their distributions.

RULE_BLOCK = re.compile(r"^([ \t]*)rule (\w+):\n((?:\1[ \t]+.*\n|[ \t]*\n)*)", re.M)
DIRECTIVE = re.compile(r"^\s*(conda|script):\s*\n\s*(.+?)\s*$", re.M)
# Top-level modules that are optional at run time (guarded by try/except ImportError, or only
# reached on a backend the user chose): the env must still provide them if listed here with a
# reason, so nothing is skipped silently.
OPTIONAL_IMPORTS: dict[str, str] = {
    "torch": "compute.backend: torch is wired in model/backend.py but not installed or tested "
    "(docs/gpu.md); a user who picks it installs PyTorch into the env",
}


def conda_envs(value: str) -> list[str]:
    """Env stems a rule's `conda:` directive can name: a literal path, or model_env_file(...)."""
    if value.startswith('"'):
        return [Path(value.strip('"')).stem]
    assert value.startswith("model_env_file("), f"unknown conda: expression {value!r}"
    from alnsfw.packing import model_env_file

    return [Path(model_env_file({"gpu": gpu})).stem for gpu in (False, True)]


def rule_envs_and_scripts() -> dict[str, tuple[str, Path]]:
    """'rule[env]' -> (env stem, script path) for every rule with both directives."""
    found = {}
    for smk in [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]:
        text = smk.read_text()
        for match in RULE_BLOCK.finditer(text):
            directives = dict(DIRECTIVE.findall(match.group(3)))
            if "conda" in directives and "script" in directives:
                script = (smk.parent / directives["script"].strip('"')).resolve()
                for env in conda_envs(directives["conda"]):
                    found[f"{match.group(2)}[{env}]"] = (env, script)
    return found


def module_imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in a Python file."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def alnsfw_module_path(name: str) -> Path | None:
    base = ROOT / "src" / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules reached from a script through alnsfw, transitively."""
    import sys

    seen: set[Path] = set()
    todo = [script]
    third: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in module_imports(path):
            top = name.split(".")[0]
            if top == "alnsfw":
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # the package __init__s run too
                    module = alnsfw_module_path(".".join(parts[:i]))
                    if module:
                        todo.append(module)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third.add(top)
    return third


@functools.cache
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def distribution_of(module: str) -> str:
    dists = _distributions().get(module)
    assert dists, f"no installed distribution provides the module {module!r}"
    # tensorflow-cpu installs the `tensorflow` module; several dists may share a namespace
    return normalise(sorted(dists)[0])


RULES = rule_envs_and_scripts()


def test_rules_with_envs_were_found():
    rules = {key.split("[")[0] for key in RULES}
    assert {"extract_keyframes", "active_learning", "pretrain_trunk", "aggregate"} <= rules
    assert "active_learning[model-gpu]" in RULES
    for rule, (env, script) in RULES.items():
        assert (ROOT / "envs" / f"{env}.yaml").exists(), f"rule {rule}: no envs/{env}.yaml"
        assert script.exists(), f"rule {rule}: no {script}"


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rule_env_provides_every_import_of_the_rule(rule):
    env, script = RULES[rule]
    provided = set(env_packages(ROOT / "envs" / f"{env}.yaml"))
    modules = third_party_imports(script) - set(OPTIONAL_IMPORTS)
    needed = {distribution_of(m) for m in modules} - MAIN_PROCESS_ONLY
    missing = needed - provided
    assert not missing, (
        f"rule {rule} ({script.relative_to(ROOT)}) imports {sorted(missing)}, "
        f"which envs/{env}.yaml does not provide: add them, pinned as in constraints.txt"
    )


def test_import_derivation_follows_function_local_imports(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import numpy\ndef f():\n    from alnsfw.report.tables import x\n")
    found = third_party_imports(script)
    assert "numpy" in found
    assert "pandas" in found  # alnsfw.report.tables imports pandas
