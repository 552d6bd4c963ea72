"""The library's layers: a module imports only its own package and the layers below it.

Why: a function-local import that goes upward (config -> model -> config, al -> predict) is an
import cycle in disguise; it works until someone moves the import to the top of the file. Every
`import` of every module under src/alnsfw is read with `ast`, function-local ones included, and
checked against the order below (docs/development.md, "Architecture").
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Bottom to top. A module of one entry may import modules of its own package (alnsfw.al.loop
#: imports alnsfw.al.pool) and of entries further up this list (lower layers), nothing else;
#: two packages of one layer do not import each other.
LAYERS: list[tuple[str, ...]] = [
    # leaves: no other alnsfw module
    ("schema", "outputs", "io", "markdown", "metrics"),
    # the dataset; tables and figures; video-level metrics; GPU packing (schema defaults)
    ("data", "report", "video_eval", "packing"),
    ("integrity", "model"),  # which cached file is corrupt; the network, its settings and caches
    ("al",),  # pool, strategies, the loop, the baseline, stopping
    ("predict",),  # exported models: scoring, operating points, the service
    ("config", "campaign"),  # the cross-stage config checks; labelling campaigns
    ("cli", "entry"),  # console script; the rule scripts' wrapper
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every alnsfw module `path` imports, at any depth of the file (functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module_name(path)}: relative import; write alnsfw.<...>"
            if node.module == "alnsfw":  # from alnsfw import outputs
                found.update(f"alnsfw.{alias.name}" for alias in node.names)
            elif node.module:
                found.add(node.module)
    return {name for name in found if name.split(".")[0] == "alnsfw"}


def package(module: str) -> str:
    """`alnsfw.al.loop` -> `al`; `alnsfw.config` -> `config`; `alnsfw` -> `alnsfw`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_of(module: str) -> int:
    for level, packages in enumerate(LAYERS):
        if package(module) in packages:
            return level
    raise AssertionError(f"{module}: its package '{package(module)}' is in no layer of LAYERS")


def import_edges() -> list[tuple[str, str]]:
    return sorted(
        (module_name(path), target)
        for path in SRC.joinpath("alnsfw").rglob("*.py")
        for target in imported_modules(path)
    )


def upward_imports() -> list[tuple[str, str]]:
    """(importer, imported) pairs that break the order: a higher layer, or another package of
    the same layer (the package `alnsfw` itself, i.e. `__init__`, may import nothing)."""
    bad = []
    for importer, target in import_edges():
        if package(importer) == package(target) and importer != "alnsfw":
            continue
        if layer_of(target) >= layer_of(importer):
            bad.append((importer, target))
    return bad


def test_every_package_has_a_layer():
    packages = {package(module_name(p)) for p in SRC.joinpath("alnsfw").rglob("*.py")}
    placed = {name for layer in LAYERS for name in layer}
    assert packages - {"alnsfw"} <= placed, (
        f"add {sorted(packages - placed - {'alnsfw'})} to LAYERS"
    )


def test_no_module_imports_a_layer_above_its_own():
    bad = upward_imports()
    assert not bad, (
        "imports against the layer order (tests/test_architecture.py LAYERS):\n"
        + "\n".join(
            f"  {importer} imports {target} (layer {layer_of(importer)} -> {layer_of(target)})"
            for importer, target in bad
        )
    )


def test_the_leaf_modules_import_nothing_of_alnsfw():
    """schema and outputs are read by every layer (the Snakefile too): no alnsfw import at all."""
    for name in ("schema/__init__.py", "outputs.py"):
        assert imported_modules(SRC / "alnsfw" / name) == set(), name


def test_the_rule_files_import_nothing_heavy():
    """Every `snakemake` command (dry-runs and `--lint` too) parses the Snakefile, so what the
    rule files import is paid on each: scipy.stats alone was half a CPU-second of a ~1.7 s
    start, from one dataclass read in report.smk (now alnsfw.report.options). pandas is not on
    the list: the SLURM executor plugin imports it at every start anyway."""
    import re
    import subprocess
    import sys

    root = SRC.parent
    files = [root / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]
    modules = sorted(
        {
            m
            for f in files
            for m in re.findall(r"^\s*(?:from|import) (alnsfw[\w.]*)", f.read_text(), re.M)
        }
    )
    assert "alnsfw.config" in modules  # the pattern finds them
    heavy = ["scipy", "matplotlib", "tensorflow", "keras", "jax", "h5py", "cv2", "sklearn"]
    probe = f"import sys\nfor m in {modules!r}: __import__(m)\n"
    probe += f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", f"the rule files' imports {modules} pull in {done.stdout}"
