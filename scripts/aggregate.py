"""Entry point of rule `aggregate`: all tables of the report (see alnsfw.report.aggregate)."""

from alnsfw.entry import run_logged, section_from_params
from alnsfw.report.aggregate import aggregate
from alnsfw.report.options import ReportOptions
from alnsfw.report.runs import expected_runs

p = snakemake.params
run_logged(
    aggregate,
    snakemake.log[0],
    runs=expected_runs(p.folds, p.seeds, p.strategies, p.cycles, p.full),
    strategies=p.strategies,
    options=ReportOptions.from_config({"report": section_from_params(p, "report")}),
    outputs=dict(snakemake.output.items()),
    peers=list(snakemake.input.peers),
)
