"""Checks too slow for `make test`: the paper's 224 px model, and the default demo end to end
(what `make run` promises, measured on its own results).

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


def test_default_demo_shows_active_learning_at_work(tmp_path):
    """`make run`'s workflow (config.yaml) in a fresh directory meets what the demo promises
    (issue 21): every run has at least 10 cycles, every test fold at least 300 keyframes, full
    supervision is at least 5 points above the models trained on the initial 20%, and every
    strategy at 100% labelled is within 1 point of full supervision (Table 2, mean over runs)."""
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
    strategies = config["al"]["strategies"]
    for fold in config["splits"]["folds"]:
        for seed in config["splits"]["seeds"]:
            run = tmp_path / f"results/runs/fold{fold}/seed{seed}"
            full = pd.read_csv(run / "full/metrics.csv").iloc[0]
            assert full.n_test >= 300, (fold, full.n_test)
            for strategy in strategies:
                cycles = pd.read_csv(run / f"{strategy}/cycles.csv")
                assert len(cycles) >= 10, (fold, seed, strategy, len(cycles))
    table = pd.read_csv(tmp_path / "results/tables/table2.csv").set_index("pct_labelled")
    full_mean = table.loc[100.0, "full_supervision_mean"]
    for strategy in strategies:
        assert full_mean - table.loc[20.0, f"{strategy}_mean"] >= 5, (strategy, table.loc[20.0])
        assert abs(table.loc[100.0, f"{strategy}_mean"] - full_mean) <= 1, (strategy, full_mean)
