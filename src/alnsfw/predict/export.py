"""Export a run's trained network as one standard Keras file plus a JSON that says how to use it.

Two steps, because a run cannot know whether it will be exported (export happens on request):

1. Every run (active learning at its final cycle, full supervision) writes `final_weights.h5`:
   the weights of the layers it trained (from `model.trainable_from` on, and the head), by layer
   name, ~1/5 of the network at 224 px (the frozen trunk is rebuilt from the config, and its
   SHA-256 fingerprint is stored to prove it is the same one).
2. Rule `export_model` rebuilds the network without augmentation, loads those weights and saves
   image (RGB, 0-255, uint8 or float) -> Rescaling (ResNetV2's x/127.5-1) -> ResNet50V2 -> head
   -> [P(non-porn), P(porn)] as `<method>.keras`. Only standard Keras layers, so
   `keras.saving.load_model(path)` needs neither this project nor custom objects. It then loads
   the file again and checks that it reproduces the run's own test probabilities
   (predictions.csv) on `export.check_rows` test keyframes, within `export.tolerance`.

Keras APIs only (get_weights / set_weights / save), no backend calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from alnsfw.io import atomic_path, write_json

log = logging.getLogger(__name__)

FORMAT = "alnsfw-model/1"
CLASSES = ["non_porn", "porn"]


def _trained_layers(net: Any) -> list[tuple[str, Any]]:  # noqa: ANN401
    """(group, layer) of every layer a run can change: base from first_trainable on, the head."""
    layers = [("base", layer) for layer in net.base.layers[net.first_trainable :]]
    layers += [("head", layer) for layer in net.head.layers]
    return [(group, layer) for group, layer in layers if layer.weights]


def save_trainable_weights(net: Any, path: str | Path) -> None:  # noqa: ANN401
    """Write the trained layers' weights (and the trunk fingerprint) to `path`, atomically."""
    from alnsfw.model.network import trunk_fingerprint

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for group, layer in _trained_layers(net):
            g = f.create_group(f"{group}/{layer.name}")
            for i, value in enumerate(layer.get_weights()):
                g.create_dataset(f"{i:03d}", data=np.asarray(value))
        f.attrs["format"] = FORMAT
        f.attrs["trunk_fingerprint"] = trunk_fingerprint(net)


def load_trainable_weights(net: Any, path: str | Path) -> None:  # noqa: ANN401
    """Inverse of save_trainable_weights; refuses a file made with another trunk or layout."""
    from alnsfw.model.network import trunk_fingerprint

    with h5py.File(path, "r") as f:
        if f.attrs.get("trunk_fingerprint") != trunk_fingerprint(net):
            raise ValueError(
                f"{path} was trained on another frozen trunk than the one this config builds "
                "(model.weights / model.weights_seed changed?): rerun the run, then export."
            )
        expected = {f"{group}/{layer.name}" for group, layer in _trained_layers(net)}
        stored = {f"{g}/{name}" for g in f for name in f[g]}
        if expected != stored:
            raise ValueError(
                f"{path} holds the layers {sorted(stored ^ expected)} that this config's network "
                "does not have, or lacks them (model.trainable_from or model.head changed?)."
            )
        for group, layer in _trained_layers(net):
            g = f[f"{group}/{layer.name}"]
            layer.set_weights([g[k][()] for k in sorted(g)])


def inference_model(net: Any) -> Any:  # noqa: ANN401
    """image (RGB 0-255) -> probabilities, sharing `net`'s trained layers; no augmentation."""
    import keras

    size = int(net.base.input.shape[1])
    image = keras.Input(shape=(size, size, 3), name="image")
    # = keras.applications.resnet_v2.preprocess_input, as a standard layer
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(image)
    return keras.Model(image, net.head(net.base(x)), name="alnsfw_classifier")


def config_hash(settings: Mapping[str, Any]) -> str:
    """SHA-256 of the settings that determined a run (the run rule's params), key order aside."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def final_video_rule(results_csv: str | Path, video_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The video rule of a run's last cycle (cycles.csv) or of a baseline (metrics.csv)."""
    frame = pd.read_csv(results_csv)
    if "cycle" in frame.columns:
        frame = frame.sort_values("cycle")
    last = frame.iloc[-1]
    aggregation, threshold = last.get("video_aggregation"), last.get("video_threshold")
    if not isinstance(aggregation, str) or not np.isfinite(float(threshold)):
        raise ValueError(
            f"{results_csv} has no video-level rule (video_aggregation / video_threshold): it was "
            "written before video-level evaluation existed; rerun that run."
        )
    return {
        "aggregation": aggregation,
        "threshold": float(threshold),
        "top_k": int(video_cfg.get("top_k", 3)),
        "frame_threshold": float(video_cfg.get("frame_threshold", 0.5)),
        "chosen_on": "validation split of the source run",
        "source_row": {k: _plain(last[k]) for k in last.index if k in _SOURCE_KEYS},
    }


