"""`--config` strings become the types the schema accepts (alnsfw.config.coerce_cli_scalars).

Snakemake hands nested `--config` values over as strings (`--config al='{max_per_video: 2}'`
gives '2'). The combinations of types the schema uses are enumerated from
alnsfw/schema/config.schema.yaml itself, and every key of every combination is coerced
here: a key with a new combination (or a schema keyword the coercion does not follow) fails
until CASES says what its strings become.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import smoke_snakemake

from alnsfw.config import coerce_cli_scalars
from alnsfw.schema import load_schema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_schema()

# Keywords that only constrain a value whose type is already chosen: nothing to coerce by.
ANNOTATIONS = {
    "$schema", "description", "default", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minItems", "maxItems", "pattern", "not", "required", "uniqueItems",
}  # fmt: skip
# Keywords coerce_cli_scalars follows (schema_branches resolves $ref and oneOf/anyOf).
FOLLOWED = {
    "type", "enum", "const", "properties", "additionalProperties", "items", "oneOf", "anyOf",
    "$ref", "$defs",
}  # fmt: skip

# Per combination: (string given on the command line, the value it must become). A type is
# checked too (2 is not 2.0, True is not 1). Strings no type accepts stay strings, so validation
# names the key.
SCALAR = [("x", "x"), ("", "")]
CASES: dict[tuple[str, ...], list[tuple[Any, Any]]] = {
    ("integer",): [("2", 2), ("-3", -3), ("2.5", "2.5"), ("null", "null"), *SCALAR],
    ("number",): [
        ("0.4", 0.4),
        ("2", 2.0),
        ("1e-3", 0.001),
        ("nan", "nan"),
        ("inf", "inf"),
        *SCALAR,
    ],  # fmt: skip
    ("boolean",): [
        ("true", True),
        ("False", False),
        ("yes", True),
        ("off", False),
        ("1", "1"),
        *SCALAR,
    ],  # fmt: skip
    ("string",): [("2", "2"), ("true", "true"), ("null", "null"), *SCALAR],
    ("string(enum)",): [("2", "2"), ("true", "true"), ("none", "none"), *SCALAR],
    ("integer", "null"): [
        ("2", 2),
        ("null", None),
        ("None", None),
        ("~", None),
        ("2.5", "2.5"),
        *SCALAR,
    ],  # fmt: skip
    ("null", "number"): [("0.5", 0.5), ("1", 1.0), ("null", None), *SCALAR],
    ("null", "string"): [
        ("null", None),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("2", "2"),
        *SCALAR,
    ],  # fmt: skip
    # oneOf: 'auto' or a number (video.threshold, model.bn_momentum)
    ("number", "string(enum)"): [
        ("0.4", 0.4),
        ("1", 1.0),
        ("auto", "auto"),
        ("Auto", "Auto"),
        *SCALAR,
    ],  # fmt: skip
    ("array[integer]",): [(["20", "50"], [20, 50]), (["2", "x"], [2, "x"]), ([], [])],
    ("array[number]",): [(["20", "50.5"], [20.0, 50.5]), ([], [])],
    ("array[string]",): [(["1", "true", "null"], ["1", "true", "null"])],
    ("array[string(enum)]",): [(["1", "mean"], ["1", "mean"])],
}


def resolve(node: dict) -> dict:
    if "$ref" in node:
        target = SCHEMA
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def alternatives(node: dict) -> list[dict]:
    node = resolve(node)
    unknown = set(node) - ANNOTATIONS - FOLLOWED
    assert not unknown, (
        f"schema keyword(s) {sorted(unknown)} in {node}: teach alnsfw.config.coerce_cli_scalars "
        "(and this test's FOLLOWED) what they mean for --config strings"
    )
    out = [b for key in ("oneOf", "anyOf") for alt in node.get(key, []) for b in alternatives(alt)]
    own = {k: v for k, v in node.items() if k not in ("oneOf", "anyOf")}
    if not out or {"type", "enum", "const", "properties", "items"} & set(own):
        out.append(own)
    return out


def signature(node: dict) -> tuple[str, ...]:
    """The combination of types a key accepts, e.g. ('integer', 'null')."""
    kinds = set()
    for branch in alternatives(node):
        types = branch.get("type")
        for kind in types if isinstance(types, list) else [types]:
            if kind == "string" and ("enum" in branch or "const" in branch):
                kind = "string(enum)"
            elif kind == "array":
                kind = f"array[{'|'.join(signature(branch['items']))}]"
            assert kind is not None, f"a branch without a type: {branch}"
            kinds.add(kind)
    return tuple(sorted(kinds))


def leaves(node: dict, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Every key that is not an object -> its signature; objects are walked into."""
    branches = alternatives(node)
    objects = [b for b in branches if b.get("type") == "object"]
    if objects:
        assert len(branches) == 1, f"{'.'.join(path)}: an object or something else: {branches}"
        obj = objects[0]
        extra = obj.get("additionalProperties", False)
        assert extra is False or "properties" not in obj, f"{'.'.join(path)}: both"
        out = {}
        for name, child in obj.get("properties", {}).items():
            out.update(leaves(child, (*path, name)))
        if isinstance(extra, dict):  # any key: walk the value schema under a made-up key
            out.update(leaves(extra, (*path, "some_key")))
        return out
    return {path: signature(node)}


