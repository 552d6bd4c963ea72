"""The network: trainable split, weights options, augmentation, preprocessing, feature tags.

Tiny inputs (32 px: the trunk's output is 1x1x2048) keep each model build around a second.
"""

from __future__ import annotations

import copy

import keras
import numpy as np
import pytest

from alnsfw.model import network
from alnsfw.model.network import (
    WeightsUnavailableError,
    build_augmentation,
    build_base,
    build_network,
    require_top,
    trunk_fingerprint,
)
from alnsfw.model.tags import (
    TOP_BLOCK_OUTPUT,
    TRUNK_OUTPUT,
    cache_layer,
    feature_files,
    feature_tag,
    trunk_params,
    trunk_weights_files,
)
from alnsfw.schema import schema_defaults

CFG = {
    "model": {
        "weights": "he_normal",
        "weights_seed": 0,
        "input_size": 32,
        "trainable_from": "conv5_block3_1",
        "head": {"batchnorm": True, "dense": [16], "dropout": 0.2},
    },
    "training": {
        "augment": "online",
        "augmentation": schema_defaults("training", "augmentation"),
    },
    "compute": {"feature_dtype": "float16"},
}


def with_model(**changes):
    cfg = copy.deepcopy(CFG)
    cfg["model"].update(changes)
    return cfg


@pytest.fixture(scope="module")
def net():
    return build_network(CFG, seed=0)


