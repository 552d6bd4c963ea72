"""The paper's Figures 3–7 (one learning-curve figure per fold) and a fold-averaged summary.

Figures are built as matplotlib Figure objects without pyplot (no global state, no display
needed; rendering goes through the Agg canvas) and returned, so tests check their artists
(colours, line styles, title) instead of pixels; save_figure writes them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from alnsfw.io import atomic_path  # noqa: E402
from alnsfw.report.render import display_name  # noqa: E402
from alnsfw.report.runs import RunSpec, load_cycles, load_full, split_existing  # noqa: E402
from alnsfw.report.stopping import rule_name  # noqa: E402
from alnsfw.report.tables import fold_averaged_curve, fold_averaged_full, fold_curve  # noqa: E402

PAPER_COLOURS = {"random": "tab:red", "least_confidence": "tab:green", "entropy": "tab:blue"}
"""The paper's colours: random red, least confidence green, entropy blue."""

STRATEGY_COLOURS = {
    **PAPER_COLOURS,
    "margin": "tab:olive",
    "bald": "tab:purple",
    "coreset": "tab:orange",
    "badge": "tab:brown",
}
"""Fixed colours: the paper's three, and one per built-in strategy it did not run (none red,
green or blue), so a strategy keeps its colour whatever else a config runs."""

EXTRA_COLOURS = ("tab:pink", "tab:cyan", "tab:gray", "gold", "navy", "teal")
"""Colours for other strategies, in config order (none of the fixed ones)."""

MARKERS = ("o", "s", "^", "D", "v", "P")
STOP_MARKERS = {
    "stabilizing_predictions": "*",
    "overall_uncertainty": "X",
    "audit_plateau": "h",
    "budget": "d",
}
"""One marker per stopping rule (none of the cycle markers); other rules get STOP_EXTRA."""
STOP_EXTRA = "p"
FULL_STYLE = {"color": "black", "linestyle": ":", "linewidth": 1.6}
X_LABEL = "Training pool labelled (%)"
Y_LABEL = "Test accuracy (%)"
CURVE_METRICS = {
    # report.curve_metric: (y label, what the title counts, its n column, title wording)
    "accuracy": (Y_LABEL, "test images", "n_test", "test accuracy"),
    "video_accuracy": ("Test video accuracy (%)", "test videos", "n_test_videos", "video accuracy"),
}

log = logging.getLogger(__name__)

Curve = tuple[np.ndarray, np.ndarray, np.ndarray]
StopMarks = Mapping[str, Sequence[tuple[str, float]]]  # strategy -> [(rule, % labelled)]


def stop_marks(verdicts: pd.DataFrame | None, fold: int | None = None) -> dict[str, list]:
    """Where each rule stops each strategy: the mean % labelled over the runs where it fired.

    For one fold (`fold`) the mean is over its seeds; for all folds (None) over the folds'
    means, as the summary curve averages seeds first, then folds. Rules that never fired are
    left out (the stopping table says "never fired").
    """
    if verdicts is None or not len(verdicts):
        return {}
    fired = verdicts[verdicts["fired"].astype(bool)]
    if fold is not None:
        fired = fired[fired["fold"] == fold]
    marks: dict[str, list] = {}
    for (strategy, rule), sub in fired.groupby(["strategy", "rule"], sort=False):
        x = float(sub.groupby("fold")["pct_labelled"].mean().mean())
        marks.setdefault(strategy, []).append((rule, x))
    return marks


def _draw_stops(ax: Axes, curves: Mapping[str, Curve], stops: StopMarks, colours: dict) -> None:
    """Each fired rule's stop point on its strategy's curve (marker per rule), and the legend
    entries of the rules once, in grey."""
    seen: list[str] = []
    order = list(STOP_MARKERS)  # earlier rules drawn larger and below, so coinciding stops show
    for strategy, marks in stops.items():
        if strategy not in curves or not len(curves[strategy][0]):
            continue
        x, mean, _ = curves[strategy]
        for rule, at in marks:
            marker = STOP_MARKERS.get(rule, STOP_EXTRA)
            rank = order.index(rule) if rule in order else len(order)
            y = float(np.interp(at, x, mean))
            ax.plot(
                [at],
                [y],
                linestyle="none",
                marker=marker,
                markersize=14 - 2 * rank,
                markerfacecolor=colours[strategy],
                markeredgecolor="black",
                markeredgewidth=0.8,
                zorder=4 + 0.1 * rank,
                label="_stop",
            )
            if rule not in seen:
                seen.append(rule)
    for rule in seen:
        ax.plot(
            [],
            [],
            linestyle="none",
            marker=STOP_MARKERS.get(rule, STOP_EXTRA),
            markersize=9,
            markerfacecolor="lightgrey",
            markeredgecolor="black",
            label=f"Stop: {rule_name(rule)}",
        )


