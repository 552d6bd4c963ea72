"""Entry point of rule `plot_summary`: learning curves averaged over the configured folds."""

import logging

from alnsfw.report.figures import write_summary_figure
from alnsfw.report.runs import expected_runs

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
p = snakemake.params
runs = expected_runs(p.folds, p.seeds, p.strategies, p.cycles, p.full)
write_summary_figure(runs, p.strategies, snakemake.output.png, snakemake.output.pdf, p.report)
