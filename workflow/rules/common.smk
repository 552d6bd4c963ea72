# Helpers shared by the stage files: config validation, the list of videos, paths (alnsfw.outputs),
# targets, resources, params per key and the report categories (functions live here, apart from
# the rules, as Snakemake's lint wants).
import os
import sys
from pathlib import Path

# The one place that says which alnsfw the workflow runs: this checkout's src/, ahead of any
# installed copy, for the Snakemake process (sys.path) and for every job it starts (PYTHONPATH:
# script jobs, --sdm conda envs and SLURM jobs inherit the environment). So a run from a git
# worktree uses that worktree's code, and the conda envs need no alnsfw install.
SRC = str(Path(workflow.current_basedir).parents[1] / "src")
sys.path.insert(0, SRC)
# (a job that parses the Snakefile again, e.g. under SLURM, finds SRC there already: no repeats)
OTHER_PATHS = [
    p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p != SRC
]
os.environ.update(PYTHONPATH=os.pathsep.join([SRC, *filter(None, OTHER_PATHS)]))

from alnsfw.config import validate_config  # noqa: E402
from alnsfw.io import remove_stale_temporaries  # noqa: E402
from alnsfw.data.layout import planned_videos  # noqa: E402
from alnsfw.model.settings import xla_cache_environment  # noqa: E402
from alnsfw.packing import (  # noqa: E402
    check_group_components,
    model_env_file,
    training_group,
    training_resources,
)

# compute.backend: jax compiles every train/predict step with XLA; this on-disk cache lets the
# jobs of a workflow (same shapes in every run) compile each step once. Jobs inherit it; a
# variable the user set wins.
XLA_CACHE = xla_cache_environment(Path(".snakemake/xla-cache").resolve())
for _name, _value in XLA_CACHE.items():
    os.environ.setdefault(_name, _value)
# Coerced to the schema's types, validated (defaults filled in), checked: alnsfw.config.
validate_config(config)


# Every output path shared by more than one rule file, or by a rule file and the library.
from alnsfw.outputs import (  # noqa: E402
    CYCLES,
    FULL_METRICS,
    FRONT_PAGE,
    KEYFRAME_SHARD,
    KEYFRAMES,
    MANIFEST,
    MODEL_DIR,
    PEER_SCORES,
    SPLIT,
    STOPPING,
    TABLE1,
    TABLES,
    run_file,
)

# One entry per video of the dataset, known before any job runs (synthetic: from the config;
# npdi: from a scan of data.root), so each video gets its own keyframe job.
VIDEOS = planned_videos(config)

# keyframes.full_images only when on, so turning this key into the config reran no existing job
KEYFRAME_PARAMS = {
    k: v for k, v in config["keyframes"].items() if k != "full_images" or v
}

FOLDS = config["splits"]["folds"]
SEEDS = config["splits"]["seeds"]
STRATEGIES = config["al"]["strategies"]


wildcard_constraints:
    video=r"[A-Za-z0-9_.\-]+",
    fold=r"\d+",
    seed=r"\d+",
    strategy="|".join(STRATEGIES),


def res(family, key):
    """A resource of a rule family from config `resources`, falling back to `resources.default`."""
    table = config["resources"]
    return table.get(family, {}).get(key, table["default"][key])


def al_settings(settings, strategy):
    """The settings of one strategy's runs: `al.mc_samples` only for strategies that sample
    (bald), so changing it reruns only their runs (alnsfw.al.strategies declares the needs).
    """
    from alnsfw.al.strategies import MC_PROBABILITIES, get_strategy

    if MC_PROBABILITIES in get_strategy(strategy).needs:
        return settings
    al = {k: v for k, v in settings["al"].items() if k != "mc_samples"}
    return settings | {"al": al}


# compute.batch_runs: one job per fold and seed trains all of its runs in one process (the demo:
# each model job pays about 8 CPU-seconds to start; docs/speed.md); its outputs are all runs'
# files, so a change to any run reruns that fold and seed's others (to the same results).
BATCH_RUNS = config["compute"]["batch_runs"]


AL_LOG = "results/logs/active_learning/fold{fold}/seed{seed}/{strategy}.log"
FULL_LOG = "results/logs/full_supervision/fold{fold}/seed{seed}.log"


def every_strategy(pattern):
    """A run file of each strategy of the wildcards' fold and seed, in STRATEGIES order
    (scripts/train_runs.py pairs them with the strategies by position)."""
    return expand(pattern, strategy=STRATEGIES, allow_missing=True)


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
    """Everything `rule all` asks for; each rule file adds its own final outputs here.

    data.source: folder (unlabelled videos for a campaign, docs/campaign.md): only the keyframe
    stage; there are no labels to split, train or report on until a campaign gathers them.
    """
    if config["data"]["source"] == "folder":
        return [KEYFRAMES, MANIFEST]
    return TARGETS


TARGETS = []


# Report categories: the report's menu sorts them by name, so the number gives the reading order.
CATEGORY = {
    "figures": "1. Learning curves",
    "tables": "2. Tables",
    "protocol": "3. Protocol",
    "data": "4. Data",
}


def check_packing():
    """Training jobs packed onto one GPU (docs/gpu.md "Packing"): --group-components gpu_pack=N
    must agree with compute.runs_per_gpu, which sets each job's share of the GPU memory. Run at
    `onstart`: command-line group settings are not known while this file is read."""
    check_group_components(config["compute"], workflow.group_settings.group_components)


# --- export stage (workflow/rules/export.smk) ---


wildcard_constraints:
    method="|".join([*STRATEGIES, "full"]),


def export_results_file(wildcards):
    """A run's results table: cycles.csv of an AL run, metrics.csv of the baseline."""
    name = "metrics" if wildcards.method == "full" else "cycles"
    return run_file(f"{name}.csv", wildcards.method).format(
        fold=wildcards.fold, seed=wildcards.seed
    )


def export_settings(wildcards):
    """What export_model needs: the run's own settings (hashed into the JSON) and how to use it."""
    settings = BASELINE_SETTINGS if wildcards.method == "full" else AL_SETTINGS
    return settings | {"keyframes": config["keyframes"], "export": config["export"]}


def exported_models():
    """The .keras, .onnx and .json files of the runs in export.runs (first_full: see schema)."""
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
        out += [f"{base}/{method}.{ext}" for ext in ("keras", "onnx", "json")]
    return out
