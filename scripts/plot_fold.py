"""Entry point of rule `plot_fold`: one fold's learning curves (the paper's Figures 3-7)."""

import logging

from alnsfw.report.figures import write_fold_figure
from alnsfw.report.runs import expected_runs

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
p = snakemake.params
fold = int(snakemake.wildcards.fold)
runs = expected_runs([fold], p.seeds, p.strategies, p.cycles, p.full)
write_fold_figure(runs, fold, p.strategies, snakemake.output.png, snakemake.output.pdf, p.report)
