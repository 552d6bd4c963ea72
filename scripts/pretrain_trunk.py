"""Rule pretrain_trunk: train ResNet50V2 once on the synthetic proxy task (weights: proxy)."""

from alnsfw.entry import run_logged
from alnsfw.model.backend import model_job_config

CFG = model_job_config(  # selects compute.backend before Keras is first imported
    snakemake,
    pretrain=snakemake.params.pretrain,
    model={"input_size": snakemake.params.input_size},
)
from alnsfw.model.pretrain import pretrain_trunk  # noqa: E402

run_logged(
    pretrain_trunk,
    snakemake.log[0],
    out_weights=snakemake.output.weights,
    cfg=CFG,
    threads=snakemake.threads,
)
