"""Human cost, query units and pseudo-labels of the active-learning loop (issue 30, simulation).

Known answers for the cost model on hand-made runs; a unit query labels exactly its unit's
keyframes and never crosses train and test; pseudo-labels never reach validation or test rows
and never count as human labels; a run resumed from a checkpoint is bit-identical with each
setting. All with NumPy models (tests/test_al_fakes.py), so the file runs in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from test_al_fakes import CrashAt, Spy, config, run_al

from alnsfw.al.cost import Cost, CostModel, keyframe_tasks, unit_tasks
from alnsfw.al.loop import TIMING_COLUMNS, LoopSettings, Split, run_active_learning
from alnsfw.al.pseudo import PseudoLabels, choose, entropy
from alnsfw.al.seeding import RunSeeds
from alnsfw.al.units import check_units_split, take_units, unit_ids, unit_scores

# --- the cost model, by hand ---------------------------------------------------------------


def test_cost_model_known_answers():
    assert keyframe_tasks(5).columns(CostModel()) == {
        "tasks": 5,
        "corrections": 0,
        "decisions": 5.0,
        "images_shown": 5.0,
    }
    # two units (7 and 9), five keyframes shown, guesses wrong on rows 1 and 4
    cost = unit_tasks(
        units=np.array([7, 7, 7, 9, 9]),
        guesses=np.array([1, 1, 0, 0, 1]),
        truths=np.array([1, 0, 0, 0, 0]),
    )
    assert cost == Cost(tasks=2, corrections=2, keyframes_shown=5)
    assert cost.columns(CostModel()) == {
        "tasks": 2,
        "corrections": 2,
        "decisions": 4.0,
        "images_shown": 5.0,
    }
    model = CostModel(decisions_per_task=2, decisions_per_correction=0.5, images_per_keyframe=0)
    assert cost.columns(model)["decisions"] == 2 * 2 + 0.5 * 2
    assert cost.columns(model)["images_shown"] == 0
    assert (cost + keyframe_tasks(3)) == Cost(5, 2, 8)
    with pytest.raises(ValueError, match="al.cost.images_per_keyframe"):
        CostModel.from_config({"images_per_keyframe": -1})


def test_unit_ids_group_consecutive_keyframes_of_a_video():
    videos = np.array(["a", "a", "a", "a", "a", "b", "b", "c"])
    assert unit_ids(videos, "keyframe", 2).tolist() == list(range(8))
    video = unit_ids(videos, "video", 2)
    assert len(set(video[:5])) == 1 and len(set(video)) == 3
    shot = unit_ids(videos, "shot", 2)
    groups = [sorted(np.flatnonzero(shot == u).tolist()) for u in np.unique(shot)]
    assert sorted(groups) == [[0, 1], [2, 3], [4], [5, 6], [7]]


def test_unit_scores_and_batches():
    units = np.array([3, 3, 5, 8, 8, 8])
    scores = np.array([0.1, 0.5, 0.2, 0.3, 0.3, 0.9])
    ids, mean = unit_scores(units, scores, "mean")
    assert ids.tolist() == [3, 5, 8] and np.allclose(mean, [0.3, 0.2, 0.5])
    assert np.allclose(unit_scores(units, scores, "max")[1], [0.5, 0.2, 0.9])
    # units taken whole until the batch holds >= 3 keyframes: unit 8 (3 keyframes) alone
    chosen, rank = take_units(np.array([2, 0, 1]), ids, units, 3)
    assert chosen.tolist() == [3, 4, 5] and rank.tolist() == [0, 0, 0]
    chosen, rank = take_units(np.array([1, 0, 2]), ids, units, 2)  # unit 5 (1) + unit 3 (2)
    assert chosen.tolist() == [2, 0, 1] and rank.tolist() == [0, 1, 1]


def test_pseudo_threshold_decays_and_selects_by_entropy():
    pseudo = PseudoLabels.from_config({"enabled": True, "threshold": 0.05, "decay": 0.02})
    assert pseudo.threshold_at(0) == 0.05 and pseudo.threshold_at(1) == pytest.approx(0.03)
    assert pseudo.threshold_at(3) == 0.0
    assert PseudoLabels.from_config({"enabled": False, "threshold": 0.05}) is None
    proba = np.array([[0.995, 0.005], [0.6, 0.4], [0.001, 0.999]])
    assert entropy(proba)[1] > 0.05 > entropy(proba)[0]
    rows, labels = choose(np.array([10, 11, 12]), proba, 0.05)
    assert rows.tolist() == [10, 12] and labels.tolist() == [0, 1]


# --- hand-made runs ------------------------------------------------------------------------

# Pool: video A rows 0-3, B rows 4-6, C rows 7-9; validation: video E rows 10-11; test: D 12-14.
VIDEOS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 4, 4, 3, 3, 3])
LABELS = np.array([1, 1, 0, 1, 0, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1])
SPLIT = Split(pool=np.arange(10), val=np.array([10, 11]), test=np.array([12, 13, 14]))


class GuessesPorn:
    """A model that never learns: P(porn) = 0.7 for every row, so every guess is 'porn'."""

    def fit(self, train_rows, val_rows, max_epochs, patience, *, train_labels, val_labels):
        return {"epochs": 1, "val_loss": 0.5, "history": []}

    def predict_proba(self, rows):
        return np.tile([0.3, 0.7], (len(rows), 1))

    def reset(self):
        pass

    def save(self, directory):
        pass

    def load(self, directory):
        pass


def hand_run(unit: str, cost: CostModel | None = None, shot_keyframes: int = 2):
    settings = LoopSettings(
        initial_fraction=0.01,  # one keyframe of each class
        query_size=1,  # one unit per query
        warm_start=True,
        max_epochs=1,
        patience=1,
        unit=unit,
        shot_keyframes=shot_keyframes,
        cost=cost or CostModel(),
    )
    return run_active_learning(
        GuessesPorn(),
        SPLIT,
        LABELS,
        "random",
        settings,
        RunSeeds.for_run(0, 0, "random"),
        videos=VIDEOS,
    )


@pytest.mark.parametrize("unit", ["keyframe", "shot", "video"])
def test_hand_made_runs_cost_what_the_model_says(unit):
    result = hand_run(unit)
    cycles, queries = result.cycles, result.queries
    queried = set(queries["row"])
    initial = sorted(set(range(10)) - queried)
    assert len(initial) == 2 and sorted(LABELS[initial]) == [0, 1]
    last = cycles.iloc[-1]
    assert last["n_labelled"] == 10
    # every guess is porn, so a unit task corrects exactly the non-porn keyframes it shows
    units = unit_ids(VIDEOS, unit, 2)
    unit_count = len({units[r] for r in queried})
    if unit == "keyframe":
        expected = {"tasks": 10, "corrections": 0, "decisions": 10, "images_shown": 10}
    else:
        corrections = int(np.sum(LABELS[sorted(queried)] == 0))
        expected = {
            "tasks": 2 + unit_count,
            "corrections": corrections,
            "decisions": 2 + unit_count + corrections,
            "images_shown": 10,
        }
    assert {k: last[k] for k in expected} == expected
    if unit == "video":  # A, B and C each still had unlabelled keyframes after the initial 2
        assert expected["tasks"] == 5 and expected["corrections"] == 5 - 1
    # cycle 0 has paid for the initial set only; the counts never fall
    assert cycles.loc[0, ["tasks", "decisions", "images_shown"]].tolist() == [2, 2, 2]
    assert (cycles["decisions"].diff().dropna() >= 0).all()
    assert cycles["n_pseudo"].isna().all()


def test_cost_model_is_configurable_on_a_run():
    result = hand_run("video", CostModel(decisions_per_correction=2, images_per_keyframe=0.5))
    last = result.cycles.iloc[-1]
    assert last["decisions"] == 2 + 3 + 2 * 4 and last["images_shown"] == 5.0


@pytest.mark.parametrize("unit", ["shot", "video"])
def test_a_unit_query_labels_exactly_its_units_unlabelled_keyframes(unit):
    result = hand_run(unit, shot_keyframes=3)
    units = unit_ids(VIDEOS, unit, 3)
    labelled = set(range(10)) - set(result.queries["row"])  # the initial set
    for _, query in result.queries.groupby("cycle"):
        rows = set(query["row"])
        (unit_id,) = {units[r] for r in rows}  # one unit per query (query_size 1)
        members = {r for r in range(10) if units[r] == unit_id}
        assert rows == members - labelled  # all of it that was still unlabelled, nothing else
        labelled |= rows
    assert set(result.queries["row"]) <= set(SPLIT.pool.tolist())


def test_a_unit_never_crosses_train_and_test():
    check_units_split(unit_ids(VIDEOS, "video", 2), SPLIT.pool, SPLIT.test)
    straddling = Split(pool=np.arange(11), val=np.array([11]), test=np.array([12, 13, 14]))
    videos = VIDEOS.copy()
    videos[10] = 3  # a pool row of the test video D
    with pytest.raises(ValueError, match="both the pool and the test set"):
        check_units_split(unit_ids(videos, "shot", 4), straddling.pool, straddling.test)
    settings = LoopSettings(0.2, 1, True, 1, 1, unit="video")
    with pytest.raises(ValueError, match="both the pool and the test set"):
        run_active_learning(
            GuessesPorn(),
            straddling,
            LABELS,
            "random",
            settings,
            RunSeeds.for_run(0, 0, "x"),
            videos=videos,
        )


def test_units_refuse_the_per_video_cap():
    with pytest.raises(ValueError, match="al.max_per_video"):
        LoopSettings(0.2, 1, True, 1, 1, max_per_video=2, unit="shot")


# --- the fake learner on a dataset split by video ------------------------------------------


def video_split_dataset(folder: Path, n: int = 160, seed: int = 0) -> tuple[str, str]:
    """Like test_al_fakes.make_dataset, but pool / validation / test are whole videos."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 9, size=n)
    videos = np.repeat(np.arange(n), lengths)[:n]
    video_label = rng.random(videos.max() + 1) < 0.6
    flip = rng.random(n) < 0.15
    labels = (video_label[videos] ^ flip).astype(np.int8)
    x = rng.normal(0.0, 1.0, (n, 3)) + labels[:, None] * np.array([1.5, -1.0, 0.5])
    keyframes = folder / "keyframes.h5"
    with h5py.File(keyframes, "w") as h5:
        h5["x"] = x
        h5["label"] = labels
        h5["video"] = np.array([f"v{i}".encode() for i in videos])
    ids = rng.permutation(np.unique(videos))
    side = np.zeros(videos.max() + 1, dtype=int)  # 0 pool, 1 val, 2 test
    side[ids[int(0.65 * len(ids)) :]] = 2
    side[ids[int(0.5 * len(ids)) : int(0.65 * len(ids))]] = 1
    parts = {
        name: np.flatnonzero(side[videos] == k) for k, name in enumerate(["pool", "val", "test"])
    }
    split = folder / "split.json"
    split.write_text(json.dumps({"fold": 0, "seed": 0} | {k: v.tolist() for k, v in parts.items()}))
    return str(keyframes), str(split)


