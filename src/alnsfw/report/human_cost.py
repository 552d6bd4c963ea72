"""The human-cost table and figure: what people paid, in decisions and images seen, to get there.

Beside Table 2 (accuracy at % labelled) and the stopping table (where each rule stops). Per
strategy, for the run's setting (al.unit, pseudo-labels), two kinds of rows:

- "within N points": the first % labelled from which the fold-averaged accuracy curve stays
  within report.within_points of fold-averaged full supervision (the summary table's
  threshold), and the fold-averaged labels, decisions and images shown at that point (each
  curve read linearly at that %);
- one row per stopping rule: mean ± sample std, over the runs in which the rule fired, of the
  labels, decisions, images shown and test accuracy at the cycle where it fired
  (stopping_runs.csv).

The figure plots the fold-averaged accuracy against decisions and against images shown. The
cost model is alnsfw.al.cost's (al.cost); runs written before the cost columns existed are
refused with a message saying to rerun them. `compare` puts the tables and curves of several
workflow directories (one per setting) side by side, for docs/human-cost.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from alnsfw.io import write_csv, write_text  # noqa: E402
from alnsfw.markdown import markdown_table  # noqa: E402
from alnsfw.report.curves import stays_within_from  # noqa: E402
from alnsfw.report.figures import FULL_STYLE, save_figure, strategy_colours  # noqa: E402
from alnsfw.report.render import display_name, fmt, html_page, mean_std  # noqa: E402
from alnsfw.report.runs import RunSpec, load_cycles, load_full, split_existing  # noqa: E402
from alnsfw.report.stopping import rule_name  # noqa: E402
from alnsfw.report.tables import fold_averaged_curve, fold_averaged_full  # noqa: E402

TITLE = "Human cost: decisions and images shown"
COST_MEASURES = ("n_labelled", "decisions", "images_shown")
MEASURES = ("pct_labelled", *COST_MEASURES, "accuracy")
WITHIN = "within"
COLUMNS = [
    "setting",
    "strategy",
    "point",
    "n_runs",
    "n_reached",
    *[f"{m}_{s}" for m in MEASURES for s in ("mean", "std")],
]
CURVE_COLUMNS = ["setting", "strategy", "pct_labelled", "accuracy", *COST_MEASURES]


def setting_name(al: Mapping[str, Any]) -> str:
    """A short name of a run's human-cost setting, e.g. `video, max, pseudo-labels`."""
    unit = str(al.get("unit", "keyframe"))
    parts = [f"shot ({al.get('shot_keyframes', 4)} keyframes)" if unit == "shot" else unit]
    if unit != "keyframe" and al.get("unit_score", "mean") != "mean":
        parts.append(str(al["unit_score"]))
    if (al.get("pseudo_labels") or {}).get("enabled"):
        parts.append("pseudo-labels")
    return ", ".join(parts)


def require_cost(cycles: pd.DataFrame) -> None:
    """Refuse cycles.csv files without the cost columns (written before they existed)."""
    absent = [c for c in ("decisions", "images_shown") if c not in cycles.columns]
    if absent or (len(cycles) and cycles["decisions"].isna().all()):
        raise ValueError(
            "cycles.csv lacks the human-cost columns decisions / images_shown (written before "
            "they existed): rerun the active-learning runs (snakemake --forcerun active_learning)"
        )


def cost_curves(cycles: pd.DataFrame, strategies: Sequence[str], setting: str) -> pd.DataFrame:
    """Fold-averaged accuracy, labels, decisions and images shown on each strategy's % grid."""
    frames = []
    for strategy in strategies:
        x, acc, _ = fold_averaged_curve(cycles, strategy, "accuracy")
        if not x.size:
            continue
        frame = {"setting": setting, "strategy": strategy, "pct_labelled": x, "accuracy": acc}
        for measure in COST_MEASURES:
            xm, ym, _ = fold_averaged_curve(cycles, strategy, measure)
            frame[measure] = np.interp(x, xm, ym)
        frames.append(pd.DataFrame(frame))
    if not frames:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]


