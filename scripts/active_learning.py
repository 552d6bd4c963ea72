"""Snakemake entry point of rule active_learning: one run (fold, seed, strategy), or with
compute.batch_strategies every strategy's run of one fold and seed, one after another."""

from alnsfw.packing import apply_gpu_share

# Packed onto a shared GPU: this process's memory share, set before Keras is imported.
apply_gpu_share(snakemake.config["compute"])

from alnsfw.al.jobs import active_learning_job, active_learning_runs  # noqa: E402
from alnsfw.entry import run_logged  # noqa: E402
from alnsfw.model.settings import with_runtime  # noqa: E402

common = dict(
    keyframes=snakemake.input.keyframes,
    split=snakemake.input.split,
    fold=int(snakemake.wildcards.fold),
    seed=int(snakemake.wildcards.seed),
    features=snakemake.input.get("features"),
    bank=snakemake.input.get("bank"),
)
if "strategy" in snakemake.wildcards.keys():
    run_logged(
        active_learning_job,
        snakemake.log[0],
        outputs=dict(snakemake.output.items()),
        config=with_runtime(snakemake.params.config, snakemake.config),  # + gpu, memory keys
        strategy=snakemake.wildcards.strategy,
        **common,
    )
else:  # one job per fold and seed: output i of every name belongs to strategy i
    strategies = list(snakemake.params.config)
    # a name with one file (one strategy) is that file, not a list of one
    outputs = {
        name: [files] if isinstance(files, str) else list(files)
        for name, files in snakemake.output.items()
    }
    runs = [
        {
            "strategy": strategy,
            "outputs": {name: files[i] for name, files in outputs.items()},
            "config": with_runtime(snakemake.params.config[strategy], snakemake.config),
            "log": snakemake.log[i],
        }
        for i, strategy in enumerate(strategies)
    ]
    active_learning_runs(runs, call=run_logged, **common)