@pytest.fixture(scope="module")
def vdata(tmp_path_factory):
    return video_split_dataset(tmp_path_factory.mktemp("vdata"))


PSEUDO = {"enabled": True, "threshold": 0.4, "decay": 0.02}  # generous: the fake is unsure


class LabelSpy(Spy):
    """Spy that also keeps the labels each fit was given."""

    def __call__(self, *args):
        learner = super().__call__(*args)
        fit, learner.fit_labels = learner.fit, []

        def recording_fit(rows, val, *a, train_labels, val_labels):
            learner.fit_labels.append((np.array(rows), np.array(train_labels)))
            return fit(rows, val, *a, train_labels=train_labels, val_labels=val_labels)

        learner.fit = recording_fit
        return learner


def test_pseudo_labels_stay_in_the_pool_and_out_of_the_human_counts(vdata, tmp_path):
    keyframes, split_path = vdata
    split = json.loads(Path(split_path).read_text())
    pool, outside = set(split["pool"]), set(split["val"]) | set(split["test"])
    with h5py.File(keyframes) as h5:
        truth = h5["label"][:]
    spy = LabelSpy()
    run_al(
        vdata, tmp_path / "r", "least_confidence", config(al={"pseudo_labels": PSEUDO}), build=spy
    )
    cycles = pd.read_csv(tmp_path / "r" / "cycles.csv")
    queries = pd.read_csv(tmp_path / "r" / "queries.csv")
    stopping = pd.read_csv(tmp_path / "r" / "stopping.csv", dtype={"stop_predictions": str})
    assert cycles["n_pseudo"].iloc[1:].sum() > 0 and cycles.loc[0, "n_pseudo"] == 0
    labelled = pool - set(queries["row"])  # the initial set
    for (rows, given), row in zip(spy.learners[0].fit_labels, cycles.itertuples()):
        assert set(rows) <= pool and not set(rows) & outside
        pseudo = np.array(sorted(set(rows) - labelled), dtype=np.int64)
        assert len(pseudo) == row.n_pseudo
        assert len(rows) == row.n_labelled + row.n_pseudo
        if len(pseudo):
            wrong = np.mean(given[np.isin(rows, pseudo)] != truth[pseudo])
            assert wrong == pytest.approx(row.pseudo_wrong_share)
        labelled |= set(queries.loc[queries["cycle"] == row.cycle, "row"])
    # human counts: only what people labelled
    assert (cycles["decisions"] == cycles["n_labelled"]).all()
    assert (cycles["images_shown"] == cycles["n_labelled"]).all()
    assert (stopping["n_labelled"] == cycles["n_labelled"]).all()
    assert cycles["pseudo_threshold"].iloc[1] == pytest.approx(0.4 - 0.02)


