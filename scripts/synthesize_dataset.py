"""Rule synthesize_dataset: write the synthetic NPDI-like dataset (videos, fold lists, labels)."""

from alnsfw.data.stages import synthesize_dataset
from alnsfw.entry import run_logged

run_logged(
    synthesize_dataset,
    snakemake.log[0],
    root=snakemake.params.root,
    cfg=snakemake.params.synthetic,
    n_folds=snakemake.params.n_folds,
    test_pattern=snakemake.params.test_list,
    train_pattern=snakemake.params.train_list,
    threads=snakemake.threads,
)
