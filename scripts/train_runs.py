"""Snakemake entry point of rule train_runs (compute.batch_runs): every run of one fold and
seed in one process, the full-supervision baseline first, then each strategy."""

from alnsfw.packing import apply_gpu_share

# Packed onto a shared GPU: this process's memory share, set before Keras is imported.
apply_gpu_share(snakemake.config["compute"])

from alnsfw.al.jobs import fold_seed_runs  # noqa: E402
from alnsfw.entry import run_logged  # noqa: E402
from alnsfw.model.settings import with_runtime  # noqa: E402

out, strategies = snakemake.output, list(snakemake.params.config)


def files(name: str) -> list[str]:
    """Output `name` as a list (Snakemake gives a single file as a string)."""
    value = out[name]
    return [value] if isinstance(value, str) else list(value)


# the baseline's outputs are named full_<name> (workflow/rules/experiment.smk), the others are runs'
AL_NAMES = [name for name in out.keys() if not name.startswith("full_")]
runs = [
    {
        "strategy": strategy,
        "outputs": {name: files(name)[i] for name in AL_NAMES},
        "config": with_runtime(snakemake.params.config[strategy], snakemake.config),
        "log": snakemake.log[i],
    }
    for i, strategy in enumerate(strategies)
]
baseline = {
    "outputs": {n.removeprefix("full_"): out[n] for n in out.keys() if n.startswith("full_")},
    "config": with_runtime(snakemake.params.baseline, snakemake.config),
    "log": snakemake.log.full,
}
fold_seed_runs(
    runs,
    keyframes=snakemake.input.keyframes,
    split=snakemake.input.split,
    fold=int(snakemake.wildcards.fold),
    seed=int(snakemake.wildcards.seed),
    features=snakemake.input.get("features"),
    bank=snakemake.input.get("bank"),
    baseline=baseline,
    call=run_logged,
)
