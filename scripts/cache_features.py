"""Rule cache_features: the frozen trunk's output of every keyframe (feature cache)."""

from alnsfw.entry import run_logged
from alnsfw.model.backend import model_job_config

# Selects compute.backend, so before Keras is first imported (next line).
CFG = model_job_config(snakemake, model=snakemake.params.model)
from alnsfw.model.features import compute_features  # noqa: E402

run_logged(
    compute_features,
    snakemake.log[0],
    keyframes_h5=snakemake.input.keyframes,
    out_h5=snakemake.output.features,
    cfg=CFG,
)
