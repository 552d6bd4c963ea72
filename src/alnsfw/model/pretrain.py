"""One-time pretraining of the ResNet50V2 trunk on a synthetic proxy task (`model.weights: proxy`).

The paper freezes an ImageNet-pretrained trunk and trains only its top. ImageNet weights cannot be
downloaded on every machine, and a frozen *random* trunk gives features a small head barely
separates (the demo scored near the majority rate with `he_normal`). This module stands in for
ImageNet on a small scale: it trains the whole ResNet50V2 once on a *different* synthetic task,
so the trunk learns generic shape, texture and colour features, and the workflow then freezes it
exactly as the paper freezes ImageNet's.

The proxy task shares nothing with the dataset: its images come from their own generator and seed
(never a keyframe, so no test image leaks into the trunk), and its classes are not the dataset's.
Each image shows one kind of *figure* (ellipses, rectangles, triangles, stripes, a checkerboard,
scattered dots, lines or rings) in one *colour family* (skin tones, other warm colours, cool
colours, greys) over a gradient background of another family; the class is the pair (8 x 4 = 32
classes). Like ImageNet, whose classes include people and textures, it teaches what a figure's
shape and colour are, not which combination the downstream task cares about.

Everything is drawn from `pretrain.seed` and trained deterministically (backend.prepare), so the
same config gives the same weights (on one backend: TensorFlow and JAX round differently).
"""

from __future__ import annotations

import colorsys
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import keras
import numpy as np

from alnsfw.io import atomic_path
from alnsfw.model import backend
from alnsfw.model.network import he_normal_reinit
from alnsfw.schema import config_section

log = logging.getLogger(__name__)

FIGURES = ("ellipses", "rectangles", "triangles", "stripes", "checker", "dots", "lines", "rings")
COLOURS = ("skin", "warm", "cool", "grey")
N_CLASSES = len(FIGURES) * len(COLOURS)
# Batch-norm momentum while pretraining: the default 0.99 would leave the moving statistics (what
# the frozen trunk uses later) ~40% at their initial values after the ~100 steps of a proxy run.
_BN_MOMENTUM = 0.9
_SKIN = np.array([[255, 224, 196], [234, 192, 160], [198, 134, 94], [141, 85, 54], [96, 60, 40]])


# --------------------------------------------------------------------------------------------
# The proxy images


def _colour(family: str, rng: np.random.Generator) -> np.ndarray:
    """One RGB colour (0-255 floats) of a colour family."""
    if family == "skin":
        t = rng.uniform(0, len(_SKIN) - 1)
        i = min(int(t), len(_SKIN) - 2)
        tone = _SKIN[i] + (t - i) * (_SKIN[i + 1] - _SKIN[i])
        return np.clip(tone + rng.normal(0, 8, 3), 0, 255)
    if family == "grey":
        return np.full(3, rng.uniform(30, 230)) + rng.normal(0, 3, 3)
    hue = rng.uniform(-20, 60) if family == "warm" else rng.uniform(100, 290)
    sat = rng.uniform(0.6, 1.0) if family == "warm" else rng.uniform(0.35, 0.95)
    r, g, b = colorsys.hsv_to_rgb((hue % 360) / 360, sat, rng.uniform(0.35, 0.95))
    return np.array([r, g, b]) * 255


def _jitter(colour: np.ndarray, rng: np.random.Generator) -> tuple[float, ...]:
    return tuple(float(c) for c in np.clip(colour + rng.normal(0, 8, 3), 0, 255))


