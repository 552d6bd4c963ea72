"""Rule pretrain_trunk: train ResNet50V2 once on the synthetic proxy task (weights: proxy)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # alnsfw without an install

from alnsfw.entry import run_logged
from alnsfw.model.pretrain import pretrain_trunk

run_logged(
    pretrain_trunk,
    snakemake.log[0],
    out_weights=snakemake.output.weights,
    cfg={
        "pretrain": snakemake.params.pretrain,
        "model": {"input_size": snakemake.params.input_size},
    },
    threads=snakemake.threads,
)
