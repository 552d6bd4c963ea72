"""Checks too slow for `make test`: the paper's 224 px model, and the default demo end to end.

Run with `make test-slow` (pytest -m slow). About 10 minutes on 2 cores, most of it the demo.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def paper_model_config() -> dict:
    """The paper preset's model and training sections, with an offline trunk (no ImageNet here)."""
    preset = yaml.safe_load((ROOT / "presets/npdi-paper.yaml").read_text())
    cfg = {"model": copy.deepcopy(preset["model"]), "training": copy.deepcopy(preset["training"])}
    cfg["model"]["weights"] = "he_normal"
    cfg["model"]["weights_seed"] = 0
    cfg["model"]["bn_momentum"] = "auto"
    return cfg


def test_paper_size_trunk_top_split_and_cache_equivalence():
    """At 224 px: trunk output 7x7x2048, training starts at conv5_block3_1, and the top model on
    the trunk's output gives the full model's probabilities."""
    from alnsfw.model.network import build_network

    net = build_network(paper_model_config(), seed=0, augment=False)
    assert tuple(net.trunk.output.shape[1:]) == (7, 7, 2048)
    assert net.base.layers[net.first_trainable].name == "conv5_block3_1_conv"
    assert not any(layer.trainable for layer in net.base.layers[: net.first_trainable])
    images = np.random.default_rng(0).integers(0, 256, (4, 224, 224, 3)).astype(np.float32)
    full = np.asarray(net.full(images, training=False))
    features = np.asarray(net.trunk(images, training=False))
    top = np.asarray(net.top(features, training=False))
    np.testing.assert_allclose(top, full, atol=1e-6)


def test_default_demo_end_to_end_beats_the_majority_class(tmp_path):
    """`make run`'s workflow (config.yaml) in a fresh directory: every strategy and the baseline
    end far above the majority-class rate of the test set."""
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake), "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    done = subprocess.run(
        [*command, "--configfile", str(ROOT / "config.yaml"), "--cores", "2"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for fold in config["splits"]["folds"]:
        for seed in config["splits"]["seeds"]:
            run = tmp_path / f"results/runs/fold{fold}/seed{seed}"
            full = pd.read_csv(run / "full/metrics.csv").iloc[0]
            majority = max(full.tp + full.fn, full.tn + full.fp) / full.n_test
            assert full.accuracy >= majority + 0.15, (fold, seed, full.accuracy, majority)
            for strategy in config["al"]["strategies"]:
                last = pd.read_csv(run / f"{strategy}/cycles.csv").iloc[-1]
                assert last.accuracy >= majority + 0.15, (fold, seed, strategy, last.accuracy)
