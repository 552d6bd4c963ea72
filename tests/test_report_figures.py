"""The figures' artists (colours, line styles, title, legend placement) on hand-made runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from test_report_fixtures import N_TEST, STRATEGIES, make_runs

from alnsfw.report.figures import (
    fold_figure,
    save_figure,
    strategy_colours,
    summary_figure,
    write_fold_figure,
    write_summary_figure,
)
from alnsfw.report.runs import load_cycles, load_full


@pytest.fixture
def loaded(tmp_path):
    runs = make_runs(tmp_path, [*STRATEGIES, "margin"])
    return load_cycles(runs), load_full(runs)


def lines_by_label(fig):
    ax = fig.axes[0]
    return {line.get_label(): line for line in ax.get_lines()}


def test_fold_figure_paper_styles(loaded):
    cycles, full = loaded
    fig = fold_figure(cycles, full, 0, [*STRATEGIES, "margin"])
    lines = lines_by_label(fig)
    expected = {"Random": "tab:red", "Least confidence": "tab:green", "Entropy": "tab:blue"}
    for label, colour in expected.items():
        assert to_hex(lines[label].get_color()) == to_hex(colour), label
        assert lines[label].get_linestyle() == "-", label
    margin = to_hex(lines["Margin"].get_color())
    assert margin not in {to_hex(c) for c in ("tab:red", "tab:green", "tab:blue", "black")}
    [full_line] = [line for label, line in lines.items() if label.startswith("Full supervision")]
    assert to_hex(full_line.get_color()) == to_hex("black")
    assert full_line.get_linestyle() == ":"
    assert full_line.get_ydata()[0] == pytest.approx(86.2)
    ax = fig.axes[0]
    assert "Fold 0" in ax.get_title() and f"{N_TEST[0]:,} test images" in ax.get_title()
    assert "%" in ax.get_xlabel() and "%" in ax.get_ylabel()
    # mean over the two seeds: run offsets -1 and +1 cancel
    assert list(lines["Random"].get_ydata()) == pytest.approx([80, 81.5, 83, 84.5, 86, 88])
    assert list(lines["Random"].get_xdata()) == pytest.approx([20, 35, 50, 65, 80, 100])
    # one ±1 std band per strategy
    assert len(ax.collections) == 4


def test_legend_does_not_cover_the_axes(loaded):
    cycles, full = loaded
    fig = fold_figure(cycles, full, 1, STRATEGIES)
    fig.draw_without_rendering()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1
    assert "Fold 1" in ax.get_title() and "1,234 test images" in ax.get_title()


def test_summary_figure_averages_folds(loaded):
    cycles, full = loaded
    fig = summary_figure(cycles, full, STRATEGIES, within_points=1.0)
    lines = lines_by_label(fig)
    assert list(lines["Entropy"].get_ydata()) == pytest.approx([82, 83.5, 85, 86.5, 88, 90])
    full_line = next(v for k, v in lines.items() if k.startswith("Full supervision ("))
    assert full_line.get_ydata()[0] == pytest.approx(86.6)
    within = next(v for k, v in lines.items() if "− 1 point" in k)
    assert within.get_ydata()[0] == pytest.approx(85.6) and within.get_linestyle() == "--"
    title = fig.axes[0].get_title()
    assert "2 fold(s)" in title and f"{N_TEST[0] + N_TEST[1]:,} test images" in title


def test_strategy_colours_keep_paper_colours_and_differ():
    colours = strategy_colours(["margin", "entropy", "bald", "random", "least_confidence"])
    assert colours["random"] == "tab:red" and colours["entropy"] == "tab:blue"
    assert len(set(colours.values())) == 5


def test_saved_files(tmp_path, loaded):
    cycles, full = loaded
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    save_figure(fold_figure(cycles, full, 0, STRATEGIES), png, pdf, dpi=150)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_write_functions_skip_missing_runs(tmp_path):
    runs = make_runs(tmp_path)
    Path(next(r.path for r in runs if r.label == "fold0/seed0/entropy")).unlink()
    out = tmp_path / "figures"
    write_fold_figure(runs, 0, STRATEGIES, out / "fold0.png", out / "fold0.pdf", {"dpi": 150})
    report = {"within_points": 1, "dpi": 150}
    write_summary_figure(runs, STRATEGIES, out / "s.png", out / "s.pdf", report)
    assert all((out / n).stat().st_size > 0 for n in ("fold0.png", "fold0.pdf", "s.png", "s.pdf"))


def test_partial_figures_say_so(loaded):
    from alnsfw.report.figures import _mark_partial

    cycles, full = loaded
    fig = _mark_partial(fold_figure(cycles, full, 0, STRATEGIES), 2)
    assert "PARTIAL: 2 expected run(s) missing" in fig.axes[0].get_title()
    assert "Fold 0" in fig.axes[0].get_title()


def test_new_strategies_have_fixed_distinct_colours():
    from alnsfw.report.figures import PAPER_COLOURS

    names = ["random", "least_confidence", "entropy", "margin", "bald", "coreset", "badge"]
    colours = strategy_colours(names + ["mine", "yours"])
    assert len(set(colours.values())) == len(names) + 2
    assert {colours[s] for s in ("bald", "coreset", "badge")}.isdisjoint(PAPER_COLOURS.values())
    assert strategy_colours(["bald"]) == {"bald": colours["bald"]}  # same in any config


def test_one_seed_title_promises_no_band(loaded):
    cycles, full = loaded
    one_seed = cycles[cycles["seed"] == 0]
    fig = fold_figure(one_seed, full, 0, STRATEGIES)
    title = fig.axes[0].get_title()
    assert "±" not in title and "one seed" in title, title
    assert len(fig.axes[0].collections) == 0  # and draws none
    two = fold_figure(cycles, full, 0, STRATEGIES).axes[0].get_title()
    assert "± 1 std over 2 seeds" in two, two


def test_one_fold_summary_title_promises_no_band(loaded):
    cycles, full = loaded
    fig = summary_figure(cycles[cycles["fold"] == 0], full[full["fold"] == 0], STRATEGIES)
    title = fig.axes[0].get_title()
    assert "±" not in title, title


def test_coinciding_curves_stay_visible(loaded):
    """Least confidence equal to entropy (as with two classes): the later one is drawn dashed on
    top and the legend says which curve it coincides with."""
    cycles, full = loaded
    same = cycles.copy()
    entropy = same["strategy"] == "entropy"
    same.loc[entropy, "accuracy"] = same.loc[
        same["strategy"] == "least_confidence", "accuracy"
    ].to_numpy()
    for fig in (fold_figure(same, full, 0, STRATEGIES), summary_figure(same, full, STRATEGIES)):
        lines = lines_by_label(fig)
        [label] = [k for k in lines if k.startswith("Entropy")]
        assert "same as Least confidence" in label, label
        assert lines[label].get_linestyle() == "--"
        assert lines[label].get_zorder() > lines["Least confidence"].get_zorder()
        assert lines["Random"].get_linestyle() == "-"