def test_trainable_split_starts_at_configured_layer(net):
    names = [layer.name for layer in net.base.layers]
    first = net.first_trainable
    assert names[first] == "conv5_block3_1_conv"
    assert first == names.index("conv5_block3_1_conv")
    assert all(not layer.trainable for layer in net.base.layers[:first])
    assert all(layer.trainable for layer in net.base.layers[first:])
    # 179 frozen layers (input .. conv5_block3_preact_relu); the top trains conv5_block3_1..3,
    # post_bn and the head.
    assert first == 179
    frozen_bn = [
        layer.name
        for layer in net.base.layers[:first]
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert frozen_bn[-1] == "conv5_block3_preact_bn"
    trainable = {v.path.split("/")[0] for v in net.top.trainable_variables}
    assert "conv5_block3_1_conv" in trainable and "predictions" in trainable
    assert not any(name.startswith(("conv4", "conv5_block2")) for name in trainable)


def test_frozen_batchnorm_runs_in_inference_mode(net):
    bn = net.base.get_layer("conv5_block2_preact_bn")
    before = [np.array(w) for w in bn.get_weights()]
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    a = np.asarray(net.trunk(x, training=True))
    b = np.asarray(net.trunk(x, training=False))
    np.testing.assert_array_equal(a, b)  # batch statistics would make these differ
    for w0, w1 in zip(before, bn.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_trainable_from_inside_the_trunk_cannot_be_cached():
    net = build_network(with_model(trainable_from="conv5_block2_1"), seed=0)
    assert net.top is None
    with pytest.raises(ValueError, match="feature_cache: false"):
        require_top(net, "conv5_block2_1")


def test_head_only_training_caches_the_last_block():
    """trainable_from post_bn: the cache ends at conv5_block3_out, and top(trunk(x)) == full(x)."""
    head_only = with_model(trainable_from="post_bn")
    assert cache_layer(head_only) == TOP_BLOCK_OUTPUT == "conv5_block3_out"
    assert cache_layer(CFG) == TRUNK_OUTPUT
    net = build_network(head_only, seed=0, augment=False)
    assert net.cache_layer == TOP_BLOCK_OUTPUT and net.top is not None
    assert all(not layer.trainable for layer in net.base.layers if layer.name.startswith("conv"))
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    cached = np.asarray(net.top(net.trunk(x, training=False), training=False))
    np.testing.assert_allclose(cached, np.asarray(net.full(x, training=False)), atol=1e-6)
    # another cut, another cache file; a start inside conv5_block3 keeps the conv5_block2 cache
    assert feature_tag(head_only) == "he_normal-s0-32px-float16-conv5_block3_out"
    assert trunk_params(head_only)["trainable_from"] == "post_bn"
    later = with_model(trainable_from="conv5_block3_2")
    assert trunk_params(later) == trunk_params(CFG)


def test_unknown_trainable_from_is_named():
    with pytest.raises(ValueError, match="conv9_block1"):
        build_network(with_model(trainable_from="conv9_block1"), seed=0)


def test_imagenet_download_failure_says_how_to_pass_a_file(monkeypatch):
    def offline():
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(network, "download_imagenet_weights", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_base(with_model(weights="imagenet")["model"])
    message = str(info.value)
    assert "model.weights: /path/to/" in message and network.IMAGENET_FILE in message
    assert "name resolution" in message


def test_weights_file_round_trip_and_bad_file(tmp_path):
    base = build_base(with_model(weights_seed=3)["model"])
    path = tmp_path / "trunk.weights.h5"
    base.save_weights(path)
    loaded = build_base(with_model(weights=str(path))["model"])
    for a, b in zip(base.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(WeightsUnavailableError, match="bad.weights.h5"):
        build_base(with_model(weights=str(bad))["model"])


def test_he_normal_is_deterministic_and_scaled():
    a = build_network(CFG, seed=0)
    b = build_network(CFG, seed=5)  # the run's seed changes the head, never the trunk
    assert trunk_fingerprint(a) == trunk_fingerprint(b)
    other = build_network(with_model(weights_seed=1), seed=0)
    assert trunk_fingerprint(other) != trunk_fingerprint(a)
    kernel = a.base.get_layer("conv4_block1_2_conv").kernel.numpy()
    expected = np.sqrt(2.0 / np.prod(kernel.shape[:-1]))
    assert abs(kernel.std() / expected - 1) < 0.02
    # every kernel as the plain draw gives it, layer after layer from one stream (network.py
    # draws into a reused buffer instead; a changed value would change every cache and result)
    rng = np.random.default_rng(CFG["model"]["weights_seed"])
    convs = [layer for layer in a.base.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) > 50
    for layer in convs:
        shape = tuple(layer.kernel.shape)
        plain = rng.standard_normal(shape) * np.sqrt(2.0 / float(np.prod(shape[:-1])))
        np.testing.assert_array_equal(layer.kernel.numpy(), plain.astype("float32"), layer.name)


def test_default_init_is_reproducible():
    a = build_network(with_model(weights="none"), seed=0)
    b = build_network(with_model(weights="none"), seed=1)
    assert trunk_fingerprint(a) == trunk_fingerprint(b)


def test_preprocess_layer_equals_resnet_v2_preprocess_input(net):
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    ours = np.asarray(net.full.get_layer("preprocess")(x))
    theirs = keras.applications.resnet_v2.preprocess_input(x.copy())
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_augmentation_is_random_in_training_only():
    aug = build_augmentation(CFG["training"]["augmentation"], seed=0)
    assert [layer.name for layer in aug.layers] == ["flip", "shift", "shear", "rotation", "zoom"]
    x = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)
    assert np.abs(np.asarray(aug(x, training=True)) - x).max() > 1
    off = dict.fromkeys(CFG["training"]["augmentation"], 0)
    assert build_augmentation(off, seed=0) is None


def test_full_model_has_augmentation_only_for_online(net):
    assert net.augmentation is not None and net.full.get_layer("augmentation")
    cfg = copy.deepcopy(CFG)
    cfg["training"]["augment"] = "bank"
    assert build_network(cfg, seed=0).augmentation is None


def test_feature_tag_names_weights_size_and_dtype():
    assert feature_tag(CFG) == "he_normal-s0-32px-float16"
    paper = {"model": {"weights": "imagenet", "input_size": 224}, "compute": {}}
    assert feature_tag(paper) == "imagenet-224px-float16"
    local = {
        "model": {"weights": "/w/resnet50v2_notop.weights.h5", "input_size": 96},
        "compute": {"feature_dtype": "float32"},
    }
    assert feature_tag(local) == "resnet50v2_notop-96px-float32"
    assert TRUNK_OUTPUT == "conv5_block2_out"


def test_feature_files_follow_the_mode():
    cfg = copy.deepcopy(CFG)
    cfg["compute"]["feature_cache"] = True
    cfg["training"]["augment"] = "bank"
    assert feature_files(cfg) == {
        "features": "results/features/he_normal-s0-32px-float16.h5",
        "bank": "results/features/he_normal-s0-32px-float16-bank.h5",
    }
    cfg["training"]["augment"] = "online"
    assert list(feature_files(cfg)) == ["features"]
    cfg["compute"]["feature_cache"] = False
    assert feature_files(cfg) == {}
    assert trunk_weights_files(cfg) == []
    assert trunk_weights_files(with_model(weights="/w/x.h5")) == ["/w/x.h5"]
