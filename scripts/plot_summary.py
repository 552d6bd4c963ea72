"""Entry point of rule `plot_summary`: learning curves averaged over the configured folds."""

from alnsfw.entry import run_logged, section_from_params
from alnsfw.report.figures import write_summary_figure
from alnsfw.report.runs import expected_runs

p = snakemake.params
run_logged(
    write_summary_figure,
    snakemake.log[0],
    runs=expected_runs(p.folds, p.seeds, p.strategies, p.cycles, p.full),
    strategies=p.strategies,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
    report=section_from_params(p, "report"),
    verdicts=snakemake.input.verdicts,
)
