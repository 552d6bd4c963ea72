"""pyproject.toml's install paths: the `gpu` and `jax` extras, and the Python versions admitted.

The `gpu` extra must admit the same TensorFlow as the CPU default, and envs/model-gpu.yaml (the
conda route of the training rules with compute.gpu: true) pin the locked one, so a GPU run
computes with the same version.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from test_envs import locked

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def reqs(specs: list[str]) -> dict[str, Requirement]:
    return {(req := Requirement(spec)).name.lower(): req for spec in specs}


def test_gpu_extra_is_the_cuda_build_of_the_locked_tensorflow():
    core = reqs(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["workflow"])
    gpu = reqs(PROJECT["optional-dependencies"]["gpu"])
    assert gpu["tensorflow"].specifier == core["tensorflow-cpu"].specifier
    assert gpu["tensorflow"].extras == {"and-cuda"}
    env = yaml.safe_load((ROOT / "envs/model-gpu.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert f"tensorflow[and-cuda]=={locked()['tensorflow-cpu']}" in pip_section


def test_gpu_and_dev_extras_bring_the_workflow():
    assert "alnsfw[workflow]" in PROJECT["optional-dependencies"]["gpu"]
    dev = [d for d in PROJECT["optional-dependencies"]["dev"] if d.startswith("alnsfw[")]
    assert len(dev) == 1 and {"workflow", "predict"} <= set(dev[0][7:-1].split(","))


def test_predict_install_has_no_tensorflow_and_no_snakemake():
    light = reqs(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["predict"])
    assert "onnxruntime" in light and "opencv-python-headless" in light
    for heavy in ("tensorflow-cpu", "tensorflow", "keras", "snakemake", "scikit-learn", "h5py"):
        assert heavy not in light, heavy


def test_jax_extra_is_the_jax_of_dev():
    """`.[jax]` asks for the JAX the dev install (and the lock) has."""
    jax = reqs(PROJECT["optional-dependencies"]["jax"])["jax"]
    assert jax == reqs(PROJECT["optional-dependencies"]["dev"])["jax"]
    assert jax.specifier.contains(locked()["jax"])


def test_requires_python_admits_311_to_313():
    spec = PROJECT["requires-python"]
    assert spec.replace(" ", "") == ">=3.11,<3.14"
