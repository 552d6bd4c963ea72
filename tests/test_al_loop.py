"""The active-learning loop with the NumPy fake: arithmetic, leakage, determinism, resume."""

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from test_al_fakes import CrashAt, Spy, config, make_dataset, run_al, run_baseline

from alnsfw.al.baseline import BASELINE_COLUMNS, HISTORY_COLUMNS, baseline_patience
from alnsfw.al.jobs import full_supervision_job
from alnsfw.al.loop import CYCLE_COLUMNS, TIMING_COLUMNS, Split

CONTRACT_CYCLES = (
    "cycle, n_labelled, pct_labelled, n_labelled_porn, n_labelled_nonporn, n_test, accuracy, "
    "precision, recall, f1, roc_auc, tp, tn, fp, fn, n_test_videos, video_accuracy, video_f1, "
    "video_roc_auc, video_aggregation, video_threshold, val_loss, epochs, train_seconds, "
    "score_seconds, select_seconds, test_seconds, tasks, corrections, decisions, images_shown, "
    "n_pseudo, pseudo_wrong_share, pseudo_threshold"
)
CONTRACT_METRICS = (
    "n_labelled, pct_labelled, n_test, accuracy, precision, recall, f1, roc_auc, tp, tn, fp, "
    "fn, n_test_videos, video_accuracy, video_f1, video_roc_auc, video_aggregation, "
    "video_threshold, val_loss, epochs, train_seconds, test_seconds"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def split(data):
    return json.loads(Path(data[1]).read_text())


def read(run_dir, name="cycles"):
    return pd.read_csv(run_dir / f"{name}.csv")


def without_timing(frame):
    return frame.drop(columns=TIMING_COLUMNS)


def test_columns_follow_the_contract(data, tmp_path):
    run_al(data, tmp_path / "r")
    assert list(read(tmp_path / "r").columns) == CONTRACT_CYCLES.split(", ") == CYCLE_COLUMNS
    assert list(read(tmp_path / "r", "queries").columns) == [
        "cycle",
        "row",
        "score",
        "rank",
        "label",
    ]
    assert list(read(tmp_path / "r", "predictions").columns) == [
        "row",
        "label",
        "prob_porn",
        "pred",
    ]
    run_baseline(data, tmp_path / "full")
    assert list(read(tmp_path / "full", "metrics").columns) == CONTRACT_METRICS.split(", ")
    assert BASELINE_COLUMNS == CONTRACT_METRICS.split(", ")


@pytest.mark.parametrize("query_size", [8, 11])
def test_cycle_arithmetic(data, split, tmp_path, query_size):
    run_al(data, tmp_path, "least_confidence", config(al={"query_size": query_size}))
    cycles, queries = read(tmp_path), read(tmp_path, "queries")
    n_pool = len(split["pool"])
    n0 = cycles["n_labelled"].iloc[0]
    assert len(cycles) == 1 + int(np.ceil((n_pool - n0) / query_size))
    assert cycles["cycle"].tolist() == list(range(len(cycles)))
    steps = np.diff(cycles["n_labelled"])
    assert np.all(steps[:-1] == query_size) and 0 < steps[-1] <= query_size
    assert cycles["n_labelled"].iloc[-1] == n_pool and cycles["pct_labelled"].iloc[-1] == 100.0
    assert (cycles["n_labelled_porn"] + cycles["n_labelled_nonporn"] == cycles["n_labelled"]).all()
    # each query is what the next cycle added; the last cycle queries nothing
    per_cycle = queries.groupby("cycle").size()
    assert per_cycle.index.tolist() == list(range(len(cycles) - 1))
    assert per_cycle.tolist() == steps.tolist()
    assert cycles["score_seconds"].iloc[-1] == 0.0
    assert (cycles["n_test"] == len(split["test"])).all()


def test_initial_set_is_twenty_percent_of_each_class(data, split, tmp_path):
    run_al(data, tmp_path)
    cycles, queries = read(tmp_path), read(tmp_path, "queries")
    with h5py.File(data[0]) as h5:
        labels = h5["label"][:]
    pool_labels = labels[split["pool"]]
    n_porn, n_non = int((pool_labels == 1).sum()), int((pool_labels == 0).sum())
    assert cycles["n_labelled_porn"].iloc[0] == int(np.floor(0.2 * n_porn + 0.5))
    assert cycles["n_labelled_nonporn"].iloc[0] == int(np.floor(0.2 * n_non + 0.5))
    assert (queries["label"].to_numpy() == labels[queries["row"]]).all()


def test_no_test_or_validation_row_reaches_the_pool(data, split, tmp_path):
    spy = Spy()
    run_al(data, tmp_path, "entropy", build=spy)
    pool, val, test = (set(split[k]) for k in ("pool", "val", "test"))
    queries = read(tmp_path, "queries")
    assert set(queries["row"]) <= pool and queries["row"].is_unique
    learner = spy.learners[0]
    for train_rows, val_rows in learner.fit_calls:
        assert set(train_rows.tolist()) <= pool
        assert val_rows.tolist() == split["val"]
    # the pool scored by the strategy never includes test or validation rows (both are
    # predicted whole every cycle: the test, the video rule and the stopping rules)
    scored = [set(r.tolist()) for r in learner.predict_calls if set(r.tolist()) not in (test, val)]
    assert scored and all(s <= pool for s in scored)
    assert set(read(tmp_path, "predictions")["row"]) == test
    # initial set + all queries = the whole pool, each item once
    initial = set(learner.fit_calls[0][0].tolist())
    assert initial.isdisjoint(queries["row"]) and initial | set(queries["row"]) == pool


def test_overlapping_split_is_refused(split):
    bad = dict(split, val=split["val"] + split["pool"][:1])
    with pytest.raises(ValueError, match="pool and val"):
        Split.from_json(bad)


def test_random_skips_scoring_the_pool(data, split, tmp_path):
    spy = Spy()
    run_al(data, tmp_path, "random", build=spy)
    calls = spy.learners[0].predict_calls
    assert all(r.tolist() in (split["test"], split["val"]) for r in calls)


@pytest.mark.parametrize("warm_start", [True, False])
def test_warm_start_switch(data, tmp_path, warm_start):
    spy = Spy()
    run_al(data, tmp_path, "margin", config(al={"warm_start": warm_start}), build=spy)
    n_cycles = len(read(tmp_path))
    assert spy.learners[0].resets == (0 if warm_start else n_cycles)


def test_same_seed_same_csv(data, tmp_path):
    run_al(data, tmp_path / "a", "entropy")
    run_al(data, tmp_path / "b", "entropy")
    for name in ("queries", "predictions"):
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (
            tmp_path / "b" / f"{name}.csv"
        ).read_bytes()
    pd.testing.assert_frame_equal(
        without_timing(read(tmp_path / "a")), without_timing(read(tmp_path / "b"))
    )
    run_al(data, tmp_path / "c", "entropy", seed=1)
    assert not read(tmp_path / "a", "queries").equals(read(tmp_path / "c", "queries"))


def test_strategies_share_initial_set_and_cycle_zero(data, tmp_path):
    spies = {}
    for name in ("random", "entropy"):
        spies[name] = Spy()
        run_al(data, tmp_path / name, name, build=spies[name])
    first = [spies[n].learners[0].fit_calls[0][0].tolist() for n in spies]
    assert first[0] == first[1]
    zero = [without_timing(read(tmp_path / n)).iloc[0] for n in spies]
    pd.testing.assert_series_equal(zero[0], zero[1])
    assert not read(tmp_path / "random", "queries").equals(read(tmp_path / "entropy", "queries"))


def test_checkpoint_is_removed_after_success(data, tmp_path):
    run_al(data, tmp_path)
    assert not (tmp_path / "checkpoint").exists()


@pytest.mark.parametrize("warm_start", [True, False])
def test_crash_and_resume_gives_the_same_csv(data, tmp_path, warm_start):
    cfg = config(al={"warm_start": warm_start})
    run_al(data, tmp_path / "whole", "random", cfg)
    with pytest.raises(KeyboardInterrupt):
        run_al(data, tmp_path / "resumed", "random", cfg, build=CrashAt(3))
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "state-0002.json").read_text())
    assert state["next_cycle"] == 3 and not (tmp_path / "resumed" / "cycles.csv").exists()
    spy = Spy()
    run_al(data, tmp_path / "resumed", "random", cfg, build=spy)
    assert len(spy.learners[0].fit_calls) == len(read(tmp_path / "whole")) - 3
    pd.testing.assert_frame_equal(
        without_timing(read(tmp_path / "whole")), without_timing(read(tmp_path / "resumed"))
    )
    for name in ("queries", "predictions"):
        assert (tmp_path / "whole" / f"{name}.csv").read_bytes() == (
            tmp_path / "resumed" / f"{name}.csv"
        ).read_bytes()


