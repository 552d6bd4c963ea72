"""Rule augment_bank: K augmented views of every keyframe through the frozen trunk."""

from alnsfw.entry import run_logged
from alnsfw.model.backend import model_job_config

CFG = model_job_config(  # selects compute.backend before Keras is first imported
    snakemake, model=snakemake.params.model, training=snakemake.params.training
)
from alnsfw.model.features import compute_bank  # noqa: E402

run_logged(
    compute_bank,
    snakemake.log[0],
    keyframes_h5=snakemake.input.keyframes,
    out_h5=snakemake.output.bank,
    cfg=CFG,
)
