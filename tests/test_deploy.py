"""Deploy: the .onnx export matches Keras, the light scoring path imports no TensorFlow, Keras or
Snakemake, the Python API, operating points, and `alnsfw serve` over real HTTP.

Reuses the session's exported smoke model (fixture `exported`, tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from alnsfw.predict.runtime import OnnxModel

pytestmark = pytest.mark.xdist_group("exported")  # tests/conftest.py

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "predict" / "bbb_clip.mp4"


def test_onnx_matches_keras_to_1e4_on_every_test_keyframe(exported, smoke_data):
    import keras

    onnx_path = exported["model"].with_suffix(".onnx")
    rows = pd.read_csv(exported["outputs"]["predictions"])["row"].sort_values().to_numpy()
    with h5py.File(smoke_data.keyframes, "r") as h5:
        images = h5["images"][rows]
    want = keras.saving.load_model(exported["model"], compile=False).predict(images, verbose=0)
    got = OnnxModel(onnx_path).predict_on_batch(images)  # same uint8 RGB input, cast inside
    assert got.shape == want.shape == (len(rows), 2)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.ptp(got[:, 1]) > 1e-3  # a model that learned something, not a constant
    meta = json.loads(exported["model"].with_suffix(".json").read_text())
    assert meta["onnx_file"] == onnx_path.name
    assert meta["check"]["onnx_max_abs_diff_vs_keras"] <= 1e-4


# --- the light install's scoring path -------------------------------------------------------

BLOCKED = ("tensorflow", "keras", "snakemake", "sklearn", "h5py", "jax", "scipy", "yaml")
LIGHT = f"""
import importlib.abc, json, sys
BLOCKED = {BLOCKED!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked on the light path: {{name}}")
        return None
sys.meta_path.insert(0, Block())
from alnsfw.cli import main
from alnsfw.predict.api import Classifier
clf = Classifier(sys.argv[1])
api = clf.predict_images(sys.argv[3:])
video = clf.predict_video(sys.argv[2], frames="every:4")
code = main(["predict", "--model", sys.argv[1], "--out", "out", "--no-progress",
             "--operating-point", "recall=0.9", *sys.argv[2:]])
print(json.dumps({{"code": code, "api": api, "video": video["prob_porn"],
                  "heavy": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}}))
"""


def _keyframe_pngs(smoke_data, folder, n=4):
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(smoke_data.keyframes, "r") as h5:
        images = h5["images"][:n]
    paths = []
    for i, image in enumerate(images):
        path = folder / f"kf{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths, images


def test_light_path_scores_images_and_videos_without_tensorflow_keras_or_snakemake(
    exported, smoke_data, tmp_path
):
    paths, _ = _keyframe_pngs(smoke_data, tmp_path / "imgs")
    onnx_path = exported["model"].with_suffix(".onnx")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-c", LIGHT, str(onnx_path), str(CLIP), *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["heavy"] == [] and got["code"] == 0
    frames = pd.read_csv(tmp_path / "out" / "frames.csv")
    images = frames[frames["kind"] == "image"]
    np.testing.assert_allclose(images["prob_porn"], got["api"], atol=1e-6)  # CLI == API
    assert set(frames["verdict"]) <= {"porn", "non_porn"}
    assert 0.0 <= got["video"] <= 1.0


def test_the_blocker_really_blocks(tmp_path):
    code = LIGHT.split("from alnsfw.cli")[0] + "import keras\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0 and "blocked on the light path: keras" in out.stderr


# --- the Python API -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(exported):
    from alnsfw.predict.api import Classifier

    return Classifier(exported["model"].with_suffix(".onnx"))


def test_api_scores_a_path_an_array_and_bytes_alike(classifier, smoke_data, tmp_path):
    paths, images = _keyframe_pngs(smoke_data, tmp_path)
    data = paths[1].read_bytes()
    by_path = classifier.predict_images(paths)
    assert all(isinstance(p, float) for p in by_path)
    assert classifier.predict_image(images[1]) == pytest.approx(by_path[1], abs=1e-6)
    assert classifier.predict_image(data) == pytest.approx(by_path[1], abs=1e-6)
    direct = classifier.bundle.model.predict_on_batch(images)[:, 1]
    np.testing.assert_allclose(by_path, direct, atol=1e-6)  # PNG round trip is lossless
    verdict = classifier.classify_image(str(paths[0]))
    assert verdict["verdict"] == (
        "porn" if by_path[0] >= classifier.frame_threshold else "non_porn"
    )


def test_api_refuses_bad_images_by_name(classifier, tmp_path):
    from alnsfw.predict.media import MediaError

    with pytest.raises(MediaError, match="cannot be decoded as an image"):
        classifier.predict_image(b"not an image")
    with pytest.raises(MediaError, match="HxWx3"):
        classifier.predict_image(np.zeros((4, 4, 2), np.uint8))


def test_api_video_gives_frames_times_and_a_verdict(classifier):
    result = classifier.predict_video(CLIP, frames="every:10")
    assert result["n_frames"] == len(result["frames"]) > 1
    times = [f["time_s"] for f in result["frames"]]
    assert times == sorted(times) and times[0] == 0.0
    probs = [f["prob_porn"] for f in result["frames"]]
    assert result["prob_porn"] == pytest.approx(classifier.rule.score(probs))
    assert result["verdict"] in ("porn", "non_porn") and result["early_exit"] is False
    same = classifier.predict_video(CLIP.read_bytes(), frames="every:10")
    assert same["prob_porn"] == pytest.approx(result["prob_porn"])


def test_early_exit_stops_once_the_verdict_is_settled(exported):
    from alnsfw.predict.api import Classifier

    # max with a threshold every frame reaches: settled after the first batch
    clf = Classifier(exported["model"].with_suffix(".onnx"), batch_size=2)
    clf.rule = type(clf.rule)("max", 0.0, clf.rule.top_k, clf.rule.frame_threshold)
    full = clf.predict_video(CLIP, frames="every:2")
    early = clf.predict_video(CLIP, frames="every:2", early_exit=True)
    assert early["early_exit"] and early["n_frames"] == 2 < full["n_frames"]
    assert early["verdict"] == full["verdict"] == "porn"
    # mean with a threshold no score can reach: non-porn is certain after the first batch
    clf.rule = type(clf.rule)("mean", 1.01, clf.rule.top_k, clf.rule.frame_threshold)
    early = clf.predict_video(CLIP, frames="every:2", early_exit=True)
    assert early["verdict"] == "non_porn" and early["n_frames"] == 2


def test_settled_bounds_on_hand_made_scores():
    from alnsfw.video_eval import VideoRule

    mean = VideoRule("mean", 0.5, 3, 0.5)
    assert mean.settled([0.9, 0.9, 0.9], remaining=2)  # lowest (2.7 / 5) >= 0.5
    assert not mean.settled([0.9, 0.9], remaining=2)  # 1.8 / 4 < 0.5 still possible
    assert mean.settled([0.0, 0.0, 0.0], remaining=2)  # highest 2 / 5 < 0.5
    assert VideoRule("max", 0.7, 3, 0.5).settled([0.2, 0.8], remaining=100)
    assert not VideoRule("max", 0.7, 3, 0.5).settled([0.2, 0.3], remaining=1)
    frac = VideoRule("fraction", 0.5, top_k=3, frame_threshold=0.5)
    assert frac.settled([0.6, 0.7, 0.1], remaining=1)  # 2 of at least 4 already
    assert not VideoRule("topk_mean", 0.5, top_k=3, frame_threshold=0.5).settled([0.9], remaining=2)


# --- alnsfw serve, over real HTTP on 127.0.0.1 ----------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(exported):
    """`alnsfw serve` on the exported .onnx in its own process; yields its base URL."""
    import httpx

    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "alnsfw.cli", "serve", "--model"]
    cmd += [str(exported["model"].with_suffix(".onnx")), "--port", str(port)]
    cmd += ["--max-bytes", str(300_000), "--threads", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
            import time

            time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_health(server):
    import httpx

    url, _ = server
    health = httpx.get(f"{url}/health").json()
    assert health["status"] == "ok" and health["model"].endswith(".onnx")
    assert health["engine"] == "OnnxModel" and health["max_bytes"] == 300_000


def test_serve_scores_raw_and_multipart_images_like_the_api(
    server, classifier, smoke_data, tmp_path
):
    import httpx

    url, _ = server
    paths, _ = _keyframe_pngs(smoke_data, tmp_path, n=2)
    data = paths[0].read_bytes()
    raw = httpx.post(f"{url}/predict", content=data, headers={"content-type": "image/png"})
    form = httpx.post(f"{url}/predict", files={"file": ("kf.png", data, "image/png")})
    assert raw.status_code == form.status_code == 200, raw.text
    assert raw.json()["kind"] == "image"
    assert raw.json()["prob_porn"] == pytest.approx(classifier.predict_image(data), abs=1e-6)
    assert form.json()["prob_porn"] == pytest.approx(raw.json()["prob_porn"])
    assert raw.json()["verdict"] == classifier.verdict(raw.json()["prob_porn"])


def test_serve_scores_a_video_with_per_frame_scores_and_times(server):
    import httpx

    url, _ = server
    got = httpx.post(f"{url}/predict?frames=every:10", content=CLIP.read_bytes(), timeout=60)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["kind"] == "video" and body["n_frames"] == len(body["frames"]) > 1
    assert {"frame", "time_s", "prob_porn"} <= set(body["frames"][0])
    assert body["verdict"] in ("porn", "non_porn")


@pytest.mark.parametrize(
    ("body", "query", "status", "words"),
    [
        (b"", "", 400, "empty body"),
        (b"hello, not an image", "", 415, "neither an image nor a video"),
        (b"x" * 300_001, "", 413, "over the limit"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "", 415, "neither an image"),  # truncated PNG
        (b"abc", "?frames=every:0", 400, "every:K"),
        (b"abc", "?early_exit=maybe", 400, "early_exit"),
    ],
    ids=["empty", "text", "oversized", "truncated-png", "bad-frames", "bad-early-exit"],
)
def test_serve_answers_bad_bodies_with_a_4xx_and_stays_up(server, body, query, status, words):
    import httpx

    url, proc = server
    got = httpx.post(f"{url}/predict{query}", content=body)
    assert got.status_code == status and words in got.json()["error"], got.text
    assert proc.poll() is None and httpx.get(f"{url}/health").status_code == 200


def test_serve_refuses_a_truncated_video_with_422(server):
    import httpx

    url, _ = server
    data = CLIP.read_bytes()
    got = httpx.post(f"{url}/predict", content=data[: len(data) // 2], timeout=60)
    assert got.status_code in (415, 422), got.text
    assert "video" in got.json()["error"]


# --- operating points -----------------------------------------------------------------------


def test_target_parsing_names_the_fix():
    from alnsfw.predict.operating import Target

    assert Target.parse("recall=0.95") == Target("recall", 0.95)
    assert Target.parse("fpr=0.05") == Target("fpr", 0.05)
    assert Target.parse("accuracy") == Target("accuracy")
    assert Target.parse("0.7") == Target.parse("threshold=0.7") == Target("threshold", 0.7)
    for bad in ("recall", "recall=1.5", "precision=0.9", "accuracy=0.9", ""):
        with pytest.raises(ValueError, match="use accuracy, recall=R"):
            Target.parse(bad)


def test_operating_points_meet_their_targets_on_random_scores():
    from sklearn.metrics import precision_score, recall_score

    from alnsfw.predict.operating import Target, choose, measures, roc_points

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(0.35 * labels + rng.normal(0.35, 0.2, 400), 0, 1)
    curve = roc_points(labels, scores)
    for r in (0.5, 0.8, 0.95, 1.0):
        point = choose(curve, Target("recall", r))
        pred = scores >= point["threshold"]
        assert recall_score(labels, pred) >= r
        assert point["recall"] == pytest.approx(recall_score(labels, pred))
        assert point["precision"] == pytest.approx(precision_score(labels, pred))
        # the highest such threshold: one step up loses the target
        higher = [t for t in curve["threshold"] if t > point["threshold"]]
        assert not higher or recall_score(labels, scores >= min(higher)) < r
    for f in (0.0, 0.05, 0.2):
        point = choose(curve, Target("fpr", f))
        assert measures(labels, scores, point["threshold"])["fpr"] <= f
    best = choose(curve, Target("accuracy"))
    grid = [measures(labels, scores, t)["accuracy"] for t in np.linspace(0, 1, 201)]
    assert best["accuracy"] >= max(grid) - 1e-12


def test_model_json_holds_the_point_and_predict_overrides_it(exported, smoke_data, tmp_path):
    from alnsfw.cli import main
    from alnsfw.predict.operating import Target, pick

    meta = json.loads(exported["model"].with_suffix(".json").read_text())
    point = meta["operating_point"]
    assert point["target"] == "accuracy" and point["n_validation"]["frames"] > 0
    assert {"precision", "recall", "threshold"} <= set(point["frame"])
    assert {"precision", "recall", "fpr", "n"} <= set(point["test"]["frame"])
    assert point["validation_curves"]["frame"]["n_pos"] > 0
    paths, _ = _keyframe_pngs(smoke_data, tmp_path / "imgs")
    onnx_path = str(exported["model"].with_suffix(".onnx"))
    args = ["predict", "--model", onnx_path, "--no-progress", str(tmp_path / "imgs")]
    assert main([*args, "--out", str(tmp_path / "a"), "--operating-point", "threshold=0"]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--operating-point", "1"]) == 0
    assert (pd.read_csv(tmp_path / "a" / "frames.csv")["verdict"] == "porn").all()
    high = pd.read_csv(tmp_path / "b" / "frames.csv")
    assert (high["verdict"] == np.where(high["prob_porn"] >= 1.0, "porn", "non_porn")).all()
    recall = pick(meta, Target("recall", 1.0))["frame"]
    assert recall <= pick(meta, Target("recall", 0.5))["frame"]
    assert main([*args, "--out", str(tmp_path / "c"), "--operating-point", "recall=2"]) == 2
