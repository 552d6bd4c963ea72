# Feature cache: the frozen ResNet50V2 trunk's output (conv5_block2_out) for every keyframe,
# computed once per (weights, input size, dtype) and shared by every fold, seed and strategy; and,
# for training.augment: bank, K augmented views per keyframe. File names carry the tag
# (alnsfw.model.tags.feature_tag), so a config with another trunk gets its own files.
from functools import partial

from alnsfw.model.tags import (
    feature_files,
    feature_tag,
    trunk_weights_files,
)  # noqa: E402

FEATURE_TAG = feature_tag(config)
FEATURES = f"results/features/{FEATURE_TAG}.h5"
BANK = f"results/features/{FEATURE_TAG}-bank.h5"
# Only the keys that change the trunk's output: a new head or learning rate must not rerun it.
TRUNK_PARAMS = {
    k: config["model"][k] for k in ("weights", "weights_seed", "input_size")
}
FEATURE_COMPUTE = {
    k: config["compute"][k] for k in ("feature_dtype", "predict_batch_size")
}
BANK_PARAMS = {k: config["training"][k] for k in ("augmentation", "bank_views")}

# feature_inputs(): the feature files a training job reads, by name (`features`, `bank`), for
# `input: **feature_inputs()`; empty when compute.feature_cache is false (the naive path).
feature_inputs = partial(feature_files, config)


rule cache_features:
    input:
        trunk_weights_files(config),
        keyframes=KEYFRAMES,
    output:
        features=FEATURES,
    log:
        f"results/logs/cache_features/{FEATURE_TAG}.log",
    conda:
        "../../envs/model.yaml"
    threads: config["compute"]["threads"]
    resources:
        mem_mb=res("features", "mem_mb"),
        runtime=res("features", "runtime"),
    params:
        model=TRUNK_PARAMS,
        compute=FEATURE_COMPUTE,
    message:
        f"Caching the frozen trunk's features ({FEATURE_TAG}) of every keyframe"
    script:
        "../../scripts/cache_features.py"


rule augment_bank:
    input:
        trunk_weights_files(config),
        keyframes=KEYFRAMES,
    output:
        bank=BANK,
    log:
        f"results/logs/augment_bank/{FEATURE_TAG}.log",
    conda:
        "../../envs/model.yaml"
    threads: config["compute"]["threads"]
    resources:
        mem_mb=res("features", "mem_mb"),
        runtime=res("features", "runtime"),
    params:
        model=TRUNK_PARAMS,
        compute=FEATURE_COMPUTE,
        training=BANK_PARAMS,
    message:
        f"Augmentation bank: {BANK_PARAMS['bank_views']} augmented views of every keyframe "
        f"through the frozen trunk ({FEATURE_TAG})"
    script:
        "../../scripts/augment_bank.py"
