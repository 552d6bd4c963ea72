"""The stopping table and the figures' stop marks on hand-made runs (test_report_fixtures).

Each run's stopping.csv (test_report_fixtures.stopping_frame) makes the rules fire at known
cycles: budget (60%) at the 65% cycle for everyone; stabilizing predictions at the 80% cycle
(predictions change once, then stay) except for entropy, whose predictions flip every cycle so
the rule never fires; overall uncertainty only for least confidence, at the 50% cycle; the audit
plateau never (the audit rises 8 points a cycle). The table's numbers follow from the fixtures'
formulas.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_report_fixtures import (
    CYCLES,
    FOLDS,
    FULL_ACCURACY,
    POOL,
    SEEDS,
    STOPPING,
    STRATEGIES,
    accuracy,
    make_runs,
)

from alnsfw.al.verdicts import stop_runs, stopping_job
from alnsfw.report.figures import STOP_MARKERS, fold_figure, stop_marks
from alnsfw.report.runs import load_cycles, load_full
from alnsfw.report.stopping import VERDICT_COLUMNS


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("stop")
    runs = make_runs(root)  # with the stopping.csv files (test_report_fixtures.stopping_frame)
    out = {k: str(root / f"stopping.{k}") for k in ("csv", "md", "html")}
    out["runs"] = str(root / "stopping_runs.csv")
    stopping_job(
        runs=stop_runs(FOLDS, SEEDS, STRATEGIES, str(root / STOPPING), str(root / CYCLES)),
        full_runs=[r for r in runs if r.method == "full"],
        strategies=STRATEGIES,
        config={},  # the schema's defaults: all four rules, budget 60%
        outputs=out,
    )
    return runs, out


def test_per_run_verdicts(tables):
    _, out = tables
    runs = pd.read_csv(out["runs"])
    assert list(runs.columns) == VERDICT_COLUMNS
    assert len(runs) == len(FOLDS) * len(SEEDS) * len(STRATEGIES) * 4
    budget = runs[runs["rule"] == "budget"]
    assert budget["fired"].all() and (budget["pct_labelled"] == 65).all()
    assert (budget["cycle"] == 3).all()
    stab = runs[runs["rule"] == "stabilizing_predictions"]
    assert not stab.loc[stab["strategy"] == "entropy", "fired"].any()
    assert (stab.loc[stab["strategy"] != "entropy", "pct_labelled"] == 80).all()
    audit = runs[runs["rule"] == "audit_plateau"]
    assert not audit["fired"].any() and audit["detail"].str.contains("never fired").all()


def test_stopping_table_known_answers(tables):
    _, out = tables
    table = pd.read_csv(out["csv"]).set_index(["strategy", "rule"])
    for strategy in STRATEGIES:
        row = table.loc[(strategy, "budget")]
        acc = [accuracy(strategy, f, s, 65) for f in FOLDS for s in SEEDS]
        gap = [accuracy(strategy, f, s, 65) - FULL_ACCURACY[f] for f in FOLDS for s in SEEDS]
        saved = [POOL[f] - POOL[f] * 65 // 100 for f in FOLDS for s in SEEDS]
        assert row["n_runs"] == row["n_fired"] == 4
        assert row["pct_labelled_mean"] == pytest.approx(65) and row["pct_labelled_std"] == 0
        assert row["accuracy_mean"] == pytest.approx(np.mean(acc))
        assert row["accuracy_std"] == pytest.approx(np.std(acc, ddof=1))
        assert row["gap_points_mean"] == pytest.approx(np.mean(gap))
        assert row["labels_saved_mean"] == pytest.approx(np.mean(saved))  # 35 and 105: 70
        assert row["labels_saved_std"] == pytest.approx(np.std(saved, ddof=1))
    never = table.loc[("entropy", "stabilizing_predictions")]
    assert never["n_fired"] == 0 and np.isnan(never["pct_labelled_mean"])
    unc = table.loc[("least_confidence", "overall_uncertainty")]
    assert unc["n_fired"] == 4 and unc["pct_labelled_mean"] == pytest.approx(50)
    assert table.loc[("random", "overall_uncertainty"), "n_fired"] == 0


def test_markdown_says_never_fired_and_one_line_per_rule(tables):
    _, out = tables
    md = Path(out["md"]).read_text()
    entropy_stab = [line for line in md.splitlines() if "Entropy" in line and "Stabilizing" in line]
    assert len(entropy_stab) == 1 and "never fired" in entropy_stab[0] and "0/4" in entropy_stab[0]
    assert "65.0 ± 0.0" in md and "All 16 expected runs" in md
    assert "One seed" not in md  # two seeds here
    assert "never fired" in Path(out["html"]).read_text()


def test_missing_stopping_file_is_named_unless_partial(tables, tmp_path):
    runs, out = tables
    root = Path(runs[0].path).parents[4]
    bogus = stop_runs([0], [0], ["random"], str(tmp_path / STOPPING), str(root / CYCLES))
    with pytest.raises(FileNotFoundError, match="stopping.csv"):
        stopping_job(bogus, [], ["random"], {}, {k: str(tmp_path / k) for k in out})


def test_stop_points_marked_on_the_fold_figure(tables):
    runs, out = tables
    verdicts = pd.read_csv(out["runs"])
    marks = stop_marks(verdicts, fold=0)
    assert dict(marks["random"]) == {"stabilizing_predictions": 80.0, "budget": 65.0}
    assert "stabilizing_predictions" not in dict(marks["entropy"])
    fig = fold_figure(load_cycles(runs), load_full(runs), 0, STRATEGIES, verdicts=verdicts)
    ax = fig.axes[0]
    star = [
        line
        for line in ax.lines
        if line.get_marker() == STOP_MARKERS["stabilizing_predictions"] and len(line.get_xdata())
    ]
    # random and least confidence stop at 80%, on their curves (fold 0 mean over seeds)
    assert sorted(float(line.get_xdata()[0]) for line in star) == [80.0, 80.0]
    ys = sorted(float(line.get_ydata()[0]) for line in star)
    expected = sorted(
        np.mean([accuracy(s, 0, seed, 80) for seed in SEEDS])
        for s in ("random", "least_confidence")
    )
    assert ys == pytest.approx(expected)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Stop: Stabilizing predictions" in labels and "Stop: Audit plateau" not in labels
