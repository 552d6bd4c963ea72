"""pyproject.toml's install paths: the `gpu` and `jax` extras, and the Python versions admitted.

The `gpu` extra must pin the same TensorFlow as the CPU default and envs/model-gpu.yaml (the conda
route of the training rules with compute.gpu: true), so a GPU run computes with the same version.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from test_envs import parse_spec

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(specs: list[str]) -> dict[str, tuple[str | None, str | None]]:
    out = {}
    for spec in specs:
        name, op, version = parse_spec(spec)
        out[name.lower()] = (op, version)
    return out


def test_gpu_extra_is_the_cuda_build_of_the_pinned_tensorflow():
    core = pins(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["workflow"])
    gpu = pins(PROJECT["optional-dependencies"]["gpu"])
    assert gpu["tensorflow"] == ("==", core["tensorflow-cpu"][1])
    assert "tensorflow[and-cuda]" in PROJECT["optional-dependencies"]["gpu"][0]
    env = yaml.safe_load((ROOT / "envs/model-gpu.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert f"tensorflow[and-cuda]=={core['tensorflow-cpu'][1]}" in pip_section


def test_gpu_and_dev_extras_bring_the_workflow():
    assert "alnsfw[workflow]" in PROJECT["optional-dependencies"]["gpu"]
    assert "alnsfw[workflow,predict]" in PROJECT["optional-dependencies"]["dev"]


def test_predict_install_has_no_tensorflow_and_no_snakemake():
    light = pins(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["predict"])
    assert "onnxruntime" in light and "opencv-python-headless" in light
    for heavy in ("tensorflow-cpu", "tensorflow", "keras", "snakemake", "scikit-learn", "h5py"):
        assert heavy not in light, heavy
    assert all(op == "==" for op, _ in light.values()), light


def test_jax_extra_is_pinned():
    jax = pins(PROJECT["optional-dependencies"]["jax"])
    assert jax["jax"][0] == "=="


def test_requires_python_admits_311_to_313():
    spec = PROJECT["requires-python"]
    assert spec.replace(" ", "") == ">=3.11,<3.14"
