"""Rule cache_features: the frozen trunk's output of every keyframe (feature cache)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # alnsfw without an install

from alnsfw.entry import run_logged
from alnsfw.model.features import compute_features

run_logged(
    compute_features,
    snakemake.log[0],
    keyframes_h5=snakemake.input.keyframes,
    out_h5=snakemake.output.features,
    cfg={
        "model": snakemake.params.model,
        "compute": {**snakemake.params.compute, "threads": snakemake.threads},
    },
)
