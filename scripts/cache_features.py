"""Rule cache_features: the frozen trunk's output of every keyframe (feature cache)."""

from alnsfw.entry import run_logged
from alnsfw.model.backend import select_from_config
from alnsfw.model.settings import with_runtime

CFG = with_runtime(
    {
        "model": snakemake.params.model,
        "compute": {**snakemake.params.compute, "threads": snakemake.threads},
    },
    snakemake.config,
)
select_from_config(CFG)  # compute.backend, before Keras is first imported (next line)
from alnsfw.model.features import compute_features  # noqa: E402

run_logged(
    compute_features,
    snakemake.log[0],
    keyframes_h5=snakemake.input.keyframes,
    out_h5=snakemake.output.features,
    cfg=CFG,
)