def _std(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size > 1 else float("nan")


def human_cost_table(
    cycles: pd.DataFrame,
    full: pd.DataFrame,
    verdicts: pd.DataFrame | None,
    strategies: Sequence[str],
    rules: Sequence[str],
    within_points: float,
    setting: str,
) -> pd.DataFrame:
    """The table in numbers (COLUMNS): per strategy the within-N-points row, then one per rule."""
    require_cost(cycles)
    reference = fold_averaged_full(full)
    curves = cost_curves(cycles, strategies, setting)
    rows = []
    for strategy in strategies:
        runs = cycles[cycles["strategy"] == strategy]
        n_runs = int(runs.groupby(["fold", "seed"]).ngroups)
        curve = curves[curves["strategy"] == strategy]
        row: dict[str, Any] = dict.fromkeys(COLUMNS, float("nan"))
        row |= {"setting": setting, "strategy": strategy, "point": WITHIN, "n_runs": n_runs}
        pct = float("nan")
        if len(curve):
            x, acc = curve["pct_labelled"], curve["accuracy"]
            pct = stays_within_from(x, acc, reference, within_points)
        row["n_reached"] = n_runs if not np.isnan(pct) else 0
        if not np.isnan(pct):
            row["pct_labelled_mean"] = pct
            for measure in (*COST_MEASURES, "accuracy"):
                value = np.interp(pct, curve["pct_labelled"], curve[measure])
                row[f"{measure}_mean"] = float(value)
        rows.append(row)
        for rule in rules if verdicts is not None else ():
            sub = verdicts[(verdicts["strategy"] == strategy) & (verdicts["rule"] == rule)]
            fired = sub[sub["fired"].astype(bool)][["fold", "seed", "strategy", "cycle"]]
            at = fired.merge(runs, on=["fold", "seed", "strategy", "cycle"], how="left")
            row = dict.fromkeys(COLUMNS, float("nan"))
            row |= {"setting": setting, "strategy": strategy, "point": rule}
            row |= {"n_runs": len(sub), "n_reached": len(fired)}
            for measure in MEASURES:
                values = at[measure].to_numpy(dtype=float) if len(at) else np.array([])
                values = values[~np.isnan(values)]
                row[f"{measure}_mean"] = float(values.mean()) if values.size else float("nan")
                row[f"{measure}_std"] = _std(values)
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def point_name(point: str, within_points: float) -> str:
    """Human name of a table row's point."""
    if point == WITHIN:
        return f"Within {within_points:g} point(s) of full"
    return f"Stop: {rule_name(point)}"


def human_cost_display(table: pd.DataFrame, within_points: float) -> pd.DataFrame:
    """The table as a reader sees it: mean ± std; 'not reached' / 'never fired' rows."""
    rows = []
    for r in table.itertuples(index=False):
        row = {
            "Setting": r.setting,
            "Strategy": display_name(r.strategy),
            "Point": point_name(r.point, within_points),
            "Runs": f"{r.n_reached}/{r.n_runs}",
        }
        if not r.n_reached:
            never = "not reached" if r.point == WITHIN else "never fired"
            row |= {"Labelled (%)": never, "Labels": "–", "Decisions": "–", "Images shown": "–"}
            row["Accuracy (%)"] = "–"
        else:
            row["Labelled (%)"] = mean_std(r.pct_labelled_mean, r.pct_labelled_std, 1)
            row["Labels"] = mean_std(r.n_labelled_mean, r.n_labelled_std, 0)
            row["Decisions"] = mean_std(r.decisions_mean, r.decisions_std, 0)
            row["Images shown"] = mean_std(r.images_shown_mean, r.images_shown_std, 0)
            row["Accuracy (%)"] = mean_std(r.accuracy_mean, r.accuracy_std, 2)
        rows.append(row)
    return pd.DataFrame(rows)


def human_cost_notes(
    within_points: float, full_accuracy: float, cost: Mapping[str, Any]
) -> list[str]:
    """What the numbers are and which cost model counted them."""
    return [
        f"Within {within_points:g} point(s): the first % labelled from which the fold-averaged "
        f"test accuracy stays within {within_points:g} point(s) of fold-averaged full supervision "
        f"({fmt(full_accuracy, 2)}%), and the fold-averaged labels, decisions and images shown "
        "there. Stop rows: mean ± sample std over the runs in which the rule fired, at the cycle "
        "where it fired (stopping table).",
        "Cost model (al.cost, alnsfw.al.cost): a keyframe task is "
        f"{cost.get('decisions_per_task', 1):g} decision(s) and shows one keyframe; a shot or "
        f"video task is {cost.get('decisions_per_task', 1):g} decision(s) plus "
        f"{cost.get('decisions_per_correction', 1):g} per keyframe changed from its pre-filled "
        "guess (the model's prediction at query time), and shows all its unlabelled keyframes; "
        f"{cost.get('images_per_keyframe', 1):g} image(s) per keyframe shown. The initial labelled "
        "set counts as keyframe tasks in every setting. Labels: human labels only "
        "(pseudo-labels are never counted).",
    ]


def cost_figure(
    curves: pd.DataFrame,
    full_accuracy: float,
    within_points: float,
    title: str = TITLE,
) -> Figure:
    """Accuracy against decisions (left) and against images shown (right), one line per
    strategy and setting; full supervision dotted, full - within_points dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    groups = list(curves.groupby(["setting", "strategy"], sort=False))
    colours = strategy_colours(list(dict.fromkeys(curves["strategy"])))
    settings = list(dict.fromkeys(curves["setting"]))
    styles = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)))
    markers = ("o", "s", "^", "D", "v", "P")
    for ax, measure, label in (
        (axes[0], "decisions", "Decisions (cumulative)"),
        (axes[1], "images_shown", "Images shown (cumulative)"),
    ):
        for (setting, strategy), curve in groups:
            i = settings.index(setting)
            name = display_name(strategy)
            if len(settings) > 1:
                name = f"{name}, {setting}"
            ax.plot(
                curve[measure],
                curve["accuracy"],
                color=colours[strategy],
                linestyle=styles[i % len(styles)],
                marker=markers[i % len(markers)],
                markersize=3,
                label=name,
            )
        if not np.isnan(full_accuracy):
            ax.axhline(full_accuracy, label="Full supervision", **FULL_STYLE)
            ax.axhline(
                full_accuracy - within_points,
                color="grey",
                linewidth=0.8,
                linestyle="--",
                label=f"Full - {within_points:g} point(s)",
            )
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Test accuracy (%), fold average")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def human_cost_job(
    runs: Sequence[RunSpec],
    verdicts: str | None,
    strategies: Sequence[str],
    al: Mapping[str, Any],
    rules: Sequence[str],
    report: Mapping[str, Any],
    outputs: Mapping[str, str],
) -> None:
    """Write the table (outputs csv, md, html), its curves (curves) and figure (png, pdf)."""
    present, missing = split_existing(runs)
    if missing and not report.get("allow_partial", False):
        raise FileNotFoundError(
            "missing run results (set report.allow_partial: true to use what exists): "
            + ", ".join(r.path for r in missing)
        )
    cycles, full = load_cycles(present), load_full(present)
    within = float(report["within_points"])
    setting = setting_name(al)
    marks = pd.read_csv(verdicts) if verdicts else None
    table = human_cost_table(cycles, full, marks, strategies, rules, within, setting)
    curves = cost_curves(cycles, strategies, setting)
    reference = fold_averaged_full(full)
    notes = human_cost_notes(within, reference, al.get("cost") or {})
    if missing:
        left_out = ", ".join(r.label for r in missing)
        notes.append(f"PARTIAL RESULTS: missing and left out: {left_out}.")
    display = human_cost_display(table, within)
    write_csv(outputs["csv"], table)
    write_csv(outputs["curves"], curves)
    write_text(outputs["md"], markdown_table(TITLE, display, notes))
    write_text(outputs["html"], html_page(TITLE, display, notes))
    fig = cost_figure(curves, reference, within, f"{TITLE} ({setting})")
    save_figure(fig, outputs["png"], outputs["pdf"], int(report["dpi"]))
    plt.close(fig)


def compare(
    directories: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    within_points: float,
    dpi: int = 150,
) -> pd.DataFrame:
    """Several workflow directories (one per setting) side by side: their human_cost tables in
    one (csv, md) and their curves in one figure (png), written to `out_dir`."""
    tables, curves, fulls = [], [], []
    for directory in directories:
        tables.append(pd.read_csv(Path(directory) / "results/tables/human_cost.csv"))
        curves.append(pd.read_csv(Path(directory) / "results/tables/human_cost_curves.csv"))
        full = pd.read_csv(Path(directory) / "results/tables/summary.csv")
        fulls.append(float(full["full_accuracy"].iloc[0]))
    if max(fulls) - min(fulls) > 1e-9:
        raise ValueError(f"the directories' full-supervision accuracies differ: {fulls}")
    table, curve = pd.concat(tables, ignore_index=True), pd.concat(curves, ignore_index=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "human_cost.csv", table)
    display = human_cost_display(table, within_points)
    write_text(out / "human_cost.md", markdown_table(TITLE, display, []))
    fig = cost_figure(curve, fulls[0], within_points)
    with open(out / "human_cost.png", "wb") as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    plt.close(fig)
    return table
