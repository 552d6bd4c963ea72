"""Snakemake entry point of rule full_supervision: the baseline of one fold and seed."""

import logging

from alnsfw.al.jobs import full_supervision_job

logging.basicConfig(
    filename=snakemake.log[0],
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
)
full_supervision_job(
    keyframes=snakemake.input.keyframes,
    split=snakemake.input.split,
    outputs={
        "metrics": snakemake.output.metrics,
        "history": snakemake.output.history,
        "predictions": snakemake.output.predictions,
    },
    config=snakemake.params.config,
    fold=int(snakemake.wildcards.fold),
    seed=int(snakemake.wildcards.seed),
    features=snakemake.input.get("features"),
    bank=snakemake.input.get("bank"),
)
