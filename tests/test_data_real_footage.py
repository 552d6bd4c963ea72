"""Shot detection on real footage (tests/data/real: clips cut from packaged sample videos)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import validated_config

from alnsfw.data.keyframes import (
    VideoScan,
    extract_from_video,
    representative_frame,
    robust_shots,
)


def _load(name: str, path: Path):  # noqa: ANN202 - a module loaded from its file
    """A script outside the package (tools/, tests/data/real/), loaded without touching sys.path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


shot_eval = _load("shot_eval", Path(__file__).resolve().parents[1] / "tools" / "shot_eval.py")
METHODS, REAL_SET, evaluate = shot_eval.METHODS, shot_eval.REAL_SET, shot_eval.evaluate
read_truth, synthetic_demo = shot_eval.read_truth, shot_eval.synthetic_demo
build = _load("build_real_set", REAL_SET / "build_real_set.py")


@pytest.fixture(scope="module")
def results():
    return evaluate(REAL_SET)


def test_real_set_is_complete():
    truth = read_truth(REAL_SET)
    assert len(truth) == 10 and sum(truth.values()) == 31
    assert all((REAL_SET / f"{v}.mp4").is_file() for v in truth)


def test_default_method_is_within_ten_percent_and_never_keeps_a_black_frame(results):
    adaptive = [r for r in results if r.method == "adaptive"]
    true = sum(r.true_shots for r in adaptive)
    assert abs(sum(r.keyframes for r in adaptive) - true) <= 0.1 * true
    assert sum(abs(r.keyframes - r.true_shots) for r in adaptive) <= 0.1 * true
    assert sum(r.dark_keyframes for r in adaptive) == 0
    fades = {r.video: r.keyframes for r in adaptive if r.video in ("fades", "dims")}
    assert fades == {"fades": 3, "dims": 3}  # a fade through black is one transition


def test_the_default_beats_the_other_methods(results):
    def error(method):
        return sum(abs(r.keyframes - r.true_shots) for r in results if r.method == method)

    assert error("adaptive") < error("histogram") and error("adaptive") < error("diff")


def _scan(luma, contrast=None, cuts=(), fps=10.0):
    luma = np.asarray(luma, np.float32)
    if contrast is None:  # dark frames of a fade are flat too
        contrast = np.where(luma < 20, 2.0, 30.0)
    contrast = np.asarray(contrast, np.float32)
    sharp = np.ones_like(luma)
    return VideoScan(len(luma), fps, sorted(cuts), luma, contrast, sharp, len(luma))


def test_black_gap_splits_and_its_frames_belong_to_no_shot():
    scan = _scan([100] * 10 + [5] * 4 + [100] * 10)
    assert robust_shots(scan, 3) == [(0, 10), (14, 24)]


def test_a_burst_of_cuts_in_a_fade_ramp_is_one_transition():
    scan = _scan([100] * 10 + [60, 40, 25] + [5] * 3 + [100] * 10, cuts=[11, 12])
    assert robust_shots(scan, 3) == [(0, 13), (16, 26)]


def test_a_flash_splits_nothing():
    contrast = [30.0] * 10 + [0.5, 0.5] + [30.0] * 10
    scan = _scan([100] * 10 + [255, 255] + [100] * 10, contrast, cuts=[10, 12])
    shots = robust_shots(scan, 3)
    assert shots == [(0, 22)]
    assert representative_frame(scan, 0, 22) not in (10, 11)


def test_a_short_piece_joins_its_neighbour_across_the_cut():
    scan = _scan([100] * 20, cuts=[10, 12])
    assert robust_shots(scan, 3) == [(0, 12), (12, 20)]


def test_keyframe_is_the_sharpest_well_exposed_frame_of_the_middle_half():
    luma = np.array([30, 60, 90] + [120] * 14 + [90, 60, 30], np.float32)
    sharp = np.ones(20, np.float32)
    sharp[2] = 100.0  # sharp but in a fade ramp and outside the middle half
    sharp[12] = 5.0
    scan = VideoScan(20, 10.0, [], luma, np.full(20, 30.0, np.float32), sharp, 20)
    assert representative_frame(scan, 0, 20) == 12


def _write(path, frames, fps=25):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize("length", [8, 20, 30])
def test_dissolves_of_lengths_not_in_the_set_are_one_cut_each(tmp_path, length):
    """Held out from the tuning of the dissolve test (the set's dissolves last 12 and 15 frames):
    clips of the set joined here by dissolves of other lengths."""
    size = (240, 136)
    a = build.read(REAL_SET / "megamind.mp4", 100, 150, size)
    b = build.read(REAL_SET / "vtest.mp4", 0, 80, size)
    c = build.read(REAL_SET / "bikes.mp4", 137, 186, size)
    frames = build.dissolve(build.dissolve(a, b, length), c, 12)
    kf = extract_from_video(
        _write(tmp_path / "d.mp4", frames), shot_eval.settings("adaptive", 3.0, 32)
    )
    assert len(kf.frame) == 3


@pytest.mark.parametrize("config", ["config.yaml", "schema defaults"])
def test_adaptive_is_exact_on_the_synthetic_sets(tmp_path, config):
    """Every video of the demo's synthetic set (config.yaml), and of the schema's default one,
    gets one keyframe per shot."""
    cfg = None if config == "config.yaml" else validated_config(preset="npdi-paper")["synthetic"]
    wrong, keyframes, shots = synthetic_demo(tmp_path, METHODS[:1], cfg)["adaptive"]
    assert wrong == 0 and keyframes == shots > 150


def test_dark_or_low_contrast_scenes_are_content_not_gaps():
    dark_scene = _scan([100] * 10 + [15] * 10 + [100] * 10, [30.0] * 10 + [25.0] * 10 + [30.0] * 10)
    assert robust_shots(dark_scene, 3) == [(0, 30)]
    grey = _scan([100] * 20, [3.0] * 20)
    assert robust_shots(grey, 3) == [(0, 20)]
