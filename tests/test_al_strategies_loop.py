"""Every strategy end to end through the loop with the NumPy fake: what the loop computes for
it (only what it declared), determinism, kill-and-resume, and the per-video cap."""

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from test_al_fakes import CrashAt, config, fake_build, make_dataset, run_al

from alnsfw.al.jobs import read_video_ids
from alnsfw.al.loop import TIMING_COLUMNS, LoopSettings, Split, run_active_learning
from alnsfw.al.seeding import RunSeeds
from alnsfw.al.strategies import STRATEGIES

ALL = sorted(STRATEGIES)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def split(data):
    return json.loads(Path(data[1]).read_text())


class Spy:
    def __init__(self, build=fake_build):
        self.learners, self.build = [], build

    def __call__(self, *args):
        self.learners.append(self.build(*args))
        return self.learners[-1]


def read(run_dir, name="cycles"):
    return pd.read_csv(run_dir / f"{name}.csv")


@pytest.mark.parametrize("strategy", ALL)
def test_every_strategy_labels_the_whole_pool_deterministically(data, split, tmp_path, strategy):
    run_al(data, tmp_path / "a", strategy)
    run_al(data, tmp_path / "b", strategy)
    cycles, queries = read(tmp_path / "a"), read(tmp_path / "a", "queries")
    assert cycles["n_labelled"].iloc[-1] == len(split["pool"])
    assert queries["row"].is_unique and set(queries["row"]) <= set(split["pool"])
    assert np.isfinite(queries["score"]).all()
    for name in ("queries", "predictions"):
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()
    pd.testing.assert_frame_equal(
        cycles.drop(columns=TIMING_COLUMNS), read(tmp_path / "b").drop(columns=TIMING_COLUMNS)
    )


def test_new_strategies_query_differently(data, tmp_path):
    first = {}
    for strategy in ("entropy", "bald", "coreset", "badge"):
        run_al(data, tmp_path / strategy, strategy)
        queries = read(tmp_path / strategy, "queries")
        first[strategy] = tuple(queries.loc[queries["cycle"] == 0, "row"])
    assert len(set(first.values())) == 4


@pytest.mark.parametrize(
    "strategy, predicts, embeds, mc",
    [
        ("random", False, False, False),
        ("entropy", True, False, False),
        ("bald", False, False, True),
        ("coreset", False, "pool", False),
        ("badge", False, "unlabelled", False),
    ],
)
def test_the_loop_computes_only_what_the_strategy_declares(
    data, split, tmp_path, strategy, predicts, embeds, mc
):
    spy = Spy()
    run_al(data, tmp_path, strategy, build=spy)
    learner = spy.learners[0]
    test, pool = split["test"], set(split["pool"])
    pool_predictions = [r for r in learner.predict_calls if r.tolist() not in (test, split["val"])]
    # fit's validation and testing aside, the pool is scored only when declared
    assert bool(pool_predictions) == predicts
    assert bool(learner.mc_calls) == mc
    assert bool(learner.embed_calls) == bool(embeds)
    if embeds == "pool":  # coreset: the labelled set's embeddings too, in the same pass
        assert all(set(r.tolist()) == pool for r in learner.embed_calls)
    elif embeds:
        assert all(set(r.tolist()) < pool for r in learner.embed_calls)
    if mc:
        assert {samples for _, samples, _ in learner.mc_calls} == {20}
        assert len({seed for _, _, seed in learner.mc_calls}) == len(learner.mc_calls)


@pytest.mark.parametrize("strategy", ["bald", "badge", "coreset"])
def test_crash_and_resume_gives_the_same_queries(data, tmp_path, strategy):
    cfg = config(al={"max_per_video": 2})
    run_al(data, tmp_path / "whole", strategy, cfg)
    with pytest.raises(KeyboardInterrupt):
        run_al(data, tmp_path / "resumed", strategy, cfg, build=CrashAt(3))
    run_al(data, tmp_path / "resumed", strategy, cfg)
    for name in ("queries", "predictions"):
        assert (tmp_path / "whole" / f"{name}.csv").read_bytes() == (
            tmp_path / "resumed" / f"{name}.csv"
        ).read_bytes()


@pytest.mark.parametrize("strategy", ALL)
def test_max_per_video_caps_each_query_and_still_fills_it(data, split, tmp_path, strategy):
    cap = 1
    run_al(data, tmp_path / "free", strategy)
    run_al(data, tmp_path / "capped", strategy, config(al={"max_per_video": cap}))
    videos = read_video_ids(data[0])
    free, capped = read(tmp_path / "free", "queries"), read(tmp_path / "capped", "queries")
    # same batch sizes, and the whole pool is still labelled in the same number of cycles
    assert capped.groupby("cycle").size().tolist() == free.groupby("cycle").size().tolist()
    assert set(capped["row"]) == set(free["row"])
    labelled = set(split["pool"]) - set(capped["row"])  # the initial set
    for cycle, query in capped.groupby("cycle"):
        unlabelled = sorted(set(split["pool"]) - labelled)
        n_videos = len(set(videos[unlabelled]))
        per_video = np.bincount(videos[query["row"]])
        if len(query) <= n_videos:  # enough videos left: the cap holds
            assert per_video.max() <= cap, f"cycle {cycle}"
        else:  # too few videos: every video left gives one, the rest fills the batch
            assert (per_video > 0).sum() == n_videos
        labelled |= set(query["row"])
    # the uncapped runs of a score strategy take several keyframes of one video at least once
    if strategy in ("least_confidence", "entropy", "margin", "bald"):
        per_query = free.groupby("cycle")["row"].apply(lambda r: np.bincount(videos[r]).max())
        assert per_query.max() > cap


def test_max_per_video_without_video_ids_is_refused(data, split):
    learner = fake_build(config(), data[0], None, None, 0)
    settings = LoopSettings.from_config(config(al={"max_per_video": 2}))
    with pytest.raises(ValueError, match="video of every keyframe"):
        run_active_learning(
            learner,
            Split.from_json(split),
            learner.labels,
            "entropy",
            settings,
            RunSeeds.for_run(0, 0, "entropy"),
        )


def test_a_model_without_embeddings_is_refused_before_training(data, split):
    class Bare:
        def __init__(self):
            self.inner = fake_build(config(), data[0], None, None, 0)
            self.predict_proba = self.inner.predict_proba
            self.fit = self.inner.fit

    with pytest.raises(TypeError, match="coreset.*embed"):
        run_active_learning(
            Bare(),
            Split.from_json(split),
            np.zeros(200),
            "coreset",
            LoopSettings.from_config(config()),
            RunSeeds.for_run(0, 0, "coreset"),
        )


def test_video_ids_from_keyframes_h5(data):
    with h5py.File(data[0]) as h5:
        names = h5["video"].asstr()[:]
    ids = read_video_ids(data[0])
    assert len(ids) == len(names)
    same_name = names[:, None] == names[None, :]
    assert np.array_equal(same_name, ids[:, None] == ids[None, :])


def test_config_check_names_unknown_strategies_and_bald_without_dropout():
    from conftest import validated_config

    from alnsfw.config import check_config
    from alnsfw.schema import ConfigError

    with pytest.raises(ConfigError, match=r"\['badger'\].*registered strategies.*coreset"):
        check_config(validated_config({"al": {"strategies": ["random", "badger"]}}))
    with pytest.raises(ConfigError, match="model.head.dropout"):
        check_config(
            validated_config({"al": {"strategies": ["bald"]}, "model": {"head": {"dropout": 0.0}}})
        )
    check_config(validated_config({"al": {"strategies": sorted(STRATEGIES), "max_per_video": 3}}))