_SOURCE_KEYS = (
    "cycle",
    "n_labelled",
    "pct_labelled",
    "accuracy",
    "f1",
    "roc_auc",
    "video_accuracy",
    "video_f1",
    "video_roc_auc",
    "n_test_videos",
)


def _plain(value: Any) -> Any:  # noqa: ANN401
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def check_rows(test_rows: np.ndarray, n: int) -> np.ndarray:
    """Up to `n` test rows, evenly spread over the test set (all of them when n >= its size)."""
    test_rows = np.asarray(test_rows, dtype=np.int64)
    if n <= 0 or len(test_rows) == 0:
        return test_rows[:0]
    if n >= len(test_rows):
        return test_rows
    return test_rows[np.linspace(0, len(test_rows) - 1, n).round().astype(np.int64)]


def export_model(
    config: dict[str, Any],
    weights: str,
    results: str,
    predictions: str,
    keyframes: str,
    outputs: Mapping[str, str],
    run: Mapping[str, Any],
) -> dict[str, Any]:
    """Write outputs["model"] (.keras) and outputs["meta"] (.json) for one run; returns the JSON.

    `config`: the run's settings (model, training, compute, ...) plus `video`, `keyframes` and
    `export`; `results`: its cycles.csv or metrics.csv; `run`: fold, seed, method.
    """
    from alnsfw.model import backend

    backend.prepare(config, seed=0)  # compute.backend (before Keras), threads, devices
    import keras

    from alnsfw.model.network import build_network

    net = build_network(config, seed=0, augment=False)
    load_trainable_weights(net, weights)
    model = inference_model(net)
    with atomic_path(outputs["model"]) as tmp:
        model.save(tmp)

    # The promise of the file: loaded alone, it gives the run's own test probabilities.
    export_cfg = config.get("export", {})
    tolerance = float(export_cfg.get("tolerance", 0.02))
    table = pd.read_csv(predictions)
    rows = check_rows(table["row"].to_numpy(), int(export_cfg.get("check_rows", 64)))
    max_diff = float("nan")
    if len(rows):
        with h5py.File(keyframes, "r") as h5:
            order = np.unique(rows)
            images = h5["images"][order]
        loaded = keras.saving.load_model(outputs["model"], compile=False)
        got = np.asarray(loaded.predict(images, batch_size=32, verbose=0))[:, 1]
        want = table.set_index("row").loc[order, "prob_porn"].to_numpy(dtype=np.float64)
        max_diff = float(np.max(np.abs(got - want)))
        log.info(
            "exported model vs the run's predictions.csv: max |diff| %.3g on %d rows",
            max_diff,
            len(order),
        )
        if not max_diff <= tolerance:
            Path(outputs["model"]).unlink(missing_ok=True)
            raise ValueError(
                f"the exported model differs from the run's own test probabilities by up to "
                f"{max_diff:.3g} (> export.tolerance {tolerance:g}) on {len(order)} test "
                f"keyframes: the weights in {weights} do not match {predictions}."
            )
    keyframes_cfg = config.get("keyframes", {})
    meta = {
        "format": FORMAT,
        "model_file": Path(outputs["model"]).name,
        "input": {
            "size": int(config["model"]["input_size"]),
            "layout": "HxWx3 RGB, values 0-255, uint8 or float32 (preprocessing is inside)",
            "resize": keyframes_cfg.get("resize", "pad"),
        },
        "output": "softmax probabilities in class order",
        "classes": CLASSES,
        "video": final_video_rule(results, config.get("video", {})),
        "keyframes": {
            k: keyframes_cfg[k]
            for k in ("method", "threshold", "position", "min_shot_seconds")
            if k in keyframes_cfg
        },
        "source_run": {
            "fold": int(run["fold"]),
            "seed": int(run["seed"]),
            "method": str(run["method"]),
            "weights": str(weights),
            "results": str(results),
        },
        "config_sha256": config_hash({k: v for k, v in config.items() if k != "export"}),
        "check": {
            "test_rows": int(len(rows)),
            "max_abs_diff": _plain(max_diff),
            "tolerance": tolerance,
        },
        "keras_version": keras.__version__,
    }
    write_json(outputs["meta"], meta)
    return meta
