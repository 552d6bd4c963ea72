"""Rule ingest_report: Table 1, per-fold counts and the contact sheet of the ingested data."""

from alnsfw.data.stages import ingest_report
from alnsfw.entry import run_logged

run_logged(
    ingest_report,
    snakemake.log[0],
    keyframes_h5=snakemake.input.keyframes,
    manifest=snakemake.input.manifest,
    split_files=list(snakemake.input.splits),
    out=dict(snakemake.output.items()),
    data=snakemake.params.data,
    n_folds=snakemake.params.n_folds,
)
