"""Snakemake entry point of rule active_learning: one run (fold, seed, strategy)."""

from alnsfw.packing import apply_gpu_share

# Packed onto a shared GPU: this process's memory share, set before Keras is imported.
apply_gpu_share(snakemake.config["compute"])

from alnsfw.al.jobs import active_learning_job  # noqa: E402
from alnsfw.entry import run_logged  # noqa: E402
from alnsfw.model.settings import with_runtime  # noqa: E402

run_logged(
    active_learning_job,
    snakemake.log[0],
    keyframes=snakemake.input.keyframes,
    split=snakemake.input.split,
    outputs=dict(snakemake.output.items()),
    config=with_runtime(snakemake.params.config, snakemake.config),  # + gpu, memory keys
    fold=int(snakemake.wildcards.fold),
    seed=int(snakemake.wildcards.seed),
    strategy=snakemake.wildcards.strategy,
    features=snakemake.input.get("features"),
    bank=snakemake.input.get("bank"),
)
