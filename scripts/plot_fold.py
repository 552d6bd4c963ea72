"""Entry point of rule `plot_fold`: one fold's learning curves (the paper's Figures 3-7)."""

from alnsfw.entry import run_logged, section_from_params
from alnsfw.report.figures import write_fold_figure
from alnsfw.report.runs import expected_runs

p = snakemake.params
fold = int(snakemake.wildcards.fold)
run_logged(
    write_fold_figure,
    snakemake.log[0],
    runs=expected_runs([fold], p.seeds, p.strategies, p.cycles, p.full),
    fold=fold,
    strategies=p.strategies,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
    report=section_from_params(p, "report"),
    verdicts=snakemake.input.verdicts,
)
