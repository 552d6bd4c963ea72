"""Export a trained run and use it: .keras equivalence in a fresh process, `alnsfw predict` on
images, a folder, synthetic and real videos, and bad inputs.

One tiny full-supervision run (smoke dataset, 32 px, He-normal trunk, online augmentation so
the learner's full model holds augmentation layers that the export must leave out) is trained
once for the session (fixture `exported` in conftest.py; tests/test_deploy.py uses it too).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest

from alnsfw.cli import main
from alnsfw.data.keyframes import KeyframeSettings, extract_from_video
from alnsfw.predict.export import export_model
from alnsfw.predict.run import load_bundle, parse_sampling, predict

pytestmark = pytest.mark.xdist_group("exported")  # tests/conftest.py

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "tests" / "data" / "predict" / "bbb_clip.mp4"


def keyframe_settings(**section: object) -> KeyframeSettings:
    """The schema's keyframe settings with `section` over them, at 32 px."""
    return KeyframeSettings.from_config({"keyframes": {"size": 32, **section}})


@pytest.fixture(scope="module")
def bundle(exported):
    """The exported model loaded once (loading 95 MB of ResNet50V2 takes seconds)."""
    return load_bundle(exported["model"])


FRESH = """
import json, sys
import h5py, keras, numpy as np
model = keras.saving.load_model(sys.argv[1])
rows = json.loads(sys.argv[3])
with h5py.File(sys.argv[2], "r") as f:
    images = f["images"][sorted(rows)]
layers = [type(l).__name__ for l in model._flatten_layers(include_self=False, recursive=True)]
print(json.dumps({
    "uint8": model.predict(images, verbose=0)[:, 1].tolist(),
    "float": model.predict(images.astype("float32"), verbose=0)[:, 1].tolist(),
    "sums": model.predict(images, verbose=0).sum(axis=1).tolist(),
    "modules": sorted(m for m in sys.modules if m.startswith("alnsfw")),
    "layers": layers,
}))
"""


