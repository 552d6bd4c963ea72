# Helpers shared by all rule files: config validation, the list of videos, output paths, targets.
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from alnsfw.config import check_config  # noqa: E402
from alnsfw.data.layout import planned_videos  # noqa: E402


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
