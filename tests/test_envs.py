"""Dependencies have one home each: ranges in pyproject.toml, exact versions in constraints.txt.

The lock (constraints.txt, written by `make lock` = tools/lock.py) holds the version of every
distribution `make install` resolves; each pyproject.toml range must admit its locked version.
The conda environment files (envs/*.yaml, for `snakemake --sdm conda`) pin the locked versions.
Conda itself is not needed: each file is parsed, and every package it pins must be in the lock,
at the same version. Names are compared after PEP 503 normalisation, and through NAME_TO_PYPI
where conda-forge's name (or a variant wheel) differs. What each env must provide is derived, not
listed: Snakemake loads the workflow and names every rule's script and env, and the script's
imports are followed through alnsfw to the third-party modules (the second half of this file).
Conda is out of reach from our machines, and a real `--sdm conda` run would not prove the envs
either: Snakemake's script preamble appends the submitting process's sys.path to the job's, so a
package missing from an env can be found in the submitting venv instead (on a shared file system).
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
# Dependencies that only the Snakemake process itself needs, never a rule's environment (the
# config is validated there, with jsonschema). If a job's script imports one of them anyway, the
# env must provide it, except snakemake: Snakemake's script preamble appends the submitting
# process's sys.path (its installation) to the job's, to unpickle the `snakemake` object.
MAIN_PROCESS_ONLY = {"snakemake", "jsonschema"}
FROM_THE_SUBMITTING_PROCESS = {"snakemake"}
# Packages an environment may list without a pin (tools, not libraries of ours).
UNPINNED_OK = {"python", "pip"}
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
    # make test: everything; make run: the workflow without the dev tools; both from the lock
    assert "DEV_EXTRAS := dev,slurm,campaign" in makefile
    assert "RUN_EXTRAS := workflow,slurm,campaign" in makefile
    # uv installs, pip if uv cannot: both with the lock as constraints
    assert (
        "uv pip install --quiet --python $(BIN)/python --compile-bytecode -c $(LOCK) -e '.[$(1)]'"
        in makefile
    )
    assert "pip install --quiet -c $(LOCK) -e '.[$(1)]'" in makefile
    for extras in ("RUN_EXTRAS", "DEV_EXTRAS"):
        assert f"$(call install_locked,$({extras}))" in makefile
    assert "$(STAMP): pyproject.toml $(LOCK)" in makefile
    assert "$(RUN_STAMP): pyproject.toml $(LOCK)" in makefile
    assert "run: install-run" in makefile and "test: install" in makefile


def test_spec_parsing_and_name_mapping():
    assert parse_spec("tensorflow[and-cuda]==2.21.0") == ("tensorflow", "==", "2.21.0")
    assert parse_spec("python=3.11") == ("python", "=", "3.11")
    assert parse_spec("pip") == ("pip", None, None)
    assert normalise("PyYAML") == "pyyaml"
    assert normalise("py_opencv") == "opencv-python-headless"
    assert normalise("tensorflow") == "tensorflow-cpu"


# --- Each rule's env provides what that rule really imports --------------------------------------
# Nothing here is listed by hand. Snakemake itself loads the workflow (SnakemakeApi, in a
# subprocess, once with the default config and once with compute.gpu: true, so both model envs are
# seen) and says, per rule, its script, its conda env and whether it is local. From each script the
# imports are followed through every local module they reach (alnsfw, or a module beside the
# script; a package's __init__ too; relative imports resolved): an import anywhere in a module
# counts, function-local ones included, because a job may call that function. Third-party
# top-level modules are mapped to distributions by importlib.metadata.packages_distributions(),
# and the rule's env must list each one (pins: test_env_pins_equal_the_lock).
#
# The rule for optional imports: an import inside `try: ... except ImportError` or in a branch of
# one backend counts like any other (the env must provide it), so the schema's
# `compute.backend: jax` makes the model envs provide jax (alnsfw.model.backend imports it).
# The only exceptions are EXEMPT_IMPORTS, each with its reason; such a module must stay out of the
# lock (once locked, an env must provide it) and must still be imported (no stale entry).
EXEMPT_IMPORTS: dict[str, str] = {}
# Rules whose script runs in the submitting process's environment, with no conda env: none.
NO_ENV_OK: dict[str, str] = {}

LOADER = r"""
import json, shutil, sys, tempfile
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.common import get_snakemake_searchpaths
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

