"""Export a run's trained network as one standard Keras file plus a JSON that says how to use it.

Two steps, because a run cannot know whether it will be exported (export happens on request):

1. Every run (active learning at its final cycle, full supervision) writes `final_weights.h5`:
   the weights of the layers it trained (from `model.trainable_from` on, and the head), by layer
   name, ~1/5 of the network at 224 px (the frozen trunk is rebuilt from the config, and its
   SHA-256 fingerprint is stored to prove it is the same one); alnsfw.model.weights.
2. Rule `export_model` rebuilds the network without augmentation, loads those weights and saves
   image (RGB, 0-255, uint8 or float) -> Rescaling (ResNetV2's x/127.5-1) -> ResNet50V2 -> head
   -> [P(non-porn), P(porn)] as `<method>.keras`. Only standard Keras layers, so
   `keras.saving.load_model(path)` needs neither this project nor custom objects. It then loads
   the file again and checks that it reproduces the run's own test probabilities
   (predictions.csv) on `export.check_rows` test keyframes, within `export.tolerance`.

3. Beside it, `<method>.onnx`: the same network (same input, same class order) converted by
   Keras' own `model.export(format="onnx")` (tf2onnx under TensorFlow), for scoring without
   TensorFlow (alnsfw.predict.runtime). Loaded in ONNX Runtime, it must give Keras' P(porn) on
   the same check keyframes within `export.onnx_tolerance` (1e-4), or the export fails.

Keras APIs only (get_weights / set_weights / save / export), no backend calls.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from alnsfw.data.keyframes import KeyframeSettings
from alnsfw.io import atomic_path, write_json
from alnsfw.model.weights import FORMAT, load_trainable_weights
from alnsfw.schema import config_section
from alnsfw.video_eval import VideoSettings

log = logging.getLogger(__name__)

CLASSES = ["non_porn", "porn"]


@dataclass(frozen=True)
class ExportSettings:
    """Config section `export` as rule export_model uses it (`runs` is the workflow's). Keys a
    partial config (tests, a campaign) leaves out come from the schema, the one place that states
    the defaults."""

    check_rows: int  # test keyframes the exported file re-predicts (0: skip the check)
    tolerance: float  # largest |P(porn)| difference to the run's own predictions
    onnx_tolerance: float  # largest |P(porn)| difference of the .onnx file to the .keras one
    operating_point: str  # target of the frame and video thresholds (docs/deploy.md)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ExportSettings:
        """The `export` section of a (possibly partial) config."""
        export = config_section(cfg, "export")
        return cls(
            check_rows=int(export["check_rows"]),
            tolerance=float(export["tolerance"]),
            onnx_tolerance=float(export["onnx_tolerance"]),
            operating_point=str(export["operating_point"]),
        )


def inference_model(net: Any) -> Any:  # noqa: ANN401
    """image (RGB 0-255) -> probabilities, sharing `net`'s trained layers; no augmentation.

    Base and head are called with `training=False`, written in the model's graph: a call of the
    exported model that does not say `training` (a user's `model(x)`, and the trace that
    `model.export` converts to ONNX) runs in inference mode whatever defaults its layers declare.
    Without it, a layer whose `call` defaults to training=True (Keras' Resizing in the
    open_nsfw trunk) put every later layer in training mode: the head's Dropout became a random
    op in the ONNX file (alnsfw.model.open_nsfw.apply_preprocess).
    """
    import keras

    size = int(net.full.input.shape[1])
    image = keras.Input(shape=(size, size, 3), name="image")
    # The network's own: ResNet50V2's preprocess_input (x / 127.5 - 1) as a standard layer, or
    # for model.trunk: open_nsfw an identity (its base resizes and subtracts the BGR means itself)
    x = net.preprocess(image)
    features = net.base(x, training=False)
    return keras.Model(image, net.head(features, training=False), name="alnsfw_classifier")


def config_hash(settings: Mapping[str, Any]) -> str:
    """SHA-256 of the settings that determined a run (the run rule's params), key order aside."""
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def final_video_rule(results_csv: str | Path, settings: VideoSettings) -> dict[str, Any]:
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
        "top_k": settings.top_k,
        "frame_threshold": settings.frame_threshold,
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


def check_onnx(
    outputs: Mapping[str, str], images: np.ndarray, keras_prob: np.ndarray, tolerance: float
) -> float:
    """Max |P(porn) ONNX Runtime - Keras| on `images`; deletes both files when over tolerance."""
    from alnsfw.predict.runtime import OnnxModel

    onnx_prob = OnnxModel(outputs["onnx"]).predict_on_batch(images)[:, 1]
    diff = float(np.max(np.abs(onnx_prob.astype(np.float64) - keras_prob)))
    log.info("ONNX Runtime vs Keras: max |diff| %.3g on %d keyframes", diff, len(images))
    if not diff <= tolerance:
        for key in ("model", "onnx"):
            Path(outputs[key]).unlink(missing_ok=True)
        raise ValueError(
            f"{outputs['onnx']} differs from the .keras model by up to {diff:.3g} "
            f"(> export.onnx_tolerance {tolerance:g}) on {len(images)} test keyframes: the "
            "ONNX conversion changed the network (tf2onnx / onnx versions?)."
        )
    return diff


def _probabilities(model: Any, images: Any, rows: np.ndarray) -> np.ndarray:  # noqa: ANN401
    """P(porn) of keyframe `rows` (sorted) of an h5 `images` dataset, read 256 at a time."""
    out = [
        np.asarray(model.predict(images[rows[i : i + 256]], batch_size=32, verbose=0))[:, 1]
        for i in range(0, len(rows), 256)
    ]
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def operating_point(
    model: Any,  # noqa: ANN401 - a loaded Keras model
    keyframes: str,
    split: str,
    predictions: pd.DataFrame,
    video_rule: Mapping[str, Any],
    target_text: str,
) -> dict[str, Any]:
    """The model JSON's `operating_point`: thresholds for `target_text` chosen on the split's
    validation keyframes and videos (alnsfw.predict.operating), the validation curves, and the
    test precision/recall at the point (test = the run's own predictions.csv)."""
    from alnsfw.predict import operating as op
    from alnsfw.video_eval import VideoRule, video_scores

    target = op.Target.parse(target_text)
    val = np.sort(np.asarray(json.loads(Path(split).read_text())["val"], dtype=np.int64))
    with h5py.File(keyframes, "r") as h5:
        labels = np.asarray(h5["label"][:], dtype=np.int64)
        video = np.asarray(h5["video"].asstr()[:], dtype=object)
        video_label = np.asarray(h5["video_label"][:], dtype=np.int64)
        val_prob = _probabilities(model, h5["images"], val)
    rule = VideoRule.from_dict(video_rule)
    test_rows = predictions["row"].to_numpy(dtype=np.int64)
    test_prob = predictions["prob_porn"].to_numpy(dtype=np.float64)
    val_videos = video_scores(video[val], val_prob, rule, video_label[val])
    test_videos = video_scores(video[test_rows], test_prob, rule, video_label[test_rows])
    curves = {"frame": op.roc_points(labels[val], val_prob)}
    point = {"frame": op.choose(curves["frame"], target)}
    try:
        curves["video"] = op.roc_points(val_videos["label"], val_videos["score"])
        point["video"] = op.choose(curves["video"], target)
    except ValueError as err:  # e.g. frame-level validation whose fragments are of one class
        log.warning("video operating point: %s; keeping the run's video threshold", err)
        point["video"] = {"threshold": float(rule.threshold), "note": str(err)}
    test_frame = predictions["label"].to_numpy(dtype=np.int64)
    return {
        "target": str(target),
        "chosen_on": "validation split of the source run",
        "n_validation": {"frames": int(len(val)), "videos": int(len(val_videos))},
        "frame": point["frame"],
        "video": point["video"],
        "test": {
            "frame": op.measures(test_frame, test_prob, point["frame"]["threshold"]),
            "video": op.measures(
                test_videos["label"], test_videos["score"], point["video"]["threshold"]
            ),
        },
        "validation_curves": curves,
    }


def export_onnx_with_tensorflow(keras_file: str, onnx_file: str) -> None:
    """Convert a saved .keras file to ONNX in a TensorFlow-backend process.

    Why: Keras converts through tf2onnx only on TensorFlow (JAX would need jax2onnx, not a
    dependency); the .keras file is backend-neutral, so a run trained on JAX is converted the
    same way as one trained on TensorFlow, and checked against Keras all the same."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, keras\n"
        "import numpy as np\n"
        "m = keras.saving.load_model(sys.argv[1], compile=False)\n"
        "m(np.zeros((1, *m.input_shape[1:]), np.float32))  # export traces a called model\n"
        "m.export(sys.argv[2], format='onnx', verbose=False)\n"
    )
    # tf2onnx without its safety copies there too (_tf2onnx_failing_loudly says why)
    env = os.environ | {
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF2ONNX_CATCH_ERRORS": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", code, keras_file, onnx_file], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"converting {keras_file} to ONNX on TensorFlow failed: {done.stderr[-2000:]}"
        )


@contextlib.contextmanager
def _tf2onnx_failing_loudly() -> Iterator[None]:
    """tf2onnx's optimizer without its safety copies, for the conversion inside the block.

    By default tf2onnx 1.17 deep-copies the whole graph, weights included, before each of its
    optimizer passes, to fall back to the copy if a pass fails: 8 of the 12 s that the optimizer
    took on the demo's ResNet50V2 (py-spy, docs/speed.md). Any value of TF2ONNX_CATCH_ERRORS
    turns that off (tf2onnx/convert.py compares the variable's name, not its value, to "TRUE"),
    so a failing pass raises instead of being skipped; the ONNX-vs-Keras check below catches
    any other change. The same passes run: the demo's file had the same nodes and weights as
    with the copies, only tf2onnx's generated initializer names differed.
    """
    name = "TF2ONNX_CATCH_ERRORS"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


def export_model(
    config: dict[str, Any],
    weights: str,
    results: str,
    predictions: str,
    keyframes: str,
    outputs: Mapping[str, str],
    run: Mapping[str, Any],
    split: str | None = None,
) -> dict[str, Any]:
    """Write outputs["model"] (.keras), outputs["onnx"] (.onnx, when given) and outputs["meta"]
    (.json) for one run; returns the JSON.

    `config`: the run's settings (model, training, compute, ...) plus `video`, `keyframes` and
    `export`; `results`: its cycles.csv or metrics.csv; `run`: fold, seed, method; `split`: its
    split JSON, whose validation rows choose the operating point (export.operating_point).
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
    if outputs.get("onnx"):
        size = int(config["model"]["input_size"])
        with atomic_path(outputs["onnx"]) as tmp:
            if keras.backend.backend() == "tensorflow":
                model(np.zeros((1, size, size, 3), np.float32))  # export traces a called model
                with _tf2onnx_failing_loudly():
                    model.export(str(tmp), format="onnx", verbose=False)
            else:
                export_onnx_with_tensorflow(outputs["model"], str(tmp))

    # The promise of the file: loaded alone, it gives the run's own test probabilities.
    settings = ExportSettings.from_config(config)
    tolerance = settings.tolerance
    table = pd.read_csv(predictions)
    rows = check_rows(table["row"].to_numpy(), settings.check_rows)
    max_diff = onnx_diff = float("nan")
    # Loaded once (1.7 s for the demo's ResNet50V2), when the checks or the operating point need
    # it: both use the file as a user gets it.
    loaded = (
        keras.saving.load_model(outputs["model"], compile=False)
        if len(rows) or split is not None
        else None
    )
    if len(rows):
        with h5py.File(keyframes, "r") as h5:
            order = np.unique(rows)
            images = h5["images"][order]
        got = np.asarray(loaded.predict(images, batch_size=32, verbose=0))[:, 1]
        want = table.set_index("row").loc[order, "prob_porn"].to_numpy(dtype=np.float64)
        max_diff = float(np.max(np.abs(got - want)))
        if outputs.get("onnx"):
            onnx_diff = check_onnx(outputs, images, got, settings.onnx_tolerance)
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
    video_rule = final_video_rule(results, VideoSettings.from_config(config))
    point = None
    if split is not None:
        point = operating_point(
            loaded,
            keyframes,
            split,
            table,
            video_rule,
            settings.operating_point,
        )
        # predict's default video verdict is the operating point's; the run's own stays beside
        video_rule["run_threshold"] = video_rule["threshold"]
        video_rule["threshold"] = point["video"]["threshold"]
    meta = {
        "format": FORMAT,
        "model_file": Path(outputs["model"]).name,
        "onnx_file": Path(outputs["onnx"]).name if outputs.get("onnx") else None,
        "input": {
            "size": int(config["model"]["input_size"]),
            "layout": "HxWx3 RGB, values 0-255, uint8 or float32 (preprocessing is inside)",
            "resize": KeyframeSettings.from_config(config).resize,
        },
        "output": "softmax probabilities in class order",
        "classes": CLASSES,
        "video": video_rule,
        "operating_point": point,
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
            "onnx_max_abs_diff_vs_keras": _plain(onnx_diff) if outputs.get("onnx") else None,
            "onnx_tolerance": settings.onnx_tolerance,
        },
        "keras_version": keras.__version__,
    }
    write_json(outputs["meta"], meta)
    return meta