def test_exported_model_reproduces_the_runs_test_probabilities_in_a_fresh_process(
    exported, smoke_data
):
    predictions = pd.read_csv(exported["outputs"]["predictions"]).sort_values("row")
    rows = predictions["row"].tolist()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    args = [str(exported["model"]), str(smoke_data.keyframes), json.dumps(rows)]
    out = subprocess.run(
        [sys.executable, "-c", FRESH, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=exported["root"],
        check=True,
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["modules"] == []  # keras alone loaded it: no project code, no custom objects
    np.testing.assert_allclose(got["uint8"], predictions["prob_porn"], atol=1e-5)
    np.testing.assert_allclose(got["float"], got["uint8"], atol=1e-6)
    np.testing.assert_allclose(got["sums"], 1.0, atol=1e-5)
    assert not [name for name in got["layers"] if name.startswith("Random")]  # no augmentation
    assert "Rescaling" in got["layers"]  # preprocessing inside
    # and the model really learned something different from a constant
    assert np.ptp(got["uint8"]) > 1e-3


def test_export_json_describes_the_model(exported, smoke_data):
    meta = json.loads(exported["model"].with_suffix(".json").read_text())
    assert meta["input"]["size"] == 32 and meta["classes"] == ["non_porn", "porn"]
    metrics = pd.read_csv(exported["outputs"]["metrics"]).iloc[0]
    assert meta["video"]["aggregation"] == metrics["video_aggregation"]
    assert meta["video"]["run_threshold"] == pytest.approx(metrics["video_threshold"])
    assert meta["video"]["threshold"] == meta["operating_point"]["video"]["threshold"]
    assert meta["source_run"] == {**meta["source_run"], "fold": 0, "seed": 0, "method": "full"}
    assert len(meta["config_sha256"]) == 64
    assert meta["check"]["test_rows"] > 0 and meta["check"]["max_abs_diff"] < 1e-4


def test_export_refuses_weights_of_another_trunk(exported, tmp_path, smoke_data):
    cfg = copy.deepcopy(exported["cfg"])
    cfg["model"]["weights_seed"] = 1  # another He-normal draw: another frozen trunk
    with pytest.raises(ValueError, match="another frozen trunk"):
        export_model(
            config=cfg,
            weights=exported["outputs"]["weights"],
            results=exported["outputs"]["metrics"],
            predictions=exported["outputs"]["predictions"],
            keyframes=str(smoke_data.keyframes),
            outputs={"model": str(tmp_path / "m.keras"), "meta": str(tmp_path / "m.json")},
            run={"fold": 0, "seed": 0, "method": "full"},
        )
    assert not (tmp_path / "m.keras").exists()


def _keyframe_pngs(smoke_data, folder: Path, n: int = 5) -> tuple[list[Path], np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(smoke_data.keyframes, "r") as f:
        images = f["images"][:n]
    paths = []
    for i, image in enumerate(images):
        path = folder / ("sub" if i % 2 else "") / f"k{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths, images


def test_predict_images_and_folder_match_the_model(bundle, smoke_data, tmp_path):
    paths, images = _keyframe_pngs(smoke_data, tmp_path / "imgs")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image, ignored in a folder\n")
    direct = bundle.model.predict_on_batch(images)[:, 1]
    result = predict(bundle, [paths[0], tmp_path / "imgs"], out_dir=tmp_path / "out")
    frames = pd.read_csv(tmp_path / "out" / "frames.csv")
    assert list(frames.columns) == ["input", "kind", "frame", "time_s", "prob_porn", "verdict"]
    assert len(frames) == 1 + len(paths)  # the file given twice is scored twice, as asked
    assert (frames["kind"] == "image").all() and frames["frame"].isna().all()
    by_path = frames.drop_duplicates("input").set_index("input")["prob_porn"]
    got = [by_path[str(p)] for p in paths]
    np.testing.assert_allclose(got, direct, atol=1e-5)  # PNG is lossless, the size is the model's
    assert result.ignored == 1 and result.errors == []
    assert pd.read_csv(tmp_path / "out" / "videos.csv").empty


def test_predict_synthetic_video_uses_the_workflows_keyframes(bundle, smoke_data, tmp_path):
    video = sorted((smoke_data.root / "Database").rglob("*.avi"))[0]
    result = predict(bundle, [video], out_dir=tmp_path / "out", batch_size=2)  # several batches
    frames = result.frames
    kf = extract_from_video(video, keyframe_settings())
    assert frames["frame"].tolist() == kf.video_frame.tolist()
    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
    np.testing.assert_allclose(frames["time_s"], kf.video_frame / fps)
    videos = pd.read_csv(tmp_path / "out" / "videos.csv")
    assert videos["n_frames"].tolist() == [len(kf.video_frame)]
    rule = result.rule
    assert videos["score"].iloc[0] == pytest.approx(rule.score(frames["prob_porn"]))
    assert videos["verdict"].iloc[0] == (
        "porn" if videos["score"].iloc[0] >= rule.threshold else "non_porn"
    )


def test_cli_on_a_real_video_and_bad_inputs(bundle, monkeypatch, capsys, tmp_path):
    """Bad inputs are named on stderr and skipped, the good one is scored, exit status 1."""
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    out = tmp_path / "out"
    monkeypatch.setattr("alnsfw.predict.run.load_bundle", lambda path: bundle)
    args = ["predict", "--model", "m.keras", "--out", str(out), "--no-progress"]
    inputs = [str(CLIP), str(bad), str(text), str(tmp_path / "absent.jpg")]
    assert main([*args, *inputs]) == 1
    printed = capsys.readouterr()
    for name in ("broken.mp4", "readme.txt", "absent.jpg"):
        assert name in printed.err
    skipped = [line for line in printed.err.splitlines() if "alnsfw predict: skipped" in line]
    assert len(skipped) == 3 and not any("bbb_clip" in line for line in skipped)
    assert "broken.mp4: cannot be opened as a video" in printed.err
    videos = pd.read_csv(out / "videos.csv")
    assert videos["input"].tolist() == [str(CLIP)]  # the good one is still scored
    frames = pd.read_csv(out / "frames.csv")
    # the workflow's keyframes: one per shot
    shots = extract_from_video(CLIP, keyframe_settings()).video_frame
    assert len(shots) == 2 and frames["frame"].tolist() == shots.tolist()
    assert "1 video(s), 2 frames scored" in printed.out and "3 input(s) skipped" in printed.out
    assert str(out / "videos.csv") in printed.out
    assert sorted(p.name for p in out.iterdir()) == ["frames.csv", "videos.csv"]  # no temp left


def test_frame_sampling_every_k_and_n_per_second(bundle, monkeypatch, tmp_path):
    every = predict(bundle, [CLIP], frames="every:10")
    assert every.frames["frame"].tolist() == list(range(0, 132, 10))
    np.testing.assert_allclose(every.frames["time_s"], np.arange(0, 132, 10) / 25.0)
    per_second = predict(bundle, [CLIP], frames="fps:2")  # first frame at/after each 0.5 s
    assert per_second.frames["frame"].tolist() == [int(np.ceil(k * 12.5)) for k in range(11)]
    assert per_second.videos["n_frames"].tolist() == [11]
    # the command exits 0 when every input was scored
    monkeypatch.setattr("alnsfw.predict.run.load_bundle", lambda path: bundle)
    args = ["predict", "--model", "m.keras", "--out", str(tmp_path), "--no-progress", str(CLIP)]
    assert main(args) == 0
    assert main([*args, "--aggregation", "max", "--threshold", "0.9"]) == 0
    videos = pd.read_csv(tmp_path / "videos.csv")
    frames = pd.read_csv(tmp_path / "frames.csv")
    assert videos["score"].iloc[0] == pytest.approx(frames["prob_porn"].max())
    assert videos["verdict"].iloc[0] == ("porn" if videos["score"].iloc[0] >= 0.9 else "non_porn")


def test_cli_usage_errors_exit_2(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    base = [sys.executable, "-m", "alnsfw.cli", "predict"]
    missing = subprocess.run(
        [*base, "--model", str(tmp_path / "none.keras"), str(CLIP)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert missing.returncode == 2 and "none.keras" in missing.stderr
    with pytest.raises(ValueError, match="every:K"):
        parse_sampling("every:0")


def test_console_script_is_declared():
    text = (REPO / "pyproject.toml").read_text()
    assert 'alnsfw = "alnsfw.cli:main"' in text