LEAVES = leaves(SCHEMA)


def nested(path: tuple[str, ...], value: Any) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


def same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def test_the_schema_walk_finds_every_kind_of_key():
    """The enumeration reaches nullable keys, oneOf keys, $ref'd keys and arrays of numbers."""
    assert LEAVES[("al", "max_per_video")] == ("integer", "null")
    assert LEAVES[("video", "threshold")] == ("number", "string(enum)")
    assert LEAVES[("model", "bn_momentum")] == ("number", "string(enum)")
    assert LEAVES[("resources", "train", "mem_mb")] == ("integer",)
    assert LEAVES[("stopping", "budget", "max_share")] == ("null", "number")
    assert LEAVES[("campaign", "labelstudio", "url")] == ("null", "string")
    assert LEAVES[("report", "key_percentages")] == ("array[number]",)
    assert LEAVES[("compute", "gpu")] == ("boolean",)
    assert len(LEAVES) > 100


def test_every_type_combination_of_the_schema_is_handled():
    unhandled = {sig: path for path, sig in LEAVES.items() if sig not in CASES}
    assert not unhandled, (
        "new type combination(s) in config.schema.yaml: "
        + ", ".join(f"{sig} (e.g. {'.'.join(path)})" for sig, path in unhandled.items())
        + ": check alnsfw.config.coerce_cli_scalars turns --config strings into them, then "
        "add the cases to CASES"
    )
    assert set(CASES) == set(LEAVES.values()), "CASES lists combinations the schema no longer has"


@pytest.mark.parametrize("path", sorted(LEAVES), ids=".".join)
def test_every_key_coerces_as_its_type_combination(path):
    for given, expected in CASES[LEAVES[path]]:
        config = nested(path, given)
        coerce_cli_scalars(config, SCHEMA)
        got = config
        for key in path:
            got = got[key]
        assert same(got, expected), f"{'.'.join(path)}: {given!r} became {got!r}, not {expected!r}"


def test_keywords_the_schema_does_not_use_yet():
    """anyOf, additionalProperties with a schema and arrays of arrays work the same way."""
    schema = {
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"type": "boolean"}, {"type": "integer"}]},
            "m": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
            "g": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        },
    }
    config = {"a": "on", "m": {"x": "0.5", "y": "null"}, "g": [["1", "2"], ["3"]]}
    assert coerce_cli_scalars(config, schema) == {
        "a": True,
        "m": {"x": 0.5, "y": None},
        "g": [[1, 2], [3]],
    }
    assert coerce_cli_scalars({"a": "7"}, schema) == {"a": 7}


def test_values_that_are_not_strings_are_left_alone():
    config = {"al": {"max_per_video": 2}, "video": {"threshold": 0.4}, "compute": {"gpu": True}}
    coerce_cli_scalars(config, SCHEMA)
    assert config == {
        "al": {"max_per_video": 2},
        "video": {"threshold": 0.4},
        "compute": {"gpu": True},
    }
    unknown = {"no_such_section": {"x": "2"}, "al": {"no_such_key": "2"}}
    coerce_cli_scalars(unknown, SCHEMA)  # left for validation to reject by name
    assert unknown == {"no_such_section": {"x": "2"}, "al": {"no_such_key": "2"}}


@pytest.mark.parametrize(
    "override", ["al={max_per_video: 2}", "video={threshold: 0.4}"], ids=["nullable", "oneOf"]
)
def test_dry_run_accepts_typed_values_on_the_command_line(tmp_path, override):
    """End to end: Snakemake's own --config parsing, the coercion in common.smk, validation."""
    done = smoke_snakemake(tmp_path, "-n", "--quiet", "rules", "--config", override)
    assert "train_runs" in done.stdout  # presets/smoke.yaml: compute.batch_runs


def test_dry_run_still_names_a_bad_value(tmp_path):
    done = smoke_snakemake(
        tmp_path, "-n", "--quiet", "rules", "--config", "video={threshold: 2}", check=False
    )
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert "threshold" in out and "2.0" in out  # a number now, out of range: still named
