# Helpers of the report stage (workflow/rules/report.smk), kept apart from its rules as
# `snakemake --lint` asks: the tables it writes, their report entries, and which runs it reads.
import os

from alnsfw.report.runs import expected_runs  # noqa: E402

REPORT_TABLES = ["table2", "table2_video", "f1", "roc_auc", "summary", "paired"]
TABLE_TITLES = {
    "table2": "Table 2 (accuracy)",
    "table2_video": "Table 2, video level",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "summary": "Learning-curve summary",
    "paired": "Strategy vs random",
    "peers": "Zero-shot peers",
}


def run_results(folds):
    """Result files the report reads for these folds: all of them, or with report.allow_partial
    only those that exist now (so the report can be made while runs are still going)."""
    runs = expected_runs(folds, SEEDS, STRATEGIES, CYCLES, FULL_METRICS)
    paths = [r.path for r in runs]
    if config["report"]["allow_partial"]:
        paths = [p for p in paths if os.path.exists(p)]
    return paths


def stopping_results(folds):
    """The stopping.csv files of the AL runs of these folds (all, or with report.allow_partial
    those that exist now), beside run_results' cycles.csv and metrics.csv."""
    paths = [
        STOPPING.format(fold=f, seed=s, strategy=st)
        for f in folds
        for s in SEEDS
        for st in STRATEGIES
    ]
    if config["report"]["allow_partial"]:
        paths = [p for p in paths if os.path.exists(p)]
    return paths


def stopping_outputs():
    """Named outputs of the stopping step: per-run verdicts and the table (csv, md, html)."""
    out = {"md": "results/tables/stopping.md"}
    for key, name, fmt, title in (
        ("runs", "stopping_runs.csv", "CSV", "Stopping verdicts per run"),
        ("csv", "stopping.csv", "CSV", "Stopping rules"),
        ("html", "stopping.html", "HTML", "Stopping rules"),
    ):
        out[key] = report(
            f"results/tables/{name}",
            caption="../report/stopping.rst",
            category=CATEGORY["tables"],
            subcategory="Stopping rules",
            labels={"table": title, "format": fmt},
        )
    return out


def human_cost_outputs():
    """Named outputs of the human-cost table, curves and figure (the lint reads the word r-u-l-e
    followed by any text and a colon as a rule, so this docstring avoids it)."""
    table = {"table": "Human cost", "format": "HTML"}
    return {
        "csv": report(
            "results/tables/human_cost.csv",
            caption="../report/human_cost.rst",
            category=CATEGORY["tables"],
            subcategory="Human cost",
            labels=table | {"format": "CSV"},
        ),
        "html": report(
            "results/tables/human_cost.html",
            caption="../report/human_cost.rst",
            category=CATEGORY["tables"],
            subcategory="Human cost",
            labels=table,
        ),
        "md": "results/tables/human_cost.md",
        "curves": "results/tables/human_cost_curves.csv",
        "png": report(
            "results/figures/human_cost.png",
            caption="../report/human_cost.rst",
            category=CATEGORY["figures"],
            subcategory="Human cost",
            labels={"figure": "Accuracy against decisions and images shown"},
        ),
        "pdf": "results/figures/human_cost.pdf",
    }


def table_outputs():
    """Named outputs of `aggregate`: <table>_csv|md|html; csv and html shown in the report."""
    out = {}
    tables = REPORT_TABLES + (["peers"] if config["report"]["peers"] else [])
    for name in tables:
        caption = f"../report/{name}.rst"
        for fmt in ("csv", "html"):
            out[f"{name}_{fmt}"] = report(
                f"results/tables/{name}.{fmt}",
                caption=caption,
                category=CATEGORY["tables"],
                subcategory=TABLE_TITLES[name],
                labels={"table": TABLE_TITLES[name], "format": fmt.upper()},
            )
        out[f"{name}_md"] = f"results/tables/{name}.md"
    return out


def where_results_are():
    """The closing lines of a successful run (Snakefile `onsuccess`): where Table 2, the
    figures and the report are, so a new user need not search results/. Only files that exist
    are named (a run with --until stops earlier); the HTML report is made by `make report`.
    """
    found = [
        ("Table 2", "results/tables/table2.md"),
        ("summary figure", "results/figures/summary.png"),
        ("per-fold figures", "results/figures/"),
        ("HTML report", "results/report.html"),
    ]
    lines = [f"  {what}: {path}" for what, path in found if os.path.exists(path)]
    if not os.path.exists("results/report.html") and os.path.exists(
        "results/tables/table2.md"
    ):
        lines.append(
            "  HTML report: run `make report` (snakemake --report results/report.html)"
        )
    if lines:
        print("Results:", *lines, sep="\n")
