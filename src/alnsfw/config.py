"""Checks of the config that a JSON schema cannot express (files that must exist, cross-key rules).

Snakemake's `validate` already rejected wrong types and unknown keys and filled in defaults; this
runs right after it, still before any job, so a bad setup fails with the key and the fix named.

Layer: these checks ask the stages' registries (weights, cache modes, strategies, the NPDI
layout), so this module sits above data, model and al and imports them; those stages take
ConfigError and the defaults from the leaf alnsfw.schema, never from here (no cycle).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alnsfw.al.stopping import check_stopping_config
from alnsfw.al.strategies import STRATEGIES
from alnsfw.data.layout import config_fold_list_paths
from alnsfw.model.settings import CacheMode
from alnsfw.model.tags import BUILTIN_WEIGHTS, PROXY
from alnsfw.schema import ConfigError


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError for settings that would only fail later, inside a job."""
    data = config["data"]
    root = Path(data["root"])
    has_copy = (root / "Database").is_dir() or (root / "Frames").is_dir()  # Frames/ alone is fine
    if data["source"] == "npdi" and not has_copy:
        raise ConfigError(
            f"data.root = '{root}' holds no NPDI copy (no folder '{root / 'Database'}' nor "
            f"'{root / 'Frames'}'). "
            "Download the Pornography-800 dataset from its authors, unpack it so that "
            "Database/vPorn, Database/vNonPornEasy and Database/vNonPornDifficulty exist, and "
            "set data.root to that folder (e.g. --config data='{root: /path/to/NPDI}' or in "
            "your preset)."
        )
    if data["source"] == "folder" and not root.is_dir():
        raise ConfigError(
            f"data.root = '{root}' is not a folder (data.source: folder wants a folder of "
            "videos, subfolders allowed). Set data.root to it."
        )
    al = config.get("al", {})
    if al.get("unit", "keyframe") != "keyframe" and al.get("max_per_video") is not None:
        raise ConfigError(
            f"al.unit = '{al['unit']}' takes whole units per task, and al.max_per_video caps the "
            "keyframes of one video in a keyframe query: set al.max_per_video: null, or "
            "al.unit: keyframe"
        )
    labels = data["frame_labels"]
    if labels not in ("auto", "none") and data["source"] == "npdi" and not Path(labels).is_file():
        raise ConfigError(
            f"data.frame_labels = '{labels}' is not a file. Give a CSV with columns "
            "video,frame,label, or 'auto' / 'none'."
        )
    weights = config["model"]["weights"]
    builtin = (*BUILTIN_WEIGHTS, PROXY)  # proxy: made by rule pretrain_trunk
    if weights not in builtin and not Path(weights).is_file():
        raise ConfigError(
            f"model.weights = '{weights}' is neither {', '.join(repr(b) for b in builtin)} "
            "nor an existing weights file. Give the path of a Keras ResNet50V2 weights file (e.g. "
            "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5)."
        )
    n_folds = config["splits"]["n_folds"]
    bad = [f for f in config["splits"]["folds"] if f >= n_folds]
    if bad:
        raise ConfigError(f"splits.folds has {bad}, but splits.n_folds is {n_folds}.")
    CacheMode.from_config(config)  # refuses training.augment: bank without the feature cache
    check_registry_names(config)
    check_data_config(config)
    check_strategy_config(config)
    check_stopping_config(config)


def check_strategy_config(config: dict[str, Any]) -> None:
    """`bald` needs dropout in the head to sample from (names: check_registry_names)."""
    dropout = config["model"]["head"]["dropout"]
    if "bald" in config["al"]["strategies"] and not float(dropout) > 0:
        raise ConfigError(
            f"al.strategies has 'bald', but model.head.dropout = {dropout}: BALD samples the "
            "model with dropout active, so without dropout every sample is the same and every "
            "score 0. Set model.head.dropout > 0 (the default is 0.5) or drop 'bald'."
        )


