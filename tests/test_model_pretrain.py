"""The proxy-pretrained trunk (`model.weights: proxy`): images, determinism, loading, DAG order.

A tiny pretraining (48 proxy images, 32 px, 1 epoch: a few seconds) is enough to check that the
same seed gives the same weights and that the file is a trunk `build_network` accepts; whether
the trunk is *good* is the demo's business (README), not a unit test's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from alnsfw.model.network import WeightsUnavailableError, build_network, trunk_fingerprint
from alnsfw.model.pretrain import COLOURS, FIGURES, N_CLASSES, pretrain_trunk, proxy_dataset
from alnsfw.model.tags import feature_tag, proxy_weights_file, resolved_model, trunk_weights_files

pytestmark = pytest.mark.xdist_group("pretrained")  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
PRETRAIN = {"images": 48, "holdout": 16, "epochs": 1, "batch_size": 16, "seed": 5}
MODEL = {
    "weights": "proxy",
    "weights_seed": 0,
    "input_size": 32,
    "trainable_from": "conv5_block3_1",
    "head": {"batchnorm": True, "dense": [16], "dropout": 0.2},
}


def h5_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file by name (the content, whatever the file's byte layout)."""
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return arrays


def test_proxy_images_are_balanced_deterministic_and_not_blank():
    images, labels = proxy_dataset(2 * N_CLASSES, 32, seed=1)
    assert images.shape == (2 * N_CLASSES, 32, 32, 3) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=N_CLASSES).tolist() == [2] * N_CLASSES
    again, labels_again = proxy_dataset(2 * N_CLASSES, 32, seed=1)
    assert np.array_equal(images, again) and np.array_equal(labels, labels_again)
    assert not np.array_equal(images, proxy_dataset(2 * N_CLASSES, 32, seed=2)[0])
    assert N_CLASSES == len(FIGURES) * len(COLOURS)
    assert images.reshape(len(images), -1).std(axis=1).min() > 5  # a figure on a gradient


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("proxy")
    cfg = {"pretrain": PRETRAIN, "model": MODEL}
    paths = (folder / "a.weights.h5", folder / "b.weights.h5")
    for path in paths:
        result = pretrain_trunk(path, cfg, threads=1)
        assert result["images"] == PRETRAIN["images"] and 0 <= result["holdout_accuracy"] <= 1
    return paths


def test_same_seed_gives_the_same_weights(pretrained):
    first, second = (h5_arrays(p) for p in pretrained)
    assert first.keys() == second.keys() and len(first) > 100
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert not list(pretrained[0].parent.glob(".*tmp*"))  # atomic: no temporary left behind


def test_the_file_loads_as_model_weights(pretrained):
    net = build_network({"model": MODEL | {"weights": str(pretrained[0])}}, augment=False)
    again = build_network({"model": MODEL | {"weights": str(pretrained[1])}}, augment=False)
    reference = build_network({"model": MODEL | {"weights": "he_normal"}}, augment=False)
    assert trunk_fingerprint(net) == trunk_fingerprint(again) != trunk_fingerprint(reference)
    # Keras 3 files key layers by class and order: ResNet50V2's first Conv2D is conv1_conv.
    stored = h5_arrays(pretrained[0])["layers/conv2d/vars/0"]
    assert np.array_equal(net.base.get_layer("conv1_conv").kernel.numpy(), stored)
    assert net.top is not None  # the pretrained trunk is frozen up to conv5_block2_out


def test_proxy_resolves_to_the_pretrained_file():
    cfg = {"model": MODEL, "pretrain": {"seed": 5}, "compute": {"feature_dtype": "float16"}}
    path = proxy_weights_file(cfg)
    assert path == "results/trunk/proxy-s5-32px.weights.h5"
    assert resolved_model(cfg)["weights"] == path and cfg["model"]["weights"] == "proxy"
    assert trunk_weights_files(cfg) == [path]
    assert feature_tag(cfg) == "proxy-s5-32px-float16"
    with pytest.raises(WeightsUnavailableError, match="pretrain_trunk"):
        build_network({"model": MODEL})


def test_dry_run_pretrains_before_caching_features(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("model: {weights: proxy}\npretrain: {images: 48, epochs: 1}\n")
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    command += ["--configfile", str(ROOT / "presets" / "smoke.yaml"), str(extra), "--rulegraph"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    nodes = dict(re.findall(r'^\s*(\d+)\[label = "(\w+)"', done.stdout, flags=re.M))
    edges = {
        (nodes[a], nodes[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", done.stdout, flags=re.M)
    }
    assert ("pretrain_trunk", "cache_features") in edges  # the features and the bank (smoke)
    # the training jobs rebuild the same trunk (smoke: compute.batch_runs, rule train_runs)
    assert ("pretrain_trunk", "train_runs") in edges
