"""Video-level aggregation on hand-made predictions (alnsfw.video_eval): no TensorFlow."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alnsfw.al.loop import CYCLE_COLUMNS, LoopSettings, Split, run_active_learning
from alnsfw.al.seeding import RunSeeds
from alnsfw.video_eval import (
    AGGREGATIONS,
    VIDEO_METRIC_COLUMNS,
    VideoIndex,
    VideoRule,
    VideoSettings,
    aggregate,
    best_threshold,
    choose_rule,
    video_metrics,
    video_scores,
)

P = [0.1, 0.9, 0.2, 0.8, 0.3]
DEFAULTS = VideoSettings.from_config({})  # the schema's top_k and frame_threshold


def rule_of(aggregation: str, threshold: float = 0.5) -> VideoRule:
    return VideoRule(aggregation, threshold, DEFAULTS.top_k, DEFAULTS.frame_threshold)


def settings_of(**video: object) -> VideoSettings:
    return VideoSettings.from_config({"video": video})


@pytest.mark.parametrize(
    ("method", "expected"),
    [("mean", 0.46), ("max", 0.9), ("topk_mean", (0.9 + 0.8 + 0.3) / 3), ("fraction", 0.4)],
)
def test_each_aggregation_by_hand(method, expected):
    assert aggregate(P, method, top_k=3, frame_threshold=0.5) == pytest.approx(expected)


def test_topk_with_fewer_frames_than_k_is_their_mean_and_empty_video_is_nan():
    assert aggregate([0.2, 0.4], "topk_mean", top_k=5, frame_threshold=0.5) == pytest.approx(0.3)
    assert np.isnan(aggregate([], "mean", 3, 0.5))


def test_unknown_aggregation_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="mean, max, topk_mean, fraction"):
        rule_of("median")


def test_video_scores_groups_frames_and_keeps_video_labels():
    videos = ["a", "a", "b", "b", "b", "c"]
    probs = [0.9, 0.7, 0.1, 0.2, 0.6, 0.4]
    labels = [1, 1, 0, 0, 0, 1]
    table = video_scores(videos, probs, rule_of("max"), labels)
    assert table["video"].tolist() == ["a", "b", "c"]
    assert table["n_frames"].tolist() == [2, 3, 1]
    assert table["score"].tolist() == pytest.approx([0.9, 0.6, 0.4])
    assert table["label"].tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="video b"):
        video_scores(videos, probs, rule_of("mean"), [1, 1, 0, 1, 0, 1])


def test_video_metrics_by_hand():
    labels = np.array([1, 1, 0, 0])
    scores = np.array([0.8, 0.4, 0.3, 0.6])
    m = video_metrics(labels, scores, 0.5)  # predictions 1, 0, 0, 1
    assert m["video_accuracy"] == pytest.approx(0.5)
    assert m["video_f1"] == pytest.approx(0.5)  # tp 1, fp 1, fn 1
    assert m["video_roc_auc"] == pytest.approx(0.75)  # 3 of 4 pos/neg pairs ordered
    assert video_metrics(labels, scores, 0.35)["video_accuracy"] == pytest.approx(0.75)


def test_best_threshold_separates_and_prefers_one_near_half():
    t, acc = best_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9]))
    assert acc == 1.0 and t == 0.5  # 0.5 separates them: kept rather than a midpoint
    t, acc = best_threshold(np.array([0, 0, 1, 1]), np.array([0.6, 0.65, 0.7, 0.9]))
    assert acc == 1.0 and 0.65 < t <= 0.7


def test_choose_rule_picks_the_aggregation_that_separates_validation_videos():
    # Porn videos have one strongly porn frame among innocent ones; non-porn videos are
    # uniformly middling: the mean cannot separate them, the max can.
    videos = ["p1"] * 4 + ["p2"] * 4 + ["n1"] * 4 + ["n2"] * 4
    probs = [0.05, 0.1, 0.1, 0.95] + [0.1, 0.05, 0.9, 0.1] + [0.3] * 4 + [0.35] * 4
    labels = [1] * 8 + [0] * 8
    settings = settings_of(aggregation="auto", threshold="auto", candidates=list(AGGREGATIONS))
    rule = choose_rule(videos, probs, labels, settings)
    assert rule.aggregation == "max"
    table = video_scores(videos, probs, rule, labels)
    assert video_metrics(table["label"], table["score"], rule.threshold)["video_accuracy"] == 1.0
    fixed = choose_rule(videos, probs, labels, settings_of(aggregation="mean", threshold=0.5))
    assert (fixed.aggregation, fixed.threshold) == ("mean", 0.5)


def test_rule_is_chosen_on_validation_rows_only():
    """Test rows with their labels flipped must not change the rule chosen on validation."""
    video = np.array(["v0"] * 3 + ["v1"] * 3 + ["t0"] * 3 + ["t1"] * 3, dtype=object)
    label = np.array([1] * 3 + [0] * 3 + [1] * 3 + [0] * 3)
    index = VideoIndex(video, label, settings_of(aggregation="auto", threshold="auto"))
    val, test = np.arange(6), np.arange(6, 12)
    val_p = np.array([0.9, 0.8, 0.7, 0.2, 0.1, 0.3])
    test_p = np.array([0.1, 0.2, 0.1, 0.9, 0.9, 0.8])
    cols = index.columns(val, val_p, test, test_p)
    flipped = VideoIndex(video, np.r_[label[:6], 1 - label[6:]], index.settings)
    cols2 = flipped.columns(val, val_p, test, test_p)
    assert cols["video_aggregation"] == cols2["video_aggregation"]
    assert cols["video_threshold"] == cols2["video_threshold"]
    assert cols["video_accuracy"] == 0.0 and cols2["video_accuracy"] == 1.0
    assert cols["n_test_videos"] == 2
    assert set(cols) == set(VIDEO_METRIC_COLUMNS)


class _Oracle:
    """A learner that always returns fixed probabilities per row (no training)."""

    def __init__(self, p: np.ndarray) -> None:
        self.p = p

    def fit(self, train_rows, val_rows, max_epochs, patience, *, train_labels, val_labels):
        return {"epochs": 1, "val_loss": 0.1, "history": []}

    def predict_proba(self, rows):
        p = self.p[np.asarray(rows)]
        return np.stack([1 - p, p], axis=1)

    def reset(self):
        pass

    def save(self, directory):
        pass

    def load(self, directory):
        pass


def test_loop_records_video_columns_every_cycle():
    rng = np.random.default_rng(0)
    n_videos, per = 12, 5
    video = np.repeat([f"v{i}" for i in range(n_videos)], per).astype(object)
    video_label = np.repeat(np.arange(n_videos) % 2, per)
    p = np.clip(video_label * 0.5 + rng.uniform(0.1, 0.4, len(video)), 0, 1)
    rows = np.arange(len(video))
    split = Split(pool=rows[:30], val=rows[30:40], test=rows[40:])
    settings = LoopSettings(0.2, 10, True, 1, 1)
    index = VideoIndex(video, video_label, settings_of(aggregation="mean", threshold=0.5))
    result = run_active_learning(
        _Oracle(p), split, video_label, "random", settings, RunSeeds.for_run(0, 0, "random"),
        video_index=index,
    )  # fmt: skip
    cycles = result.cycles
    assert list(cycles.columns) == CYCLE_COLUMNS
    assert (cycles["n_test_videos"] == 4).all()
    test = video_scores(video[split.test], p[split.test], rule_of("mean"), video_label[split.test])
    expected = video_metrics(test["label"], test["score"], 0.5)["video_accuracy"]
    assert np.allclose(cycles["video_accuracy"], expected)
    bare = run_active_learning(
        _Oracle(p), split, video_label, "random", settings, RunSeeds.for_run(0, 0, "random")
    )
    assert bare.cycles["video_accuracy"].isna().all()
    assert isinstance(bare.cycles, pd.DataFrame)


def _with_video_columns(runs):
    """Give the report fixtures' runs video columns: video accuracy = keyframe accuracy - 0.05."""
    for run in runs:
        frame = pd.read_csv(run.path)
        frame["video_accuracy"] = frame["accuracy"] - 0.05
        frame["n_test_videos"] = 7
        frame.to_csv(run.path, index=False)