def _draw_figure(
    canvas: np.ndarray, figure: str, colour: np.ndarray, rng: np.random.Generator
) -> None:
    """Draw one `figure` in shades of `colour` onto `canvas` (float32 HxWx3), in place."""
    h, w = canvas.shape[:2]
    s = min(h, w)
    aa = cv2.LINE_AA

    def centre() -> tuple[int, int]:
        return int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.1, 0.9) * h)

    if figure in ("stripes", "checker"):
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(0.1, 0.3) * s
        u = xx * np.cos(theta) + yy * np.sin(theta)
        mask = (u % period) < period / 2
        if figure == "checker":
            v = -xx * np.sin(theta) + yy * np.cos(theta)
            mask ^= (v % period) < period / 2
        canvas[mask] = _jitter(colour, rng)
        return
    if figure == "dots":
        for _ in range(rng.integers(15, 40)):
            r = max(1, int(rng.uniform(0.02, 0.06) * s))
            cv2.circle(canvas, centre(), r, _jitter(colour, rng), -1, aa)
        return
    for _ in range(rng.integers(1, 4)):
        c, col = centre(), _jitter(colour, rng)
        a, b = int(rng.uniform(0.1, 0.3) * s) + 1, int(rng.uniform(0.1, 0.3) * s) + 1
        angle = rng.uniform(0, 180)
        if figure == "ellipses":
            cv2.ellipse(canvas, c, (a, b), angle, 0, 360, col, -1, aa)
        elif figure == "rings":
            thickness = max(1, int(min(a, b) * rng.uniform(0.2, 0.4)))
            cv2.ellipse(canvas, c, (a, b), angle, 0, 360, col, thickness, aa)
        elif figure == "rectangles":
            box = cv2.boxPoints(((float(c[0]), float(c[1])), (2.0 * a, 2.0 * b), angle))
            cv2.fillPoly(canvas, [np.round(box).astype(np.int32)], col, aa)
        elif figure == "triangles":
            phi = np.deg2rad(angle) + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])
            pts = np.stack([c[0] + a * np.cos(phi), c[1] + a * np.sin(phi)], axis=1)
            cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], col, aa)
        else:  # lines
            for _ in range(rng.integers(1, 3)):
                p0, p1 = centre(), centre()
                cv2.line(canvas, p0, p1, _jitter(colour, rng), max(1, s // 24), aa)


def proxy_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One proxy image (RGB uint8, size x size) of class `label` (figure * 4 + colour family)."""
    figure, family = FIGURES[label // len(COLOURS)], COLOURS[label % len(COLOURS)]
    back = [f for f in COLOURS if f != family]
    top = _colour(back[rng.integers(len(back))], rng)
    bottom = _colour(back[rng.integers(len(back))], rng)
    ramp = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    if rng.random() < 0.5:  # vertical or horizontal gradient
        ramp = ramp.transpose(1, 0, 2)
    canvas = np.ascontiguousarray(
        np.broadcast_to(top + ramp * (bottom - top), (size, size, 3)), dtype=np.float32
    )
    _draw_figure(canvas, figure, _colour(family, rng), rng)
    canvas += rng.normal(0, 4.0, canvas.shape).astype(np.float32)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def proxy_dataset(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` proxy images [n,size,size,3] uint8 and their labels [n] int32, balanced over classes.

    Labels cycle through the classes (so every class has n // N_CLASSES or one more) in a
    shuffled order; one NumPy stream from `seed` draws everything.
    """
    rng = np.random.default_rng([int(seed), 0x5EED])
    labels = rng.permutation(np.arange(n) % N_CLASSES).astype(np.int32)
    images = np.stack([proxy_image(int(y), size, rng) for y in labels]) if n else None
    if images is None:
        images = np.zeros((0, size, size, 3), np.uint8)
    return images, labels


# --------------------------------------------------------------------------------------------
# Pretraining


def build_proxy_model(size: int, seed: int) -> tuple[keras.Model, keras.Model]:
    """ResNet50V2 (no top; He-normal kernels from `seed`) + GAP + softmax over the proxy classes.

    Returns (classifier, base); the base is what is saved and later frozen. He-normal kernels
    rather than Keras' default because the deep pre-activation stack then trains from the first
    step (the default initialisation's features are nearly constant, see network.py).
    """
    keras.utils.set_random_seed(seed)
    base = keras.applications.ResNet50V2(
        include_top=False, weights=None, input_shape=(size, size, 3)
    )
    he_normal_reinit(base, seed)
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = _BN_MOMENTUM
    image = keras.Input(shape=(size, size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(image)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(base(x))
    out = keras.layers.Dense(N_CLASSES, activation="softmax", name="proxy_classes")(x)
    return keras.Model(image, out, name="proxy_classifier"), base


def pretrain_trunk(
    out_weights: str | Path, cfg: dict[str, Any], threads: int = 1
) -> dict[str, float]:
    """Train ResNet50V2 on the proxy task and write its base's weights to `out_weights`.

    `cfg` holds `pretrain` (images, epochs, batch_size, learning_rate, seed, holdout),
    `model.input_size` (the size the trunk is trained at and later used at) and optionally
    `compute` (backend, gpu). The file is a Keras
    `.weights.h5` of `ResNet50V2(include_top=False)`, loadable as `model.weights`; it is written
    under a temporary name and renamed when complete. A held-out set of proxy images (drawn after
    the training images) measures whether the proxy task was learnt; its accuracy is logged and
    returned with the training time.
    """
    pre = config_section(cfg, "pretrain")
    size = int(cfg["model"]["input_size"])
    seed = int(pre["seed"])
    backend.prepare(cfg, seed, threads=threads)
    n_train, n_hold = int(pre["images"]), int(pre["holdout"])
    images, labels = proxy_dataset(n_train + n_hold, size, seed)
    x_train, y_train = images[:n_train], labels[:n_train]
    log.info(
        "proxy task: %d training + %d held-out images, %d classes, %d px",
        n_train,
        n_hold,
        N_CLASSES,
        size,
    )
    model, base = build_proxy_model(size, seed)
    model.compile(
        optimizer=keras.optimizers.Adam(float(pre["learning_rate"])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    class _Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            log.info(
                "epoch %d/%d: loss %.4f, accuracy %.3f",
                epoch + 1,
                int(pre["epochs"]),
                logs.get("loss", float("nan")),
                logs.get("accuracy", float("nan")),
            )

    start = time.perf_counter()
    model.fit(
        x_train.astype(np.float32),
        y_train,
        batch_size=int(pre["batch_size"]),
        epochs=int(pre["epochs"]),
        shuffle=True,
        verbose=0,
        callbacks=[_Progress()],
    )
    seconds = time.perf_counter() - start
    result = {"images": float(n_train), "seconds": seconds, "holdout_accuracy": float("nan")}
    if n_hold:
        probs = model.predict(images[n_train:].astype(np.float32), batch_size=64, verbose=0)
        result["holdout_accuracy"] = float(np.mean(probs.argmax(1) == labels[n_train:]))
        log.info(
            "held-out proxy accuracy %.3f (chance %.3f)", result["holdout_accuracy"], 1 / N_CLASSES
        )
    with atomic_path(out_weights) as tmp:
        base.save_weights(tmp)
    log.info("pretrained trunk in %.1f s -> %s", seconds, out_weights)
    return result
