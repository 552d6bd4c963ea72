"""The human-cost table and figure (alnsfw.report.human_cost) on hand-made runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alnsfw.report.human_cost import (
    WITHIN,
    compare,
    cost_curves,
    human_cost_display,
    human_cost_job,
    human_cost_table,
    setting_name,
)
from alnsfw.report.runs import expected_runs


def run_frame(fold: int, seed: int, strategy: str, accuracy: list[float], per_query: int):
    """A cycles frame (accuracy in percent, as load_cycles gives it): 4 cycles of 25% each,
    the initial 25 labels as keyframe tasks, then `per_query` decisions per 25 labels."""
    pct = np.array([25.0, 50.0, 75.0, 100.0])
    return pd.DataFrame(
        {
            "fold": fold,
            "seed": seed,
            "strategy": strategy,
            "cycle": np.arange(4),
            "n_labelled": pct.astype(int),
            "pct_labelled": pct,
            "accuracy": accuracy,
            "decisions": 25.0 + per_query * np.arange(4),
            "images_shown": pct,
        }
    )


CYCLES = pd.concat(
    [
        run_frame(0, 0, "video", [80.0, 88.0, 90.0, 90.0], per_query=5),
        run_frame(1, 0, "video", [82.0, 90.0, 90.0, 91.0], per_query=7),
        run_frame(0, 0, "random", [80.0, 82.0, 86.0, 90.0], per_query=25),
        run_frame(1, 0, "random", [80.0, 84.0, 88.0, 90.0], per_query=25),
    ],
    ignore_index=True,
)
FULL = pd.DataFrame({"fold": [0, 1], "seed": [0, 0], "accuracy": [90.0, 90.0]})
VERDICTS = pd.DataFrame(
    {
        "fold": [0, 1, 0, 1],
        "seed": 0,
        "strategy": ["video", "video", "random", "random"],
        "rule": "budget",
        "fired": [True, True, True, False],
        "cycle": [1, 2, 2, np.nan],
    }
)


def test_known_answers():
    table = human_cost_table(CYCLES, FULL, VERDICTS, ["video", "random"], ["budget"], 1.0, "x")
    within = table[table["point"] == WITHIN].set_index("strategy")
    # video: fold means 81, 89, 90, 90.5 -> within 1 point (>= 89) from 50%; decisions there
    # are the fold mean of 25 + 5 and 25 + 7
    assert within.loc["video", "pct_labelled_mean"] == 50.0
    assert within.loc["video", "decisions_mean"] == 31.0
    assert within.loc["video", "images_shown_mean"] == 50.0
    # random: 80, 83, 87, 90 -> only at 100%; 25 + 3 * 25 decisions
    assert within.loc["random", "pct_labelled_mean"] == 100.0
    assert within.loc["random", "decisions_mean"] == 100.0
    stops = table[table["point"] == "budget"].set_index("strategy")
    # video stops at cycle 1 (fold 0: 30 decisions) and cycle 2 (fold 1: 25 + 14 = 39)
    assert stops.loc["video", "decisions_mean"] == 34.5
    assert stops.loc["video", "decisions_std"] == pytest.approx(np.std([30, 39], ddof=1))
    assert stops.loc["video", "accuracy_mean"] == 89.0
    assert stops.loc["random", "n_reached"] == 1 and stops.loc["random", "n_runs"] == 2
    assert stops.loc["random", "decisions_mean"] == 75.0
    shown = human_cost_display(table, 1.0)
    assert list(shown["Runs"]) == ["2/2", "2/2", "2/2", "1/2"]


def test_never_reached_and_refusal_without_cost_columns():
    low = CYCLES.assign(accuracy=CYCLES["accuracy"] - 5.0)
    table = human_cost_table(low, FULL, None, ["video"], [], 1.0, "x")
    assert table.loc[0, "n_reached"] == 0 and np.isnan(table.loc[0, "decisions_mean"])
    assert human_cost_display(table, 1.0).loc[0, "Labelled (%)"] == "not reached"
    with pytest.raises(ValueError, match="rerun the active-learning runs"):
        human_cost_table(CYCLES.drop(columns="decisions"), FULL, None, ["video"], [], 1.0, "x")


def test_setting_names():
    assert setting_name({"unit": "keyframe", "pseudo_labels": {"enabled": False}}) == "keyframe"
    al = {"unit": "video", "unit_score": "max", "pseudo_labels": {"enabled": True}}
    assert setting_name(al) == "video, max, pseudo-labels"
    assert setting_name({"unit": "shot", "shot_keyframes": 3}) == "shot (3 keyframes)"


def test_job_and_compare_write_their_files(tmp_path):
    """The rule's job on files, then two such directories compared (docs/human-cost.md)."""
    dirs = []
    for name, unit in (("a", "keyframe"), ("b", "video")):
        work = tmp_path / name
        pattern = str(work / "results/runs/fold{fold}/seed{seed}/{strategy}/cycles.csv")
        full_pattern = str(work / "results/runs/fold{fold}/seed{seed}/full/metrics.csv")
        for run in expected_runs([0, 1], [0], ["video", "random"], pattern, full_pattern):
            path = tmp_path / run.path
            path.parent.mkdir(parents=True, exist_ok=True)
            if run.method == "full":
                pd.DataFrame(
                    {"n_labelled": [100], "n_test": [50], "accuracy": [0.9], "f1": [0.9]}
                    | {"roc_auc": [0.95]}
                ).to_csv(path, index=False)
            else:
                sub = CYCLES[(CYCLES["fold"] == run.fold) & (CYCLES["strategy"] == run.method)]
                frame = sub.drop(columns=["fold", "seed", "strategy"])
                frame = frame.assign(accuracy=frame["accuracy"] / 100.0, n_test=50)
                frame.assign(f1=0.9, roc_auc=0.9).to_csv(path, index=False)
        tables = work / "results/tables"
        outputs = {k: str(tables / f"human_cost.{k}") for k in ("csv", "md", "html")}
        outputs |= {"curves": str(tables / "human_cost_curves.csv")}
        outputs |= {k: str(work / f"results/figures/human_cost.{k}") for k in ("png", "pdf")}
        runs = expected_runs([0, 1], [0], ["video", "random"], pattern, full_pattern)
        human_cost_job(
            runs,
            None,
            ["video", "random"],
            {"unit": unit},
            [],
            {"within_points": 1, "dpi": 50},
            outputs,
        )
        pd.DataFrame({"full_accuracy": [90.0]}).to_csv(tables / "summary.csv", index=False)
        assert "Within 1 point(s) of full" in (tables / "human_cost.md").read_text()
        assert (work / "results/figures/human_cost.png").stat().st_size > 0
        dirs.append(work)
    table = compare(dirs, tmp_path / "out", 1.0, dpi=50)
    assert list(table["setting"]) == ["keyframe", "keyframe", "video", "video"]
    assert (tmp_path / "out" / "human_cost.png").stat().st_size > 0
    curves = cost_curves(CYCLES, ["video"], "x")
    assert curves["decisions"].tolist() == [25.0, 31.0, 37.0, 43.0]
