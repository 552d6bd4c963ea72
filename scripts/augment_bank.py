"""Rule augment_bank: K augmented views of every keyframe through the frozen trunk."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # alnsfw without an install

from alnsfw.entry import run_logged
from alnsfw.model.features import compute_bank

run_logged(
    compute_bank,
    snakemake.log[0],
    keyframes_h5=snakemake.input.keyframes,
    out_h5=snakemake.output.bank,
    cfg={
        "model": snakemake.params.model,
        "training": snakemake.params.training,
        "compute": {**snakemake.params.compute, "threads": snakemake.threads},
    },
)
