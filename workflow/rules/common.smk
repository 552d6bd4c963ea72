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


def all_targets():
    """Everything `rule all` asks for; each rule file adds its own final outputs here."""
    return TARGETS


TARGETS = []


# --- report stage (workflow/rules/report.smk) ---
CYCLES = f"{RUN_DIR}/{{strategy}}/cycles.csv"
FULL_METRICS = f"{RUN_DIR}/full/metrics.csv"
TABLE1 = "results/tables/table1.csv"
REPORT_TABLES = ["table2", "table2_video", "f1", "roc_auc", "summary", "paired"]
TABLE_TITLES = {
    "table2": "Table 2 (accuracy)",
    "table2_video": "Table 2, video level",
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
                category="Tables",
                subcategory=TABLE_TITLES[name],
                labels={"table": TABLE_TITLES[name], "format": fmt.upper()},
            )
        out[f"{name}_md"] = f"results/tables/{name}.md"
    return out


# --- export stage (workflow/rules/export.smk) ---
MODEL_DIR = "results/models/fold{fold}/seed{seed}"


wildcard_constraints:
    method="|".join([*STRATEGIES, "full"]),


def export_results_file(wildcards):
    """A run's results table: cycles.csv of an AL run, metrics.csv of the baseline."""
    name = "metrics" if wildcards.method == "full" else "cycles"
    return f"results/runs/fold{wildcards.fold}/seed{wildcards.seed}/{wildcards.method}/{name}.csv"


def export_settings(wildcards):
    """What export_model needs: the run's own settings (hashed into the JSON) and how to use it."""
    settings = BASELINE_SETTINGS if wildcards.method == "full" else AL_SETTINGS
    return settings | {"keyframes": config["keyframes"], "export": config["export"]}


def exported_models():
    """The .keras and .json files of the runs named in export.runs (first_full: see schema)."""
    out = []
    for name in config["export"]["runs"]:
        if name == "first_full":
            fold, seed, method = FOLDS[0], SEEDS[0], "full"
        else:
            f, s, method = name.split("/")
            fold, seed = int(f[len("fold") :]), int(s[len("seed") :])
            if (
                fold not in FOLDS
                or seed not in SEEDS
                or method not in [*STRATEGIES, "full"]
            ):
                raise ValueError(
                    f"export.runs names {name}, which is not a configured run (folds {FOLDS}, "
                    f"seeds {SEEDS}, methods {STRATEGIES + ['full']})"
                )
        base = MODEL_DIR.format(fold=fold, seed=seed)
        out += [f"{base}/{method}.keras", f"{base}/{method}.json"]
    return out