def test_checkpoint_of_other_settings_is_discarded(data, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run_al(data, tmp_path / "r", "entropy", build=CrashAt(2))
    cfg = config(al={"query_size": 9})
    spy = Spy()
    run_al(data, tmp_path / "r", "entropy", cfg, build=spy)
    run_al(data, tmp_path / "fresh", "entropy", cfg)
    assert len(spy.learners[0].fit_calls) == len(read(tmp_path / "r"))  # started afresh
    pd.testing.assert_frame_equal(
        without_timing(read(tmp_path / "r")), without_timing(read(tmp_path / "fresh"))
    )


def test_baseline_trains_once_on_the_whole_pool(data, split, tmp_path):
    spy = Spy()
    keyframes, split_path = data
    full_supervision_job(
        keyframes=keyframes,
        split=split_path,
        outputs={k: str(tmp_path / f"{k}.csv") for k in ("metrics", "history", "predictions")},
        config=config(),
        fold=0,
        seed=0,
        build=spy,
    )
    ((train_rows, val_rows),) = spy.learners[0].fit_calls
    assert train_rows.tolist() == split["pool"] and val_rows.tolist() == split["val"]
    metrics = read(tmp_path, "metrics")
    history = read(tmp_path, "history")
    assert len(metrics) == 1 and metrics["pct_labelled"].iloc[0] == 100.0
    assert metrics["n_labelled"].iloc[0] == len(split["pool"])
    assert list(history.columns) == HISTORY_COLUMNS
    assert len(history) == metrics["epochs"].iloc[0] <= 6
    assert history["best"].sum() == 1
    best = history.loc[history["best"] == 1, "val_loss"].iloc[0]
    assert best == pytest.approx(metrics["val_loss"].iloc[0])
    assert set(read(tmp_path, "predictions")["row"]) == set(split["test"])


def test_baseline_patience_defaults_to_training_patience():
    assert baseline_patience(config()) == 1
    assert baseline_patience(config(baseline={"patience": 4})) == 4


def test_whole_pool_at_start_is_one_cycle_without_queries(data, split, tmp_path):
    run_al(data, tmp_path, "entropy", config(al={"initial_fraction": 1.0}))
    cycles = read(tmp_path)
    assert cycles["n_labelled"].tolist() == [len(split["pool"])]
    assert read(tmp_path, "queries").empty
