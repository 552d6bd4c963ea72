"""Snakemake entry point of rule active_learning: one run (fold, seed, strategy)."""

import logging

from alnsfw.al.jobs import active_learning_job

logging.basicConfig(
    filename=snakemake.log[0],
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
)
active_learning_job(
    keyframes=snakemake.input.keyframes,
    split=snakemake.input.split,
    outputs={
        "cycles": snakemake.output.cycles,
        "queries": snakemake.output.queries,
        "predictions": snakemake.output.predictions,
    },
    config=snakemake.params.config,
    fold=int(snakemake.wildcards.fold),
    seed=int(snakemake.wildcards.seed),
    strategy=snakemake.wildcards.strategy,
    features=snakemake.input.get("features"),
    bank=snakemake.input.get("bank"),
)
