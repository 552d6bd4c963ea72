# Helpers shared by the stage files: config validation, the list of videos, output paths, targets,
# and every function the stage files call (Snakemake's lint wants functions apart from rules).
import os
import sys
from pathlib import Path

from snakemake.utils import validate

REPO = Path(workflow.current_basedir).parents[1]
sys.path.insert(0, str(REPO / "src"))

import yaml  # noqa: E402

from alnsfw.config import check_config, coerce_cli_scalars  # noqa: E402
from alnsfw.io import remove_stale_temporaries  # noqa: E402
from alnsfw.data.layout import planned_videos  # noqa: E402
from alnsfw.report.runs import expected_runs  # noqa: E402

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
coerce_cli_scalars(config, yaml.safe_load(SCHEMA.read_text()))
validate(config, "../schemas/config.schema.yaml")
check_config(config)

# One entry per video of the dataset, known before any job runs (synthetic: from the config;
# npdi: from a scan of data.root), so each video gets its own keyframe job.
VIDEOS = planned_videos(config)

FOLDS = config["splits"]["folds"]
SEEDS = config["splits"]["seeds"]
STRATEGIES = config["al"]["strategies"]
KEYFRAMES = "results/keyframes/keyframes.h5"
SPLIT = "results/splits/fold{fold}/seed{seed}.json"
RUN_DIR = "results/runs/fold{fold}/seed{seed}"


wildcard_constraints:
    video=r"[A-Za-z0-9_.\-]+",
    fold=r"\d+",
    seed=r"\d+",
    strategy="|".join(STRATEGIES),


def res(family, key):
    """A resource of a rule family from config `resources`, falling back to `resources.default`."""
    table = config["resources"]
    return table.get(family, {}).get(key, table["default"][key])


def clean_stale_temporaries():
    """Remove what killed jobs' atomic writes left (`onstart`: no job of this run is running)."""
    roots = ["results"]
    # the generated dataset's folder too, but never a user's own dataset folder
    if config["data"]["source"] == "synthetic":
        roots.append(config["data"]["root"])
    removed = remove_stale_temporaries(roots)
    if removed:
        print(f"Removed {len(removed)} stale temporary file(s) left by killed jobs:")
        for path in removed:
            print(f"  {path}")


def key_params(section, keys):
    """One rule param per config key, each a ("section.key", value) pair.

    Snakemake's rerun reason prints the params whose value changed; with a whole section as one
    param it prints the whole section, with one pair per key it prints just
    `('report.dpi', 300)`. Scripts rebuild the section with alnsfw.entry.section_from_params.
    """
    return {
        f"{section}__{key}": (f"{section}.{key}", config[section][key]) for key in keys
    }


def leaf_params(node, path=()):
    """key_params for every leaf of a nested config (for a rule that reads all of it)."""
    if isinstance(node, dict) and node:
        out = {}
        for key, value in node.items():
            out.update(leaf_params(value, (*path, str(key))))
        return out
    return {"__".join(path): (".".join(path), node)}


def all_targets():
    """Everything `rule all` asks for; each rule file adds its own final outputs here."""
    return TARGETS


TARGETS = []


# --- report stage (workflow/rules/report.smk) ---
CYCLES = f"{RUN_DIR}/{{strategy}}/cycles.csv"
FULL_METRICS = f"{RUN_DIR}/full/metrics.csv"
TABLE1 = "results/tables/table1.csv"
# Written by rule report_front, included by workflow/report/workflow.rst (path from the workdir).
FRONT_PAGE = "results/report/front.rst"
# Report categories: the report's menu sorts them by name, so the number gives the reading order.
CATEGORY = {
    "figures": "1. Learning curves",
    "tables": "2. Tables",
    "protocol": "3. Protocol",
    "data": "4. Data",
}
REPORT_TABLES = ["table2", "f1", "roc_auc", "summary", "paired"]
TABLE_TITLES = {
    "table2": "Table 2 (accuracy)",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "summary": "Learning-curve summary",
    "paired": "Strategy vs random",
}


def run_results(folds):
    """Result files the report reads for these folds: all of them, or with report.allow_partial
    only those that exist now (so the report can be made while runs are still going)."""
    runs = expected_runs(folds, SEEDS, STRATEGIES, CYCLES, FULL_METRICS)
    paths = [r.path for r in runs]
    if config["report"]["allow_partial"]:
        paths = [p for p in paths if os.path.exists(p)]
    return paths


def table_outputs():
    """Named outputs of `aggregate`: <table>_csv|md|html; csv and html shown in the report."""
    out = {}
    for name in REPORT_TABLES:
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
