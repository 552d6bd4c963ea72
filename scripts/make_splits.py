"""Rule make_splits: check the fold lists, write one fold's pool/val/test split for one seed."""

from alnsfw.data.stages import make_splits
from alnsfw.entry import run_logged

run_logged(
    make_splits,
    snakemake.log[0],
    manifest=snakemake.input.manifest,
    out=snakemake.output[0],
    fold=int(snakemake.wildcards.fold),
    seed=int(snakemake.wildcards.seed),
    data=snakemake.params.data,
    splits=snakemake.params.splits,
)
