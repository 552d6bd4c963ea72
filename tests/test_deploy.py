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