SETTINGS = {
    "keyframe+pseudo": {"pseudo_labels": PSEUDO},
    "shot": {"unit": "shot", "shot_keyframes": 3},
    "video": {"unit": "video"},
    "video+pseudo": {"unit": "video", "pseudo_labels": PSEUDO, "unit_score": "max"},
}


@pytest.mark.parametrize("name", list(SETTINGS))
@pytest.mark.parametrize("strategy", ["least_confidence", "random"])
def test_resume_is_bit_identical_with_each_setting(vdata, tmp_path, name, strategy):
    cfg = config(al=SETTINGS[name] | {"warm_start": name != "shot"})
    run_al(vdata, tmp_path / "whole", strategy, cfg)
    with pytest.raises(KeyboardInterrupt):
        run_al(vdata, tmp_path / "resumed", strategy, cfg, build=CrashAt(3))
    run_al(vdata, tmp_path / "resumed", strategy, cfg)
    whole = pd.read_csv(tmp_path / "whole" / "cycles.csv").drop(columns=TIMING_COLUMNS)
    resumed = pd.read_csv(tmp_path / "resumed" / "cycles.csv").drop(columns=TIMING_COLUMNS)
    pd.testing.assert_frame_equal(whole, resumed)
    assert len(whole) > 4
    for part in ("queries", "predictions", "stopping"):
        a = (tmp_path / "whole" / f"{part}.csv").read_bytes()
        assert a == (tmp_path / "resumed" / f"{part}.csv").read_bytes()


def test_config_check_refuses_units_with_the_per_video_cap():
    from conftest import validated_config

    from alnsfw.config import ConfigError, check_config

    check_config(validated_config({"al": {"unit": "video", "pseudo_labels": {"enabled": True}}}))
    with pytest.raises(ConfigError, match="al.max_per_video"):
        check_config(validated_config({"al": {"unit": "shot", "max_per_video": 2}}))
