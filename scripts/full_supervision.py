"""Snakemake entry point of rule full_supervision: the baseline of one fold and seed."""

from alnsfw.packing import apply_gpu_share

# Packed onto a shared GPU: this process's memory share, set before Keras is imported.
apply_gpu_share(snakemake.config["compute"])

from alnsfw.al.jobs import full_supervision_job  # noqa: E402
from alnsfw.entry import run_logged  # noqa: E402
from alnsfw.model.settings import with_runtime  # noqa: E402

run_logged(
    full_supervision_job,
    snakemake.log[0],
    keyframes=snakemake.input.keyframes,
    split=snakemake.input.split,
    outputs=dict(snakemake.output.items()),
    config=with_runtime(snakemake.params.config, snakemake.config),  # + gpu, memory keys
    fold=int(snakemake.wildcards.fold),
    seed=int(snakemake.wildcards.seed),
    features=snakemake.input.get("features"),
    bank=snakemake.input.get("bank"),
)
