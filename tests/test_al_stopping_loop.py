"""The stopping rules through the loop with the NumPy fake: what stopping.csv records, and the
verdicts evaluated on it."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_al_fakes import Spy, make_dataset, run_al

from alnsfw.al.loop import STOP_COLUMNS, cycle_records, unpack_predictions
from alnsfw.al.stopping import StoppingSettings, cohen_kappa, evaluate_rules, wilson_interval

CONTRACT_STOPPING = (
    "cycle, n_labelled, labelled_share, stop_n, stop_kappa, stop_uncertainty, audit_correct, "
    "audit_accuracy, audit_ci_low, audit_ci_high, stop_predictions"
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One random-strategy run of the fake (random: the loop predicts only test and val)."""
    tmp = tmp_path_factory.mktemp("stop")
    data = make_dataset(tmp / "data")
    spy = Spy()
    run_al(data, tmp / "run", "random", build=spy)
    split = json.loads(Path(data[1]).read_text())
    return tmp / "run", split, spy.learners[0]


def test_stopping_csv_records_the_validation_split_every_cycle(run):
    run_dir, split, learner = run
    stop = pd.read_csv(run_dir / "stopping.csv", dtype={"stop_predictions": str})
    cycles = pd.read_csv(run_dir / "cycles.csv")
    assert list(stop.columns) == CONTRACT_STOPPING.split(", ") == STOP_COLUMNS
    assert stop["cycle"].tolist() == cycles["cycle"].tolist()
    assert (stop["n_labelled"] == cycles["n_labelled"]).all()
    np.testing.assert_allclose(stop["labelled_share"] * 100, cycles["pct_labelled"])
    n_val = len(split["val"])
    assert (stop["stop_n"] == n_val).all()
    assert all(len(p) == n_val and set(p) <= {"0", "1"} for p in stop["stop_predictions"])
    # the last line is the final model's: its predictions and accuracy on the validation rows
    val = np.asarray(split["val"])
    pred = learner.predict_proba(val).argmax(axis=1)
    assert unpack_predictions(stop["stop_predictions"].iloc[-1]).tolist() == pred.tolist()
    truth = learner.labels[val].astype(int)
    last = stop.iloc[-1]
    assert last["audit_correct"] == int((pred == truth).sum())
    assert last["audit_accuracy"] == pytest.approx(last["audit_correct"] / n_val)
    assert (last["audit_ci_low"], last["audit_ci_high"]) == pytest.approx(
        wilson_interval(int(last["audit_correct"]), n_val)
    )
    p = learner.predict_proba(val)
    assert last["stop_uncertainty"] == pytest.approx(np.mean(1 - p.max(axis=1)))
    # kappa with the previous cycle, from the packed predictions
    assert np.isnan(stop["stop_kappa"].iloc[0])
    packed = [unpack_predictions(s) for s in stop["stop_predictions"]]
    for i in range(1, len(stop)):
        assert stop["stop_kappa"].iloc[i] == pytest.approx(cohen_kappa(packed[i - 1], packed[i]))


def test_rules_evaluated_on_the_loop_record(run):
    run_dir, _, _ = run
    stop = pd.read_csv(run_dir / "stopping.csv", dtype={"stop_predictions": str})
    records = cycle_records(stop)
    settings = StoppingSettings.from_config(
        {"stopping": {"stabilizing_predictions": {"threshold": -1.0}, "budget": {"max_share": 0.5}}}
    )
    verdicts = {v.rule: v for v in evaluate_rules(records, settings)}
    assert set(verdicts) == set(settings.rules)
    # budget: the first cycle with at least half of the pool labelled
    first = int(stop.index[stop["labelled_share"] >= 0.5][0])
    assert verdicts["budget"].cycle == first
    assert verdicts["budget"].labelled_share == pytest.approx(stop["labelled_share"].iloc[first])
    # kappa >= -1 always: fires as soon as k = 3 windows exist, at cycle 3
    assert verdicts["stabilizing_predictions"].cycle == 3
    # uncertainty: first cycle at or under the threshold (or never), as stopping.csv reads
    under = stop.index[stop["stop_uncertainty"] <= settings.uncertainty_threshold]
    assert verdicts["overall_uncertainty"].cycle == (int(under[0]) if len(under) else None)
    # the verdicts are a function of the record: the whole run's records give the same answer
    # when evaluated again, and a prefix cannot fire later than the whole
    again = evaluate_rules(cycle_records(stop.iloc[: first + 1]), settings)
    assert {v.rule: v.cycle for v in again}["budget"] == first
