"""The real ResNet50V2 Learner's embeddings and MC-dropout probabilities, and the new strategies
end to end with it on the smoke data (tests/conftest.py smoke_data, 32 px, He-normal trunk)."""

import copy
import json

import numpy as np
import pandas as pd
import pytest

from alnsfw.al.jobs import active_learning_job, build_network_learner, read_video_ids
from alnsfw.schema import schema_defaults

pytest.importorskip("alnsfw.model.learner")

CONFIG = {
    "al": {
        "initial_fraction": 0.2,
        "query_size": 6,
        "warm_start": True,
        "mc_samples": 8,
        "max_per_video": 2,
    },
    "model": {
        "weights": "he_normal",
        "weights_seed": 0,
        "input_size": 32,
        "trainable_from": "conv5_block3_1",
        "head": {"batchnorm": True, "dense": [16], "dropout": 0.3},
    },
    "training": {
        "learning_rate": 0.001,
        "batch_size": 16,
        "max_epochs": 1,
        "patience": 1,
        "augment": "bank",
        "bank_views": 2,
        "augmentation": schema_defaults("training", "augmentation"),
    },
    "compute": {"feature_cache": True, "feature_dtype": "float32", "jit_compile": False},
}


@pytest.fixture(scope="module")
def files(smoke_data, tmp_path_factory):
    from alnsfw.model.features import compute_bank, compute_features

    folder = tmp_path_factory.mktemp("strategy_cache")
    paths = {"features": str(folder / "features.h5"), "bank": str(folder / "bank.h5")}
    compute_features(str(smoke_data.keyframes), paths["features"], CONFIG)
    compute_bank(str(smoke_data.keyframes), paths["bank"], CONFIG)
    split = json.loads(smoke_data.split.read_text())
    return {"keyframes": str(smoke_data.keyframes), "split": str(smoke_data.split), **paths} | {
        "pool": np.asarray(split["pool"])
    }


def learner(files, cfg=CONFIG):
    cached = cfg["compute"]["feature_cache"]
    return build_network_learner(
        cfg,
        files["keyframes"],
        files["features"] if cached else None,
        files["bank"] if cfg["training"]["augment"] == "bank" else None,
        0,
    )


def naive_config():
    cfg = copy.deepcopy(CONFIG)
    cfg["compute"]["feature_cache"] = False
    cfg["training"]["augment"] = "online"  # the full model then holds augmentation layers
    return cfg


@pytest.mark.parametrize("mode", ["bank", "naive"])
def test_embed_gives_the_penultimate_layer_and_predict_probas(files, mode):
    model = learner(files, CONFIG if mode == "bank" else naive_config())
    rows = files["pool"][::-1][:9].copy()
    rows[3] = rows[0]  # any order, repeats allowed, like predict_proba
    emb, proba = model.embed(rows)
    assert emb.shape == (9, 16) and proba.shape == (9, 2)
    assert np.array_equal(emb[3], emb[0]) and (emb >= 0).all()  # after Dense(16, relu)
    np.testing.assert_allclose(proba, model.predict_proba(rows), atol=1e-5)


def test_mc_dropout_is_seeded_stochastic_and_leaves_the_model_alone(files):
    model = learner(files)
    rows = files["pool"][:12]
    before, rng_state = model.predict_proba(rows), copy.deepcopy(model.rng.bit_generator.state)
    mc = model.mc_dropout_proba(rows, 6, seed=5)
    assert mc.shape == (6, 12, 2)
    np.testing.assert_allclose(mc.sum(axis=2), 1.0, atol=1e-5)
    assert np.array_equal(mc, model.mc_dropout_proba(rows, 6, seed=5))
    assert not np.array_equal(mc, model.mc_dropout_proba(rows, 6, seed=6))
    assert np.ptp(mc[:, :, 1], axis=0).max() > 1e-4  # the samples differ: dropout is active
    # no weight, BatchNorm statistic or training RNG changed
    assert np.array_equal(before, model.predict_proba(rows))
    assert model.rng.bit_generator.state == rng_state


@pytest.mark.parametrize("strategy", ["bald", "coreset", "badge"])
def test_new_strategies_run_with_the_real_learner(files, tmp_path, strategy):
    outputs = {k: str(tmp_path / f"{k}.csv") for k in ("cycles", "queries", "predictions")}
    active_learning_job(
        keyframes=files["keyframes"],
        split=files["split"],
        outputs=outputs,
        config=CONFIG,
        fold=0,
        seed=0,
        strategy=strategy,
        features=files["features"],
        bank=files["bank"],
    )
    cycles, queries = pd.read_csv(outputs["cycles"]), pd.read_csv(outputs["queries"])
    assert cycles["n_labelled"].iloc[-1] == len(files["pool"])
    assert set(queries["row"]) < set(files["pool"].tolist()) and queries["row"].is_unique
    assert (cycles["select_seconds"].iloc[:-1] > 0).all()
    videos = read_video_ids(files["keyframes"])
    per_video = queries.groupby("cycle")["row"].apply(lambda r: np.bincount(videos[r]).max())
    assert per_video.iloc[0] <= CONFIG["al"]["max_per_video"]  # first query: many videos left