root, overlay = Path(sys.argv[1]), json.loads(sys.argv[2])
with tempfile.TemporaryDirectory() as work:
    shutil.copy(root / "config.yaml", work)
    with SnakemakeApi(OutputSettings()) as api:
        wf = api.workflow(
            ResourceSettings(cores=1),
            ConfigSettings(config=overlay),
            snakefile=root / "Snakefile",
            workdir=Path(work),
        )._workflow
        rules = {}
        for rule in wf.rules:
            base = Path(rule.basedir)
            env = rule.conda_env
            rules[rule.name] = {
                "script": str((base / rule.script).resolve()) if rule.script else None,
                "conda": str((base / env).resolve()) if isinstance(env, str) else repr(env),
                "shell": rule.shellcmd is not None,
                "norun": rule.norun,
                "local": rule.name in wf._localrules or rule.norun,
                "resources": {
                    k: getattr(v, "value", v) if not callable(getattr(v, "value", v)) else None
                    for k, v in rule.resources.items() if k != "tmpdir"
                },
            }
        # the jobs' scripts find alnsfw on this search path (the preamble appends it)
        paths = get_snakemake_searchpaths()
        src = any((Path(p) / "alnsfw" / "__init__.py").exists() for p in paths)
        print(json.dumps({"rules": rules, "alnsfw_on_searchpath": src}))
"""
# config.yaml batches (compute.batch_runs, keyframe_jobs: rules train_runs, extract_keyframes_<n>);
# the gpu overlay loads the cluster's layout, one job per run and per video, so every rule is seen.
OVERLAYS = {
    "cpu": {},
    "gpu": {"compute": {"gpu": True, "batch_runs": False, "keyframe_jobs": 0}},
}


@functools.cache
def workflow_rules() -> dict[str, dict]:
    """overlay -> Snakemake's view of the loaded workflow (see LOADER)."""
    import json

    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", LOADER, str(ROOT), json.dumps(overlay)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, overlay in OVERLAYS.items()
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"loading the workflow ({name}) failed:\n{stderr[-3000:]}"
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    return out


def script_rules() -> dict[str, tuple[Path, Path]]:
    """'rule' or 'rule[env]' -> (script, env file) for every rule that runs a script, over both
    overlays (a rule whose env differs between them appears once per env)."""
    seen: dict[str, set[tuple[str, str]]] = {}
    for loaded in workflow_rules().values():
        for name, rule in loaded["rules"].items():
            if rule["script"]:
                seen.setdefault(name, set()).add((rule["script"], rule["conda"]))
    found = {}
    for name, pairs in seen.items():
        for script, env in pairs:
            key = name if len(pairs) == 1 else f"{name}[{Path(env).stem}]"
            found[key] = (Path(script), Path(env))
    return found


# -- imports: script -> local modules -> third-party modules, with the chain that leads there


def _imports(tree) -> list[tuple[str, int, list[str]]]:
    """(module, level, names) of every import statement anywhere in a module."""
    import ast

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level, [a.name for a in node.names]))
    return found