def check_registry_names(config: dict[str, Any]) -> None:
    """Every name the config picks from a registry is registered (asked of the registry itself,
    so a strategy added with `@register` is valid at once). The schema can only check the
    spelling, so without this an unknown name passes `-n` and fails inside its first job."""
    unknown = [name for name in config["al"]["strategies"] if name not in STRATEGIES]
    if unknown:
        raise ConfigError(
            f"al.strategies has unknown {unknown}; registered strategies: {sorted(STRATEGIES)}. "
            "Fix the spelling, or add the strategy with @register in alnsfw/al/strategies.py."
        )


def _check_pattern(key: str, pattern: str, required: str) -> None:
    try:
        pattern.format(fold=0, others="1234")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{key} = '{pattern}' is not a valid pattern ({exc!r}); the only placeholders are "
            "{fold} (the fold number) and {others} (the other fold numbers, e.g. 1234)."
        ) from exc
    if required not in pattern:
        raise ConfigError(
            f"{key} = '{pattern}' lacks {required}, so every fold would read the same file."
        )


def check_data_config(config: dict[str, Any]) -> None:
    """Checks of the data, synthetic and keyframes sections that need more than one key."""
    data, synth = config["data"], config["synthetic"]
    n_folds = config["splits"]["n_folds"]
    _check_pattern("data.test_list", data["test_list"], "{fold}")
    if "{fold}" not in data["train_list"]:
        _check_pattern("data.train_list", data["train_list"], "{others}")
    if data["source"] == "synthetic":
        lo, hi = synth["shots_per_video"]
        if lo > hi:
            raise ConfigError(f"synthetic.shots_per_video = [{lo}, {hi}]: give [min, max].")
        if any(side % 2 for side in synth["frame_size"]):
            raise ConfigError(
                f"synthetic.frame_size = {synth['frame_size']}: MJPG needs even width and "
                "height; round them to even numbers."
            )
        n_videos = sum(synth["videos"].values())
        if n_videos < n_folds:
            raise ConfigError(
                f"synthetic.videos has {n_videos} videos in all, fewer than splits.n_folds = "
                f"{n_folds}: some test folds would be empty. Add videos."
            )
    elif (Path(data["root"]) / "Database").is_dir() or (Path(data["root"]) / "Frames").is_dir():
        for fold, (test, train) in config_fold_list_paths(config).items():
            for path, key in ((test, "data.test_list"), (train, "data.train_list")):
                if not path.is_file():
                    raise ConfigError(
                        f"Fold list '{path}' (fold {fold}, from {key}) does not exist. NPDI "
                        "ships test/fold<i>_video.txt and training/fold<others>_video.txt; put "
                        f"them under data.root or set {key} to the pattern your copy uses."
                    )


_BOOLEANS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_NULLS = ("null", "none", "~")


