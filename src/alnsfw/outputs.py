"""The workflow's output layout: every path pattern under results/ that more than one place names.

Why one module: the rule files (which write the files), the caches' file names (model.settings,
model.tags) and the integrity check (which names the rule that rebuilds a corrupt file) used to
type the same paths each on their own, so moving one meant finding all. The rule files import
these patterns (`from alnsfw.outputs import ...`); a rule file's private paths (its logs, its
figures) stay beside its rules. Patterns use Snakemake's `{wildcard}` syntax, relative to the
workflow's working directory. A leaf: imports no other alnsfw module.
"""

from __future__ import annotations

import re

# --- data stage ---
KEYFRAME_SHARD = "results/keyframes/shards/{video}.h5"
KEYFRAMES = "results/keyframes/keyframes.h5"
MANIFEST = "results/keyframes/manifest.csv"
SPLIT = "results/splits/fold{fold}/seed{seed}.json"
TABLES = "results/tables"
TABLE1 = f"{TABLES}/table1.csv"

# --- the frozen trunk and its caches (tag: alnsfw.model.tags.feature_tag) ---
PROXY_WEIGHTS = "results/trunk/{name}.weights.h5"
FEATURES = "results/features/{tag}.h5"
BANK = "results/features/{tag}-bank.h5"
PEER_SCORES = "results/peers/{peer}.csv"  # a zero-shot peer's P(porn) of every keyframe

# --- runs: {method} is a strategy (an active-learning run) or `full` (the baseline) ---
RUN_DIR = "results/runs/fold{fold}/seed{seed}"


def run_file(name: str, method: str = "{strategy}") -> str:
    """The pattern of file `name` of one run; `method` a strategy, `full`, or a wildcard."""
    return f"{RUN_DIR}/{method}/{name}"


CYCLES = run_file("cycles.csv")
STOPPING = run_file("stopping.csv")  # what the stopping rules read, per cycle
FULL_METRICS = run_file("metrics.csv", "full")

# --- exported models and the report ---
MODEL_DIR = "results/models/fold{fold}/seed{seed}"
# Written by rule report_front, included by workflow/report/workflow.rst (path from the workdir).
FRONT_PAGE = "results/report/front.rst"


def output_regex(pattern: str) -> re.Pattern[str]:
    """A regex that matches the paths `pattern` stands for (each wildcard one path component),
    anywhere under a folder: `.../results/features/x.h5` matches FEATURES."""
    parts = re.split(r"\{[A-Za-z_]+\}", pattern)
    return re.compile("(^|/)" + "[^/]+".join(re.escape(part) for part in parts) + "$")
