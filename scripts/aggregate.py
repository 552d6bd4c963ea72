"""Entry point of rule `aggregate`: all tables of the report (see alnsfw.report.aggregate)."""

import logging

from alnsfw.report.aggregate import ReportOptions, aggregate
from alnsfw.report.runs import expected_runs

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
p = snakemake.params
runs = expected_runs(p.folds, p.seeds, p.strategies, p.cycles, p.full)
aggregate(runs, p.strategies, ReportOptions.from_config(p.report), dict(snakemake.output.items()))