def schema_branches(schema: dict[str, Any], root: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives a schema node allows, each without $ref, oneOf or anyOf.

    `{$ref: "#/$defs/x"}` is replaced by what it points to; `oneOf`/`anyOf` give one branch
    per alternative (flattened); the node's own `type`, `enum` or `properties` beside them make
    one more branch. tests/test_config_coerce.py lists the schema keywords this and
    coerce_cli_scalars follow, and fails on any other (allOf, patternProperties, ...).
    """
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return schema_branches({**target, **rest}, root)
    branches = []
    for key in ("oneOf", "anyOf"):
        for alternative in schema.get(key, []):
            branches += schema_branches(alternative, root)
    own = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}
    if not branches or set(own) & {"type", "enum", "const", "properties", "items"}:
        branches.append(own)
    return branches


def _types(branch: dict[str, Any]) -> list[str]:
    kind = branch.get("type")
    return kind if isinstance(kind, list) else [kind] if kind else []


def _coerce_string(value: str, branches: list[dict[str, Any]]) -> Any:  # noqa: ANN401
    """The value a string stands for under the first type the schema accepts.

    Order: null (a null literal where null is allowed); the string itself where a branch names
    it (`enum`/`const`, e.g. threshold 'auto'); boolean; integer; number (finite); else the
    string unchanged (a real string, or one validation will reject, naming the key).
    """
    kinds = {kind for branch in branches for kind in _types(branch)}
    word = value.strip().lower()
    if "null" in kinds and word in _NULLS:
        return None
    for branch in branches:
        if "string" in _types(branch) and (
            value in branch.get("enum", ()) or value == branch.get("const", None)
        ):
            return value
    if "boolean" in kinds and word in _BOOLEANS:
        return _BOOLEANS[word]
    if "integer" in kinds:
        try:
            return int(value)
        except ValueError:
            pass
    if "number" in kinds:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    return value


def coerce_cli_scalars(
    config: Any,  # noqa: ANN401
    schema: dict[str, Any],
    root: dict[str, Any] | None = None,
) -> Any:  # noqa: ANN401
    """Turn strings into the null/boolean/integer/number the schema accepts, in place where
    possible, walking the schema: type lists ([integer, "null"]), oneOf/anyOf (a number or
    'auto'), local $ref, nested objects (properties, additionalProperties) and arrays (items).

    Snakemake reads nested `--config` values as plain strings (`--config compute='{gpu: true}'`
    gives the string 'true'), which the schema would then reject; a user should not need a config
    file for a one-key change. Real strings stay strings (a string-typed key is never touched,
    and a string an enum or const names is kept: 'auto'); values that do not parse are left as
    they are, so validation still names the key.
    """
    root = schema if root is None else root
    branches = schema_branches(schema, root)
    if isinstance(config, dict):
        for branch in branches:
            if "object" in _types(branch) or "properties" in branch:
                props = branch.get("properties", {})
                extra = branch.get("additionalProperties")
                for key, value in config.items():
                    sub = props.get(key, extra if isinstance(extra, dict) else None)
                    if sub is not None:
                        config[key] = coerce_cli_scalars(value, sub, root)
                break
        return config
    if isinstance(config, list):
        for branch in branches:
            if "array" in _types(branch) and isinstance(branch.get("items"), dict):
                return [coerce_cli_scalars(v, branch["items"], root) for v in config]
        return config
    if isinstance(config, str):
        return _coerce_string(config, branches)
    return config


def load_config(
    configfiles: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
    base: str | Path | None = "config.yaml",
    check: bool = True,
) -> dict[str, Any]:
    """The config exactly as `snakemake --configfile F... --config K=V...` sees it.

    Why one loader: a labelling campaign that read its preset alone trained other model settings
    than the workflow it was compared with, and skipped the checks that refuse a bad setting
    before anyone labels. Order: `base` (the workflow's config.yaml, as its `configfile:`), then
    each file, deep-merged (snakemake.utils.update_config), then `KEY=VALUE` overrides parsed
    as Snakemake parses `--config` (snakemake.cli.parse_config); then the same coercion, schema
    validation (defaults filled in) and cross-key checks as workflow/rules/common.smk.
    ValueError names the file or key.
    """
    import yaml
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    config: dict[str, Any] = {}
    files = [Path(base)] if base is not None and Path(base).is_file() else []
    files += [Path(f) for f in configfiles]
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as err:
            raise ValueError(f"config file {path}: {err.strerror or err}") from err
        except yaml.YAMLError as err:
            raise ValueError(f"config file {path} is not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} is not a YAML mapping")
        update_config(config, data)
    try:
        update_config(config, parse_config(list(overrides)))
    except (ValueError, AssertionError) as err:
        raise ValueError(f"--config {' '.join(overrides)}: {err}") from err
    named = ", ".join(str(p) for p in files) or "(no file)"
    try:
        validate_config(config, check)
    except Exception as err:  # WorkflowError / ConfigError: the message names the key
        raise ValueError(f"config {named}: {err}") from err
    return config


def validate_config(config: dict[str, Any], check: bool = True) -> None:
    """What the workflow does to its config before any job (workflow/rules/common.smk) and the
    campaign before any task: command-line strings coerced to the schema's types, the schema's
    validation (defaults filled in, in place), then the cross-key checks."""
    from snakemake.utils import validate

    from alnsfw.schema import SCHEMA_PATH, load_schema

    coerce_cli_scalars(config, load_schema())
    validate(config, str(SCHEMA_PATH))
    if check:
        check_config(config)
