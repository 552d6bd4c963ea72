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
from alnsfw.packing import (  # noqa: E402
    check_group_components,
    model_env_file,
    training_group,
    training_resources,
)
from alnsfw.report.runs import expected_runs  # noqa: E402

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
# compute.backend: jax compiles every train/predict step with XLA; this on-disk cache lets the
# jobs of a workflow (same shapes in every run) compile each step once. Jobs inherit it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(".snakemake/xla-cache").resolve()))
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
                category="Tables",
                subcategory=TABLE_TITLES[name],
                labels={"table": TABLE_TITLES[name], "format": fmt.upper()},
            )
        out[f"{name}_md"] = f"results/tables/{name}.md"
    return out


# Training jobs packed onto one GPU (docs/gpu.md "Packing"): --group-components gpu_pack=N must
# agree with compute.runs_per_gpu, which sets each job's share of the GPU memory. Checked when a
# real run starts (command-line group settings are not known while this file is read).
onstart:
    check_group_components(config["compute"], workflow.group_settings.group_components)
