"""Entry point of rule `human_cost`: the human-cost table and figure (alnsfw.report.human_cost)."""

from alnsfw.entry import config_from_params, run_logged
from alnsfw.report.human_cost import human_cost_job
from alnsfw.report.runs import expected_runs

p = snakemake.params
config = config_from_params(p)
run_logged(
    human_cost_job,
    snakemake.log[0],
    runs=expected_runs(p.folds, p.seeds, p.strategies, p.cycles, p.full),
    verdicts=snakemake.input.verdicts,
    strategies=p.strategies,
    al=config["al"],
    rules=p.rules,
    report=config["report"],
    outputs=dict(snakemake.output.items()),
)
