"""Names of the feature-cache files, importable without TensorFlow (the rule files use them).

A cached trunk output is valid for exactly one (trunk weights, input size, storage dtype), so the
file name carries all three: two configs that share them share one cache in the DAG, and a change
to any of them gives a new file instead of silently reusing a stale one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: The last frozen layer whose output is cached: everything up to here runs in inference mode.
TRUNK_OUTPUT = "conv5_block2_out"

_BUILTIN_WEIGHTS = ("imagenet", "none", "he_normal")


def weights_name(model_cfg: dict[str, Any]) -> str:
    """A short name for the trunk's weights: `imagenet`, `he_normal-s<seed>`, or a file's stem.

    `none` and `he_normal` trunks are drawn from `model.weights_seed`, so the seed is part of the
    name; a weights file is named by its stem without the `.weights.h5` / `.h5` suffixes.
    """
    weights = str(model_cfg["weights"])
    if weights == "imagenet":
        return "imagenet"
    if weights in _BUILTIN_WEIGHTS:
        return f"{weights}-s{int(model_cfg.get('weights_seed', 0))}"
    stem = Path(weights).name.split(".")[0] or "weights"
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)


def feature_tag(cfg: dict[str, Any]) -> str:
    """The tag of the feature files for `cfg`: `{weights}-{size}px-{dtype}`.

    Example: `imagenet-224px-float16`, `he_normal-s0-64px-float16`.
    """
    model = cfg["model"]
    dtype = cfg.get("compute", {}).get("feature_dtype", "float16")
    return f"{weights_name(model)}-{int(model['input_size'])}px-{dtype}"


def feature_files(cfg: dict[str, Any], folder: str = "results/features") -> dict[str, str]:
    """The feature files a training job reads, by name, for a rule's `input:`.

    `features` when `compute.feature_cache` is on, plus `bank` for `training.augment: bank`;
    empty for the naive path, which reads images only.
    """
    if not cfg["compute"]["feature_cache"]:
        return {}
    tag = feature_tag(cfg)
    files = {"features": f"{folder}/{tag}.h5"}
    if cfg["training"]["augment"] == "bank":
        files["bank"] = f"{folder}/{tag}-bank.h5"
    return files


def trunk_weights_files(cfg: dict[str, Any]) -> list[str]:
    """The trunk's weights file, if `model.weights` is one (an input: a new file reruns caches)."""
    weights = str(cfg["model"]["weights"])
    return [] if weights in _BUILTIN_WEIGHTS else [weights]
