"""Entry point of rule `operating_points`: the per-fold table of the models' operating points."""

from alnsfw.entry import run_logged
from alnsfw.predict.operating import write_points_table

run_logged(
    write_points_table,
    snakemake.log[0],
    metas=list(snakemake.input),
    csv=snakemake.output.csv,
    md=snakemake.output.md,
    html=snakemake.output.html,
)