def strategy_colours(strategies: Sequence[str]) -> dict[str, str]:
    """Colour per strategy: fixed for the built-in ones, any other gets the next extra colour."""
    colours, extra = {}, iter(EXTRA_COLOURS * (1 + len(strategies) // len(EXTRA_COLOURS)))
    for s in strategies:
        colours[s] = STRATEGY_COLOURS.get(s) or next(extra)
    return colours


def learning_curve_figure(
    curves: Mapping[str, Curve],
    full_accuracy: float,
    title: str,
    strategies: Sequence[str],
    within_points: float | None = None,
    markers: bool = True,
    y_label: str = Y_LABEL,
    stops: StopMarks | None = None,
) -> Figure:
    """Accuracy vs % labelled per strategy (solid, ±1 std band), full supervision dotted black.

    The legend sits outside the axes on the right so it never covers a curve. With
    `within_points`, a grey dashed line marks full supervision minus that many points (the
    threshold of the summary table). Markers show the cycles; curves averaged over folds have
    no cycles of their own (their x values are the union of the folds'), so they go without.
    With `stops` (stop_marks), each stopping rule's stop point sits on its strategy's curve.
    """
    colours = strategy_colours(strategies)
    fig = Figure(figsize=(8.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    # Curves can coincide exactly (with two classes, least confidence and entropy rank the pool
    # identically), so earlier strategies are drawn wider and each has its own marker, and a
    # curve equal to an earlier one is drawn dashed on top of it, its legend entry naming the
    # other: both stay visible, and the reader is told it is no plotting accident.
    widths = np.linspace(3.0, 1.5, num=max(len(strategies), 2))
    drawn: list[tuple[str, np.ndarray, np.ndarray]] = []
    for i, strategy in enumerate(strategies):
        if strategy not in curves:
            continue
        x, mean, std = curves[strategy]
        if not len(x):
            continue
        colour = colours[strategy]
        twin = next((name for name, dx, dy in drawn if _same_curve(x, mean, dx, dy)), None)
        label = display_name(strategy)
        if twin is not None:
            label = f"{label} (same as {display_name(twin)})"
        ax.plot(
            x,
            mean,
            color=colour,
            linestyle="--" if twin else "-",
            linewidth=float(widths[i]),
            marker=MARKERS[i % len(MARKERS)] if markers else None,
            markersize=4,
            label=label,
            zorder=2.5 + i * 0.01,
        )
        drawn.append((strategy, np.asarray(x), np.asarray(mean)))
        if np.isfinite(std).any():
            ax.fill_between(
                x, mean - std, mean + std, color=colour, alpha=0.15, linewidth=0, label="_band"
            )
    if np.isfinite(full_accuracy):
        ax.axhline(
            full_accuracy, **FULL_STYLE, label=f"Full supervision (100%): {full_accuracy:.2f}%"
        )
        if within_points is not None:
            ax.axhline(
                full_accuracy - within_points,
                color="grey",
                linestyle="--",
                linewidth=1.0,
                label=f"Full supervision − {within_points:g} point(s)",
            )
    if stops:
        _draw_stops(ax, curves, stops, colours)
    ax.set_xlabel(X_LABEL)
    ax.set_ylabel(y_label)
    if np.isfinite(full_accuracy):  # axhline does not widen the y range: keep it off the frame
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, full_accuracy - 2), max(high, full_accuracy + 2))
    starts = [curves[s][0][0] for s in strategies if s in curves and len(curves[s][0])]
    left = max(0.0, np.floor(min(starts, default=0.0) / 10) * 10 - 2)
    ax.set_xlim(left, 102)
    ax.set_xticks(np.arange(left + 2 if left else 0, 101, 10))
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return fig


def _same_curve(x: np.ndarray, y: np.ndarray, other_x: np.ndarray, other_y: np.ndarray) -> bool:
    """Two learning curves that would be drawn on top of each other."""
    return (
        len(x) == len(other_x)
        and np.allclose(x, other_x, equal_nan=True)
        and np.allclose(y, other_y, atol=1e-9, equal_nan=True)
    )


def _spread_text(n: int, unit: str) -> str:
    """The title's promise about the band: none with a single run to average."""
    if n >= 2:
        return f"mean ± 1 std over {n} {unit}s"
    return f"one {unit}, so no band"


def _count_text(values: Sequence[int]) -> str:
    values = sorted({int(v) for v in values})
    if not values:
        return "?"
    if len(values) == 1:
        return f"{values[0]:,}"
    return f"{values[0]:,}–{values[-1]:,}"


def fold_figure(
    cycles: pd.DataFrame,
    full: pd.DataFrame,
    fold: int,
    strategies: Sequence[str],
    metric: str = "accuracy",
    verdicts: pd.DataFrame | None = None,
) -> Figure:
    """The paper's figure for one fold: mean over seeds, ±1 std band, test-set size in the title.

    `metric` (report.curve_metric): keyframe `accuracy` (the paper's) or `video_accuracy`.
    With `verdicts` (stopping_runs.csv), the stopping rules' stop points are marked.
    """
    y_label, counted, n_col, wording = CURVE_METRICS[metric]
    sub = cycles[cycles["fold"] == fold]
    full_fold = full[full["fold"] == fold] if len(full) else full
    curves = {s: fold_curve(sub, fold, s, metric) for s in strategies}
    n_test = list(sub[n_col]) + (list(full_fold[n_col]) if len(full_fold) else [])
    n_seeds = sub["seed"].nunique() if len(sub) else 0
    full_acc = float(full_fold[metric].mean()) if len(full_fold) else float("nan")
    spread = _spread_text(n_seeds, "seed")
    title = f"Fold {fold}: {_count_text(n_test)} {counted}\n{wording}, {spread}"
    return learning_curve_figure(
        curves, full_acc, title, strategies, y_label=y_label, stops=stop_marks(verdicts, fold)
    )


def summary_figure(
    cycles: pd.DataFrame,
    full: pd.DataFrame,
    strategies: Sequence[str],
    within_points: float | None = None,
    metric: str = "accuracy",
    verdicts: pd.DataFrame | None = None,
) -> Figure:
    """All folds averaged (seeds first, then folds), ±1 std over folds, with the within line;
    with `verdicts`, the stopping rules' stop points (fold means) on the curves."""
    y_label, counted, n_col, wording = CURVE_METRICS[metric]
    curves = {s: fold_averaged_curve(cycles, s, metric) for s in strategies}
    folds = sorted(set(cycles["fold"]) | (set(full["fold"]) if len(full) else set()))
    per_fold = [
        int(cycles.loc[cycles["fold"] == f, n_col].iloc[0])
        for f in folds
        if (cycles["fold"] == f).any()
    ]
    title = (
        f"Mean over {len(folds)} fold(s) ({', '.join(map(str, folds))}): "
        f"{sum(per_fold):,} {counted} in all\n"
        f"{wording}, seeds averaged per fold, {_spread_text(len(folds), 'fold')}"
    )
    return learning_curve_figure(
        curves,
        fold_averaged_full(full, metric),
        title,
        strategies,
        within_points=within_points,
        markers=False,
        y_label=y_label,
        stops=stop_marks(verdicts),
    )


def save_figure(
    fig: Figure, png: str | os.PathLike[str], pdf: str | os.PathLike[str], dpi: int
) -> None:
    """Write the figure as PNG (at `dpi`) and PDF, each atomically."""
    for target, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)


def _load_present(runs: Sequence[RunSpec]) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    present, missing = split_existing(runs)
    for run in missing:
        log.warning("missing run, left out of the figure: %s (%s)", run.label, run.path)
    return load_cycles(present), load_full(present), len(missing)


def _read_verdicts(path: str | None) -> pd.DataFrame | None:
    return pd.read_csv(path) if path else None


def _mark_partial(fig: Figure, n_missing: int) -> Figure:
    """Say in the title that runs are missing, so a partial figure is never taken for final."""
    if n_missing:
        ax = fig.axes[0]
        ax.set_title(f"{ax.get_title()}\nPARTIAL: {n_missing} expected run(s) missing")
    return fig


def write_fold_figure(
    runs: Sequence[RunSpec],
    fold: int,
    strategies: Sequence[str],
    png: str | os.PathLike[str],
    pdf: str | os.PathLike[str],
    report: Mapping[str, object],
    verdicts: str | None = None,
) -> None:
    """Load the fold's existing runs and write its figure (PNG at report.dpi, and PDF);
    `verdicts`: stopping_runs.csv, whose stop points are marked."""
    cycles, full, n_missing = _load_present(runs)
    metric = str(report.get("curve_metric", "accuracy"))
    marks = _read_verdicts(verdicts)
    fig = _mark_partial(fold_figure(cycles, full, fold, strategies, metric, marks), n_missing)
    save_figure(fig, png, pdf, int(report["dpi"]))


def write_summary_figure(
    runs: Sequence[RunSpec],
    strategies: Sequence[str],
    png: str | os.PathLike[str],
    pdf: str | os.PathLike[str],
    report: Mapping[str, object],
    verdicts: str | None = None,
) -> None:
    """Load all existing runs and write the fold-averaged figure with the within-points line
    (and the stop points of `verdicts`, stopping_runs.csv)."""
    cycles, full, n_missing = _load_present(runs)
    within = float(report["within_points"])
    metric = str(report.get("curve_metric", "accuracy"))
    marks = _read_verdicts(verdicts)
    fig = _mark_partial(summary_figure(cycles, full, strategies, within, metric, marks), n_missing)
    save_figure(fig, png, pdf, int(report["dpi"]))
