"""Rule cache_features: the frozen trunk's output of every keyframe (feature cache), and with
training.augment: bank also K augmented views of each (the bank), on the same network."""

from alnsfw.entry import run_logged
from alnsfw.model.backend import model_job_config

# Selects compute.backend, so before Keras is first imported (next line).
BANK = {"training": snakemake.params.training} if snakemake.output.get("bank") else {}
CFG = model_job_config(snakemake, model=snakemake.params.model, **BANK)

from alnsfw.model.features import compute_features, compute_features_and_bank  # noqa: E402

if BANK:
    run_logged(
        compute_features_and_bank,
        snakemake.log[0],
        keyframes_h5=snakemake.input.keyframes,
        features_h5=snakemake.output.features,
        bank_h5=snakemake.output.bank,
        cfg=CFG,
    )
else:
    run_logged(
        compute_features,
        snakemake.log[0],
        keyframes_h5=snakemake.input.keyframes,
        out_h5=snakemake.output.features,
        cfg=CFG,
    )