def test_table2_video_twin_and_video_learning_curves(tmp_path):
    from test_report_fixtures import STRATEGIES, make_runs, table_outputs

    from alnsfw.report.aggregate import aggregate
    from alnsfw.report.figures import fold_figure
    from alnsfw.report.options import ReportOptions
    from alnsfw.report.runs import load_cycles, load_full

    runs = make_runs(tmp_path)
    _with_video_columns(runs)
    outputs = table_outputs(tmp_path)
    nearest = ReportOptions.from_config({"report": {"interpolation": "nearest"}})
    aggregate(runs, STRATEGIES, nearest, outputs)
    keyframe = pd.read_csv(outputs["table2_csv"]).set_index("pct_labelled")
    video = pd.read_csv(outputs["table2_video_csv"]).set_index("pct_labelled")
    means = [c for c in keyframe.columns if c.endswith("_mean")]
    np.testing.assert_allclose(video[means], keyframe[means] - 5.0)
    assert "validation split" in open(outputs["table2_video_md"]).read()

    cycles, full = load_cycles(runs), load_full(runs)
    fig = fold_figure(cycles, full, 0, STRATEGIES, metric="video_accuracy")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "Test video accuracy (%)" and "7 test videos" in ax.get_title()
    plotted = ax.lines[0].get_ydata()
    accuracy_fig = fold_figure(cycles, full, 0, STRATEGIES)
    np.testing.assert_allclose(plotted, accuracy_fig.axes[0].lines[0].get_ydata() - 5.0)


def test_al_and_model_import_nothing_from_predict() -> None:
    """Layering: video evaluation and the trained-weights file live below `predict` (issue 19)."""
    root = Path(__file__).resolve().parents[1] / "src" / "alnsfw"
    offenders = []
    for package in ("al", "model"):
        for path in sorted((root / package).glob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                offenders += [f"{path.name}: {n}" for n in names if n.startswith("alnsfw.predict")]
    assert offenders == []
