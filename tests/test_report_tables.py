"""Table 2, F1/ROC-AUC tables, summary statistics, paired CIs and partial aggregation on
hand-made runs whose values are known (see test_report_fixtures)."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
from test_report_fixtures import STRATEGIES, make_runs, table_outputs

from alnsfw.report.aggregate import aggregate
from alnsfw.report.curves import bootstrap_ci, normalised_auc, stays_within_from, values_at
from alnsfw.report.options import ReportOptions
from alnsfw.report.runs import load_cycles, load_full, split_existing
from alnsfw.report.tables import key_percentage_table, paired_table, summary_table

KEYS = [20, 30, 40, 50, 60, 70, 80, 90, 100]
RUN_STD = math.sqrt(10 / 3)  # sample std of the run offsets -1, 1, -2, 2
ENTROPY_STD = math.sqrt(1.2)  # ... of -0.6, 0.6, -1.2, 1.2 (offsets plus entropy noise)
FULL_STD = math.sqrt(0.64 / 3)  # ... of 86.2, 86.2, 87, 87


@pytest.fixture
def loaded(tmp_path):
    runs = make_runs(tmp_path)
    return load_cycles(runs), load_full(runs)


def approx(value):
    return pytest.approx(value, abs=1e-9)


# --- reading a run at key percentages -------------------------------------------------------


def test_values_at_linear_and_nearest_on_hand_values():
    pct, acc = [20, 35, 50], [80.0, 83.0, 86.0]
    assert values_at(pct, acc, [30], "linear") == approx(82.0)
    assert values_at(pct, acc, [30], "nearest") == approx(83.0)  # 35 is 5 away, 20 is 10
    # a tie goes to the cycle with fewer labels
    assert values_at([20, 40], [1.0, 2.0], [30], "nearest") == approx(1.0)


def test_values_at_edges_use_the_tolerance():
    out = values_at([20.5, 50], [1.0, 2.0], [20, 10, 50, 52.4, 53], "linear", edge_tolerance=2.5)
    assert out[0] == approx(1.0)  # 0.5 below the first cycle: takes its value
    assert np.isnan(out[1])  # 10.5 below: nothing the run came near
    assert out[2] == approx(2.0)
    assert out[3] == approx(2.0)
    assert np.isnan(out[4])


def test_values_at_skips_nan_and_rejects_unknown_rule():
    assert values_at([20, 50, 80], [1.0, np.nan, 3.0], [50], "linear") == approx(2.0)
    with pytest.raises(ValueError, match="interpolation"):
        values_at([20], [1.0], [20], "cubic")


# --- Table 2 ----------------------------------------------------------------------------------


def test_table2_linear_cells(loaded):
    cycles, full = loaded
    table = key_percentage_table(cycles, full, STRATEGIES, "accuracy", KEYS, "linear", 2.0)
    assert list(table["pct_labelled"]) == KEYS
    for offset, strategy in enumerate(STRATEGIES):
        for key, mean in zip(KEYS, table[f"{strategy}_mean"]):
            assert mean == approx(80 + 0.1 * (key - 20) + offset), (strategy, key)
        std = ENTROPY_STD if strategy == "entropy" else RUN_STD
        assert table[f"{strategy}_std"].to_numpy() == pytest.approx(std, abs=1e-9)
        assert set(table[f"{strategy}_n"]) == {4}
    assert set(table["full_supervision_mean"].round(9)) == {86.6}
    assert table["full_supervision_std"].iloc[0] == approx(FULL_STD)
    assert table.loc[table["pct_labelled"] == 30, "random_mean"].item() == approx(81.0)


def test_table2_nearest_cells(loaded):
    cycles, full = loaded
    table = key_percentage_table(cycles, full, STRATEGIES, "accuracy", KEYS, "nearest", 2.0)
    # cycles at 20, 35, 50, 65, 80, 100: 30->35, 40->35, 60->65, 70->65, 90->80 (tie: fewer labels)
    nearest = {20: 20, 30: 35, 40: 35, 50: 50, 60: 65, 70: 65, 80: 80, 90: 80, 100: 100}
    for key, mean in zip(KEYS, table["random_mean"]):
        assert mean == approx(80 + 0.1 * (nearest[key] - 20)), key
    assert table["entropy_mean"].iloc[1] == approx(83.5)


def test_f1_and_roc_auc_tables_have_table2_shape(loaded):
    cycles, full = loaded
    f1 = key_percentage_table(cycles, full, STRATEGIES, "f1", KEYS, "linear", 2.0)
    auc = key_percentage_table(cycles, full, STRATEGIES, "roc_auc", KEYS, "linear", 2.0)
    assert f1["random_mean"].iloc[1] == approx(0.81 - 0.05)
    assert auc["random_mean"].iloc[1] == approx(0.81 + 0.05)
    assert f1["full_supervision_mean"].iloc[0] == approx(0.866 - 0.05)
    assert list(f1.columns) == list(auc.columns)


# --- summary ----------------------------------------------------------------------------------


def test_summary_statistics(loaded):
    cycles, full = loaded
    summary = summary_table(cycles, full, STRATEGIES, within_points=1.0).set_index("strategy")
    # straight lines from 20% to 100%: the normalised area is the value at 60%
    assert summary.loc["random", "alc_mean"] == approx(0.84)
    assert summary.loc["least_confidence", "alc_mean"] == approx(0.85)
    assert summary.loc["entropy", "alc_mean"] == approx(0.86)
    assert summary.loc["random", "alc_std"] == approx(RUN_STD / 100)
    assert summary["gain_points_mean"].to_numpy() == pytest.approx(8.0, abs=1e-9)
    assert summary["gain_points_std"].to_numpy() == pytest.approx(0.0, abs=1e-9)
    assert summary.loc["random", "first_accuracy"] == approx(80.0)
    assert summary.loc["random", "last_accuracy"] == approx(88.0)
    assert summary.loc["random", "full_accuracy"] == approx(86.6)
    # reference 86.6 - 1 = 85.6: random reaches 86 at 80%, least confidence 87 at 80%,
    # entropy 86.5 at 65% (85 at 50% is short)
    assert summary.loc["random", "threshold_pct"] == approx(80.0)
    assert summary.loc["least_confidence", "threshold_pct"] == approx(80.0)
    assert summary.loc["entropy", "threshold_pct"] == approx(65.0)
    assert summary.loc["entropy", "accuracy_at_threshold"] == approx(86.5)
    # mean pool over folds = (100 + 300) / 2 = 200
    assert summary.loc["random", "pool_size"] == approx(200.0)
    assert summary.loc["random", "labels_saved"] == approx(40.0)
    assert summary.loc["random", "labels_saved_pct"] == approx(20.0)
    assert summary.loc["entropy", "labels_saved"] == approx(70.0)
    assert summary.loc["entropy", "labels_saved_pct"] == approx(35.0)
    assert (summary["n_runs"] == 4).all()


def test_summary_threshold_never_reached_is_empty(loaded):
    cycles, full = loaded
    full = full.assign(accuracy=full["accuracy"] + 10)
    summary = summary_table(cycles, full, ["random"], within_points=1.0)
    assert np.isnan(summary["threshold_pct"].item())
    assert np.isnan(summary["labels_saved"].item())


def test_stays_within_needs_every_later_point():
    x = [20, 40, 60, 80, 100]
    assert stays_within_from(x, [90, 80, 90, 80, 90], 90, 1.0) == 100
    assert stays_within_from(x, [95, 95, 95, 95, 95], 90, 1.0) == 20  # above counts as within
    assert np.isnan(stays_within_from(x, [90, 90, 90, 90, 80], 90, 1.0))


def test_normalised_auc_hand_values():
    assert normalised_auc([20, 100], [50, 100]) == approx(0.75)
    assert normalised_auc([20, 60, 100], [80, 80, 80]) == approx(0.8)
    assert normalised_auc([50], [70]) == approx(0.7)


# --- strategy vs random ------------------------------------------------------------------------


def test_paired_differences_and_bootstrap(loaded):
    cycles, _ = loaded
    paired = paired_table(cycles, STRATEGIES, KEYS, "linear", 2.0, 2000, 0)
    acc = paired[paired["measure"] == "accuracy"].set_index(["strategy", "pct_labelled"])
    # least confidence is exactly 1 point above random on every pair: CI collapses onto 1
    lc = acc.loc[("least_confidence", 50)]
    assert (lc["mean_diff"], lc["ci_low"], lc["ci_high"]) == (approx(1.0),) * 3
    assert lc["n_pairs"] == 4 and lc["n_better"] == 4
    # entropy - random = 2 + noise (0.4, -0.4, 0.8, -0.8): mean 2, CI inside [1.2, 2.8]
    en = acc.loc[("entropy", 30)]
    assert en["mean_diff"] == approx(2.0)
    assert 1.2 <= en["ci_low"] < 2.0 < en["ci_high"] <= 2.8
    alc = paired[paired["measure"] == "alc"].set_index("strategy")
    assert alc.loc["entropy", "mean_diff"] == approx(2.0)
    assert alc["pct_labelled"].isna().all()
    assert "random" not in set(paired["strategy"])


def test_bootstrap_is_deterministic_and_covers_the_mean():
    d = list(np.random.default_rng(42).normal(2.0, 1.0, size=25))
    first = bootstrap_ci(d, 2000, seed=0)
    assert first == bootstrap_ci(d, 2000, seed=0)
    assert first[0] < np.mean(d) < first[1]
    assert first != bootstrap_ci(d, 2000, seed=1)
    assert bootstrap_ci([3.0], 2000, 0) == (3.0, 3.0)


def test_paired_without_random_is_empty(loaded):
    cycles, _ = loaded
    paired = paired_table(cycles, ["entropy"], KEYS, "linear", 2.0, 200, 0)
    assert paired.empty and "ci_low" in paired.columns


# --- the aggregate step -------------------------------------------------------------------------


def test_aggregate_writes_every_table(tmp_path):
    runs = make_runs(tmp_path)
    outputs = table_outputs(tmp_path)
    nearest = ReportOptions.from_config({"report": {"interpolation": "nearest"}})
    aggregate(runs, STRATEGIES, nearest, outputs)
    for path in outputs.values():
        assert os.path.getsize(path) > 0, path
    table2 = pd.read_csv(outputs["table2_csv"])
    assert table2.loc[table2["pct_labelled"] == 60, "random_mean"].item() == approx(84.5)
    md = open(outputs["table2_md"]).read()
    assert "\n| % labelled " in md and "Least confidence" in md and "Full supervision" in md
    assert "nearest" in md and "All 16 expected runs" in md
    assert "84.50 ± 1.83" in md
    assert pd.read_csv(outputs["missing"]).empty
    assert "<table" in open(outputs["summary_html"]).read()


def test_partial_aggregation_lists_missing_runs(tmp_path):
    runs = make_runs(tmp_path)
    gone = [r for r in runs if r.label in ("fold1/seed1/entropy", "fold0/seed1/full")]
    for r in gone:
        os.remove(r.path)
    outputs = table_outputs(tmp_path)
    with pytest.raises(FileNotFoundError, match="allow_partial"):
        aggregate(runs, STRATEGIES, ReportOptions.from_config({}), outputs)
    partial = ReportOptions.from_config({"report": {"allow_partial": True}})
    aggregate(runs, STRATEGIES, partial, outputs)
    missing = pd.read_csv(outputs["missing"])
    assert set(zip(missing["fold"], missing["seed"], missing["method"])) == {
        (1, 1, "entropy"),
        (0, 1, "full"),
    }
    for name in ("table2", "f1", "roc_auc", "summary", "paired"):
        md = open(outputs[f"{name}_md"]).read()
        assert "PARTIAL RESULTS" in md and "fold1/seed1/entropy" in md, name
    table2 = pd.read_csv(outputs["table2_csv"])
    assert set(table2["entropy_n"]) == {3} and set(table2["random_n"]) == {4}
    assert set(table2["full_supervision_n"]) == {3}
    assert "(n=3)" in open(outputs["table2_md"]).read()
    present, missing_runs = split_existing(runs)
    assert len(present) == 14 and len(missing_runs) == 2


def test_report_options_from_config_ignores_figure_keys():
    report = {"key_percentages": [25, 50], "interpolation": "nearest", "dpi": 300, "bootstrap": 500}
    options = ReportOptions.from_config({"report": report})
    assert options.key_percentages == (25.0, 50.0)
    assert options.interpolation == "nearest" and options.bootstrap == 500


def test_paired_table_warns_when_too_few_pairs_for_a_ci(tmp_path, monkeypatch):
    """The fixture has 2 folds x 2 seeds = 4 pairs: the paired table must say its CIs mean
    little; with the threshold lowered to 4 the warning goes away."""
    import alnsfw.report.aggregate as agg

    runs = make_runs(tmp_path)
    outputs = table_outputs(tmp_path)
    aggregate(runs, STRATEGIES, ReportOptions.from_config({}), outputs)
    assert "bootstrap CIs are not meaningful" in open(outputs["paired_md"]).read()
    monkeypatch.setattr(agg, "MIN_PAIRS_FOR_CI", 4)
    aggregate(runs, STRATEGIES, ReportOptions.from_config({}), outputs)
    assert "not meaningful" not in open(outputs["paired_md"]).read()
