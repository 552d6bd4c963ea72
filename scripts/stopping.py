"""Entry point of rule `stopping`: every run's stopping verdicts and the stopping table."""

from alnsfw.al.verdicts import stop_runs, stopping_job
from alnsfw.entry import config_from_params, run_logged
from alnsfw.report.runs import expected_runs

p = snakemake.params
config = config_from_params(p)
run_logged(
    stopping_job,
    snakemake.log[0],
    runs=stop_runs(p.folds, p.seeds, p.strategies, p.stopping, p.cycles),
    full_runs=expected_runs(p.folds, p.seeds, [], p.cycles, p.full),
    strategies=p.strategies,
    config=config,
    outputs=dict(snakemake.output.items()),
    allow_partial=bool(config["report"]["allow_partial"]),
)
