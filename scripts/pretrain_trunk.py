"""Rule pretrain_trunk: train ResNet50V2 once on the synthetic proxy task (weights: proxy)."""

from alnsfw.entry import run_logged
from alnsfw.model.backend import select_from_config
from alnsfw.model.settings import with_runtime

CFG = with_runtime(
    {
        "pretrain": snakemake.params.pretrain,
        "model": {"input_size": snakemake.params.input_size},
        "compute": {**snakemake.params.compute, "threads": snakemake.threads},
    },
    snakemake.config,
)
select_from_config(CFG)  # compute.backend, before Keras is first imported (next line)
from alnsfw.model.pretrain import pretrain_trunk  # noqa: E402

run_logged(
    pretrain_trunk,
    snakemake.log[0],
    out_weights=snakemake.output.weights,
    cfg=CFG,
    threads=snakemake.threads,
)
