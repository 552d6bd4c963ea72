"""Keyframe extraction: shot cuts, keyframe position, pad/crop, shipped keyframes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from alnsfw.data.keyframes import (
    KeyframeSettings,
    extract_from_video,
    fit_square,
    keyframe_index,
    load_shipped,
    shot_bounds,
)
from alnsfw.data.synthetic import render_video, write_video

CFG = {
    "seed": 5,
    "shots_per_video": [6, 6],
    "frames_per_shot": 7,
    "frame_size": [80, 48],
    "fps": 8,
    "porn_shot_flip": 0.3,
    "nonporn_shot_flip": 0.3,
}


def keyframe_settings(**section: object) -> KeyframeSettings:
    """The schema's keyframe settings with `section` over them, at 32 px."""
    return KeyframeSettings.from_config({"keyframes": {"size": 32, **section}})


@pytest.fixture(scope="module")
def known_cuts(tmp_path_factory):
    """Generated videos of 6 shots of 7 frames: cuts after frames 6, 13, 20, ..."""
    out = {}
    for name, cls in [("vPorn4", "vPorn"), ("vNonPorn2", "vNonPornDifficulty")]:
        video = render_video(name, cls, CFG)
        path = tmp_path_factory.mktemp("cuts") / f"{name}.avi"
        write_video(path, video.frames, CFG["fps"])
        out[name] = (path, video)
    return out


@pytest.mark.parametrize(("method", "threshold"), [("histogram", 0.35), ("diff", 0.09)])
@pytest.mark.parametrize("position", ["middle", "first"])
def test_one_keyframe_per_shot_at_the_chosen_position(known_cuts, method, threshold, position):
    for path, video in known_cuts.values():
        kf = extract_from_video(
            path, keyframe_settings(method=method, threshold={method: threshold}, position=position)
        )
        assert len(kf.frame) == 6
        assert kf.frame.tolist() == [1, 2, 3, 4, 5, 6]
        offset = 3 if position == "middle" else 0
        assert kf.video_frame.tolist() == [7 * s + offset for s in range(6)]
        assert kf.images.shape == (6, 32, 32, 3) and kf.images.dtype == np.uint8
        # the keyframe is the frame it claims to be (MJPG is lossy: compare loosely)
        expected = fit_square(video.frames[kf.video_frame[2]], 32, "pad")
        assert np.abs(kf.images[2].astype(int) - expected.astype(int)).mean() < 8


def test_adaptive_finds_every_synthetic_shot_with_a_keyframe_inside_it(known_cuts):
    for path, video in known_cuts.values():
        kf = extract_from_video(
            path,
            keyframe_settings(method="adaptive", threshold={"adaptive": 3.0}, min_shot_seconds=0.3),
        )
        assert kf.frame.tolist() == [1, 2, 3, 4, 5, 6]
        assert [int(f) // 7 for f in kf.video_frame] == [0, 1, 2, 3, 4, 5]
        assert kf.decoded_frames == kf.expected_frames == 42
        expected = fit_square(video.frames[kf.video_frame[4]], 32, "pad")
        assert np.abs(kf.images[4].astype(int) - expected.astype(int)).mean() < 8


def test_threshold_controls_the_cuts(known_cuts):
    path, _ = known_cuts["vPorn4"]
    assert (
        len(
            extract_from_video(
                path, keyframe_settings(method="histogram", threshold={"histogram": 0.999})
            ).frame
        )
        == 1
    )


def test_shot_bounds_and_position():
    assert shot_bounds([0.1, 0.9, 0.1, 0.1, 0.8], 0.5) == [(0, 2), (2, 5), (5, 6)]
    assert shot_bounds([], 0.5) == [(0, 1)]
    assert keyframe_index(2, 5, "middle") == 3
    assert keyframe_index(2, 6, "middle") == 3
    assert keyframe_index(2, 6, "first") == 2


def test_pad_keeps_the_whole_frame_and_letterboxes():
    image = np.full((40, 80, 3), 200, np.uint8)
    out = fit_square(image, 32, "pad")
    assert out.shape == (32, 32, 3)
    assert (out[:8] == 0).all() and (out[-8:] == 0).all()  # black bars top and bottom
    assert (out[8:24] == 200).all()


def test_crop_fills_the_square():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 20:60] = 255  # the centre half
    out = fit_square(image, 32, "crop")
    assert out.shape == (32, 32, 3)
    assert (out == 255).all()


def test_shipped_keyframes_are_used_in_their_number_order(tmp_path):
    paths = []
    for n, value in [(10, 30), (2, 10), (3, 20)]:
        path = tmp_path / f"vPorn7#{n}.jpg"
        cv2.imwrite(str(path), np.full((24, 32, 3), value, np.uint8))
        paths.append(path)
    kf = load_shipped(paths, 32, "crop")
    assert kf.frame.tolist() == [2, 3, 10]
    assert kf.video_frame.tolist() == [-1, -1, -1]
    assert [int(im.mean()) for im in kf.images] == pytest.approx([10, 20, 30], abs=2)
    assert kf.source[0].endswith("vPorn7#2.jpg")