def _local_file(name: str, roots: list[Path]) -> Path | None:
    for root in roots:
        base = root / Path(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _module_name(path: Path, roots: list[Path]) -> str:
    for root in roots:
        if path.is_relative_to(root):
            parts = list(path.relative_to(root).with_suffix("").parts)
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return path.stem


def third_party_imports(script: Path, roots: list[Path] | None = None) -> dict[str, list[str]]:
    """Top-level third-party module -> the import chain that first reaches it from `script`
    (['scripts/x.py', 'alnsfw.a', 'alnsfw.b', 'cv2']). Local modules are found under the
    script's folder and src/ (Snakemake puts the script's folder on the job's path)."""
    return walk_imports(script, tuple(roots or [script.parent, ROOT / "src"]))[0]


def local_modules(script: Path) -> set[str]:
    """The local modules (alnsfw.*) a script reaches."""
    return set(walk_imports(script, (script.parent, ROOT / "src"))[1])


@functools.cache
def walk_imports(
    script: Path, roots: tuple[Path, ...]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(third-party module -> chain, local module -> chain), breadth first from the script."""
    import ast

    chains: dict[str, list[str]] = {}
    local: dict[str, list[str]] = {}
    start = [str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else script.name]
    todo: list[tuple[Path, list[str]]] = [(script, start)]
    seen: set[Path] = set()
    while todo:
        path, chain = todo.pop(0)  # breadth first: the shortest chain is reported
        if path in seen:
            continue
        seen.add(path)
        here = _module_name(path, roots).split(".")
        is_package = path.name == "__init__.py"
        for module, level, names in _imports(ast.parse(path.read_text(), filename=str(path))):
            if level:  # relative: from the module's own package
                package = here if is_package else here[:-1]
                package = package[: len(package) - (level - 1)]
                module = ".".join([*package, module] if module else package)
            candidates = [module] + [f"{module}.{n}" for n in names if n != "*"]
            top = module.split(".")[0]
            if _local_file(top, roots):
                for name in candidates:  # the package __init__s run too
                    parts = name.split(".")
                    for i in range(1, len(parts) + 1):
                        prefix = ".".join(parts[:i])
                        found = _local_file(prefix, roots)
                        if found and found not in seen:
                            local.setdefault(prefix, [*chain, prefix])
                            todo.append((found, [*chain, prefix]))
            elif top not in sys.stdlib_module_names and top != "__future__":
                chains.setdefault(top, [*chain, top])
    return chains, local


# Distributions that a library imports only when one of its functions is called, which no import
# statement of ours shows: pattern in a reached module's source -> (distributions, why).
IMPLIED_BY_CALL: dict[str, tuple[set[str], str]] = {
    r"\.to_markdown\(": ({"tabulate"}, "pandas' DataFrame.to_markdown imports tabulate"),
    r"format\s*=\s*['\"]onnx['\"]": (
        {"tf2onnx", "onnx"},
        "Keras' model.export(format='onnx') converts with tf2onnx on TensorFlow",
    ),
}


def implied_distributions(script: Path) -> dict[str, list[str]]:
    """Distribution -> chain ending in '<module> calls <pattern>' (IMPLIED_BY_CALL)."""
    roots = (script.parent, ROOT / "src")
    start = [str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else script.name]
    reached = {script: start}
    for name, chain in walk_imports(script, roots)[1].items():
        reached[_local_file(name, list(roots))] = chain
    found: dict[str, list[str]] = {}
    for path, chain in reached.items():
        text = path.read_text()
        for pattern, (dists, why) in IMPLIED_BY_CALL.items():
            if re.search(pattern, text):
                for dist in dists:
                    found.setdefault(dist, [*chain, f"{dist} ({why})"])
    return found


@functools.cache
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def distributions_of(module: str) -> set[str]:
    """The distributions (normalised, conda names mapped) that install a top-level module."""
    return {normalise(d) for d in _distributions().get(module, [])}


def env_problems(rule: str, script: Path, env: Path) -> list[str]:
    """What the rule's env lacks of what its script imports: one line per problem."""
    where = f"rule {rule} ({script.relative_to(ROOT)}, env {env.relative_to(env.parents[1])})"
    if not env.is_file():
        return [f"{where}: the env file does not exist"]
    provided = set(env_packages(env))
    pins = locked()
    problems = []
    for module, chain in sorted(third_party_imports(script).items()):
        if module in EXEMPT_IMPORTS:
            continue
        dists = distributions_of(module)
        path = " -> ".join(chain)
        if not dists:
            problems.append(
                f"{where}: imports {module} ({path}), which no installed distribution provides: "
                "declare it in pyproject.toml, `make lock`, and add it to the env"
            )
        elif not dists & (provided | FROM_THE_SUBMITTING_PROCESS):
            dist = sorted(dists)[0]
            pin = f"{dist}=={pins[dist]}" if dist in pins else f"{dist} (not in constraints.txt)"
            problems.append(f"{where}: imports {module} ({path}) but the env lacks it: add {pin}")
    for dist, chain in sorted(implied_distributions(script).items()):
        if dist not in provided:
            pin = f"{dist}=={pins[dist]}" if dist in pins else f"{dist} (not in constraints.txt)"
            path = " -> ".join(chain)
            problems.append(f"{where}: needs {dist} ({path}) but the env lacks it: add {pin}")
    return problems


def test_every_rule_that_runs_code_has_a_conda_env():
    """A rule that runs a script needs an env; `shell:` or `run:` rules would need one too (none
    exist: every rule's code is a script, so this test can check it); only `all` runs nothing."""
    rules = {}
    for loaded in workflow_rules().values():
        rules |= loaded["rules"]
    for name, rule in rules.items():
        if rule["norun"]:
            continue
        assert rule["script"], (
            f"rule {name} runs shell or run: code, not a script: give it a script"
        )
        assert rule["conda"] != "None" or name in NO_ENV_OK, (
            f"rule {name} runs {rule['script']} but has no conda: env (--sdm conda would run it "
            'in the submitting process\'s environment): add `conda: "../../envs/<stage>.yaml"`'
        )
    envs = {env.stem for _, env in script_rules().values()}
    assert {"model", "model-gpu"} <= envs, "the gpu overlay was not loaded"


def test_every_rule_of_the_rule_files_was_loaded():
    """A rule defined only under some config (synthesize_dataset) must be among those loaded."""
    text = "".join(p.read_text() for p in [ROOT / "Snakefile", *(ROOT / "workflow").rglob("*.smk")])
    defined = set(re.findall(r"^\s*rule (\w+):", text, re.M))
    loaded = set().union(*(set(w["rules"]) for w in workflow_rules().values()))
    assert defined <= loaded, f"rules not loaded by any overlay: {sorted(defined - loaded)}"


def test_every_env_file_is_used_by_a_rule():
    used = {env for _, env in script_rules().values()}
    assert set(ENV_FILES) == used, f"unused: {sorted(set(ENV_FILES) - used)}"


def test_jobs_find_alnsfw_without_an_install_in_the_env():
    """Snakemake appends the submitting process's sys.path to a script job's: alnsfw is there."""
    assert all(w["alnsfw_on_searchpath"] for w in workflow_rules().values()), (
        "no directory of the submitting process's sys.path holds alnsfw/ (common.smk puts src/ "
        "there): a job's conda env would not find alnsfw"
    )


def test_rule_envs_provide_every_import_of_their_rules():
    problems = [
        p for rule, (script, env) in script_rules().items() for p in env_problems(rule, script, env)
    ]
    assert not problems, "\n".join(problems)


def schema_backends() -> list[str]:
    """compute.backend's enum, from the config schema wherever it lives (workflow/ or src/)."""
    for path in sorted([*(ROOT / "workflow").rglob("*schema*"), *(ROOT / "src").rglob("*schema*")]):
        if path.suffix in {".yaml", ".yml", ".json"}:
            schema = yaml.safe_load(path.read_text())  # JSON is YAML too
            try:
                return schema["properties"]["compute"]["properties"]["backend"]["enum"]
            except (KeyError, TypeError):
                continue
    raise AssertionError("no config schema with compute.backend found under workflow/ or src/")


def test_every_backend_the_schema_allows_is_provided_or_exempt():
    """compute.backend picks the Keras backend of the model jobs: each model env (the envs of the
    rules that import alnsfw.model.backend) provides every backend the schema allows."""
    backends = schema_backends()
    model_envs = {
        env
        for script, env in script_rules().values()
        if "alnsfw.model.backend" in local_modules(script)
    }
    assert len(model_envs) >= 2, f"model envs found: {sorted(model_envs)}"
    for backend in backends:
        if backend in EXEMPT_IMPORTS:
            continue
        for env in sorted(model_envs):
            assert distributions_of(backend) & set(env_packages(env)), (
                f"the schema allows compute.backend: {backend}, but {env.name} lacks it"
            )


def test_exempt_imports_are_unlocked_and_still_imported():
    pins = locked()
    imported = set().union(*(third_party_imports(s) for s, _ in script_rules().values()))
    for module, reason in EXEMPT_IMPORTS.items():
        assert reason
        assert module in imported, f"EXEMPT_IMPORTS: nothing imports {module} any more"
        assert canonicalize_name(module) not in pins, (
            f"{module} is in constraints.txt now: drop it from EXEMPT_IMPORTS, add it to the envs"
        )


def test_the_env_check_fails_on_an_incomplete_env(tmp_path):
    """A copy of envs/report.yaml without h5py (what issue 19 found): the check names the rule,
    the chain to h5py and the pin to add."""
    (tmp_path / "envs").mkdir()
    env = tmp_path / "envs" / "report.yaml"
    env.write_text(
        "\n".join(
            line
            for line in (ROOT / "envs/report.yaml").read_text().splitlines()
            if "h5py" not in line
        )
    )
    script = ROOT / "scripts/aggregate.py"
    problems = env_problems("aggregate", script, env)
    assert problems, "the check passed an env without h5py"
    text = "\n".join(problems)
    assert "rule aggregate (scripts/aggregate.py, env envs/report.yaml)" in text
    assert "imports h5py (scripts/aggregate.py -> alnsfw" in text
    assert f"add h5py=={locked()['h5py']}" in text
    env.write_text("\n".join(x for x in env.read_text().splitlines() if "tabulate" not in x))
    text = "\n".join(env_problems("aggregate", script, env))
    assert "needs tabulate (scripts/aggregate.py -> " in text  # through .to_markdown(


def test_import_derivation_follows_local_and_relative_imports(tmp_path):
    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("try:\n    import cv2\nexcept ImportError:\n    cv2 = None\n")
    script = tmp_path / "scripts" / "s.py"
    script.parent.mkdir()
    script.write_text("import os\nimport numpy\nfrom pkg.a import f\n")
    found = third_party_imports(script, [script.parent, tmp_path / "src"])
    assert set(found) == {"numpy", "cv2"}
    assert found["cv2"][1:] == ["pkg.a", "pkg.b", "cv2"]  # try/except ImportError counts too
    assert distributions_of("cv2") == {"opencv-python-headless"}
    assert distributions_of("yaml") == {"pyyaml"}
    assert distributions_of("sklearn") == {"scikit-learn"}


# --- Short jobs run in the submitting process (localrules) ---------------------------------------
# The criterion (docs/cluster.md): a rule is local when it does no model work (its env is not a
# model env) and asks for one thread and the `resources.default` family, unless it is listed in
# SUBMITTED below with its reason. Derived from the loaded workflow, so a new short rule that is
# not added to `localrules:` fails here, and a renamed exempt rule fails too.
SUBMITTED: dict[str, str] = {
    "extract_keyframes": "one job per video (800 for NPDI), each decoding a whole video: in "
    "parallel on the cluster (or one job array, --slurm-array-jobs), not in turn on the login node",
    "synthesize_dataset": "writes every video of the synthetic dataset (minutes at NPDI scale)",
}


def test_short_rules_are_local_rules():
    # both layouts (OVERLAYS); a keyframe group job (extract_keyframes_<n>) is extract_keyframes'
    # kind, submitted like it
    loaded = {
        re.sub(r"^extract_keyframes_\d+$", "extract_keyframes", name): rule
        for overlay in workflow_rules().values()
        for name, rule in overlay["rules"].items()
    }
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    default = {k: v for k, v in config["resources"]["default"].items()}
    short = set()
    for name, rule in loaded.items():
        if rule["norun"] or name in SUBMITTED:
            continue
        res = rule["resources"]
        if (
            not Path(rule["conda"]).stem.startswith("model")
            and res.get("_cores") == 1
            and all(res.get(k) == v for k, v in default.items())
        ):
            short.add(name)
    local = {name for name, rule in loaded.items() if rule["local"] and not rule["norun"]}
    assert set(SUBMITTED) <= set(loaded), (
        f"SUBMITTED names unknown rules: {set(SUBMITTED) - set(loaded)}"
    )
    assert short - local == set(), (
        f"short rules missing from the Snakefile's localrules: {sorted(short - local)}"
    )
    assert local - short == set(), (
        f"localrules that are not short by the criterion: {sorted(local - short)}"
    )
