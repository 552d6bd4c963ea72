"""The config schema, shipped inside the package: its path, its content, its defaults.

Why a leaf: the workflow (`validate` in common.smk), the campaign CLI, the settings of every stage
and the tests all need the schema's defaults, and the schema is the only place that states one.
Computing its path from the checkout (`parents[2] / "workflow"`) broke an installed, non-editable
alnsfw; as package data beside this module it is found wherever alnsfw is. This module imports no
other alnsfw module, so any layer may import it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().with_name("config.schema.yaml")


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and what to do."""


@cache
def _schema() -> dict[str, Any]:
    import yaml  # the workflow extra; imported here so the scoring core never needs it

    # libyaml's parser when PyYAML has it (its wheels do): 0.04 s -> 0.004 s, in every job.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(SCHEMA_PATH.read_text(), Loader=loader)  # noqa: S506 - a safe loader


def load_schema() -> dict[str, Any]:
    """The parsed schema (a copy: callers such as coerce_cli_scalars may not alter the cache)."""
    return copy.deepcopy(_schema())


def schema_defaults(*keys: str) -> Any:  # noqa: ANN401
    """The default of config key `keys` (e.g. "training", "augmentation") as the schema states it.

    For an object, the defaults of its properties, recursively, so code outside the workflow
    (tests, benchmarks) takes defaults from the one place that defines them instead of copying.
    A key whose default is null is absent from an object's defaults.
    """
    node: dict[str, Any] = _schema()
    for key in keys:
        node = node["properties"][key]
    return _defaults_of(node)


def config_section(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Config section `name` with the schema's defaults under it (nested objects merged too).

    A validated config already holds every default; hand-made partial configs (tests, benchmarks)
    get the same values from the same place instead of a copy in the code.
    """
    return _merged(schema_defaults(name), cfg.get(name) or {})


def _merged(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _merged(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _defaults_of(node: dict[str, Any]) -> Any:  # noqa: ANN401
    if node.get("type") == "object" and "properties" in node:
        out = copy.deepcopy(dict(node.get("default") or {}))
        for name, child in node["properties"].items():
            value = _defaults_of(child)
            if value is not None:
                out.setdefault(name, value)
        return out
    return copy.deepcopy(node.get("default"))
