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
#: `model.weights: proxy`: the trunk the workflow pretrains itself (rule pretrain_trunk).
PROXY = "proxy"


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


def proxy_weights_file(cfg: dict[str, Any], folder: str = "results/trunk") -> str:
    """The file rule pretrain_trunk writes for `model.weights: proxy`.

    Named by `pretrain.seed` and `model.input_size` (the trunk is pretrained at the size it is
    used at); the other `pretrain` keys are the rule's params, so changing them reruns it.
    """
    seed = int(cfg.get("pretrain", {}).get("seed", 0))
    return f"{folder}/proxy-s{seed}-{int(cfg['model']['input_size'])}px.weights.h5"


def resolved_model(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `model` section as the jobs get it: `weights: proxy` replaced by the proxy file.

    The library then sees an ordinary weights file (network.build_base), and nothing below the
    rule files needs to know how that file was made.
    """
    model = dict(cfg["model"])
    if str(model["weights"]) == PROXY:
        model["weights"] = proxy_weights_file(cfg)
    return model


def feature_tag(cfg: dict[str, Any]) -> str:
    """The tag of the feature files for `cfg`: `{weights}-{size}px-{dtype}`.

    Example: `imagenet-224px-float16`, `he_normal-s0-64px-float16`, `proxy-s0-64px-float16`.
    """
    model = cfg["model"]
    dtype = cfg.get("compute", {}).get("feature_dtype", "float16")
    if str(model["weights"]) == PROXY:
        name = f"{PROXY}-s{int(cfg.get('pretrain', {}).get('seed', 0))}"
    else:
        name = weights_name(model)
    return f"{name}-{int(model['input_size'])}px-{dtype}"


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
    """The trunk's weights file, if `model.weights` is one or `proxy` (an input: a new file reruns
    the caches and, for `proxy`, puts rule pretrain_trunk before them in the DAG)."""
    weights = str(resolved_model(cfg)["weights"])
    return [] if weights in _BUILTIN_WEIGHTS else [weights]
