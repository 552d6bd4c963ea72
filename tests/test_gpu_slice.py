"""The GPU check (benchmarks/gpu_slice.sh): its counting, its data shortcut, and its CPU dry run.

The slice itself needs a GPU for meaningful numbers; these tests check that the script is right
and runs end to end: its parallel data stage writes the same labels and fold lists as
synthesize_dataset, and `--dry-run` (tiny sizes, JAX backend on CPU, 2 runs packed) produces every
table. The protocol counts have one home, benchmarks/paper_protocol.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_phase_rates_leave_the_compiling_first_call_out():
    gpu_slice = load("gpu_slice")
    calls = [
        {"phase": "train", "images": 100, "seconds": 10.0},  # compiles
        {"phase": "train", "images": 200, "seconds": 1.0},
        {"phase": "train", "images": 300, "seconds": 1.0},
        {"phase": "test", "images": 50, "seconds": 0.5},
    ]
    rates = gpu_slice.phase_rates(calls)
    assert rates["train_img_s"] == pytest.approx(250.0)
    assert rates["train_first_s"] == 10.0
    assert rates["test_img_s"] == pytest.approx(100.0)  # a single call counts as it is
    assert rates["score_img_s"] is None and rates["score_calls"] == 0


def test_projection_scales_with_the_rates():
    gpu_slice = load("gpu_slice")
    protocol = gpu_slice.protocol_images()
    slow = gpu_slice.project(
        protocol, {"train_img_s": 1000, "score_img_s": 5000, "test_img_s": 5000}, 0, 1, 1
    )
    fast = gpu_slice.project(
        protocol, {"train_img_s": 2000, "score_img_s": 10000, "test_img_s": 10000}, 0, 1, 1
    )
    assert fast["hours"] == pytest.approx(slow["hours"] / 2)
    expected = (protocol["train"] + protocol["val"]) / 1000 / 3600
    assert slow["train_h"] == pytest.approx(expected)


def test_parallel_data_stage_writes_what_synthesize_dataset_writes(tmp_path):
    from conftest import validated_config

    from alnsfw.data.synthetic import render_video, synthesize_dataset

    gpu_slice = load("gpu_slice")
    cfg = validated_config(
        {"data": {"root": str(tmp_path / "a")}, "synthetic": {"frame_size": [32, 24]}}
    )
    synthesize_dataset(
        tmp_path / "a",
        cfg["synthetic"],
        cfg["splits"]["n_folds"],
        cfg["data"]["test_list"],
        cfg["data"]["train_list"],
    )
    from alnsfw.data.layout import synthetic_names

    labels = {
        name: render_video(name, cls, cfg["synthetic"]).shot_labels
        for name, cls in synthetic_names(cfg["synthetic"]["videos"])
    }
    gpu_slice.write_labels_and_folds(tmp_path / "b", cfg, labels)
    written = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert written
    for rel in written:
        assert (tmp_path / "b" / rel).read_text() == (tmp_path / "a" / rel).read_text(), rel


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is a test dependency")
def test_dry_run_on_cpu_with_jax(tmp_path):
    """`benchmarks/gpu_slice.sh --dry-run`: the whole slice at tiny sizes, JAX backend on CPU."""
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable, KERAS_BACKEND="jax")
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_slice.sh"), "--dry-run", "--workers", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1500,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    out = tmp_path / "out"
    rows = [json.loads(line) for line in (out / "slice.jsonl").read_text().splitlines()]
    env_row = next(r for r in rows if r["what"] == "env")
    assert env_row["backend"] == "jax" and env_row["dry_run"] is True
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["mode"]) == {"online", "bank"}
    assert sorted(runs.groupby("mode").size()) == [3, 3]  # 1 alone + 2 packed, per mode
    assert (runs["cycles"] >= 1).all()
    assert (runs["train_img_s"] > 0).all()
    projection = pd.read_csv(out / "projection.csv")
    assert len(projection) == 4 and (projection["hours"] > 0).all()
    assert "Projection for the whole protocol" in (out / "summary.md").read_text()
    assert not (out / "work").exists()  # the scratch folder is removed
