# The experiment: one active-learning run per fold x seed x strategy, one full-supervision
# baseline per fold x seed; a job each, or with compute.batch_runs one job (rule train_runs) per
# fold x seed for all of them, in one process (alnsfw.al.jobs.fold_seed_runs). Each run checkpoints after every cycle into
# results/runs/fold{fold}/seed{seed}/{strategy}/checkpoint/ (deliberately not an output, so a
# killed job keeps it and resumes), and removes it once its outputs are written.


from alnsfw.model.settings import result_compute  # noqa: E402

# The config sections that change a run's numbers, passed as params so that changing any of them
# reruns exactly the affected jobs. Left out: al.strategies (which runs exist, not what one
# computes: adding a strategy must not rerun the others) and the compute keys that only say where
# and how fast a job runs (alnsfw.model.settings.RUNTIME_KEYS: gpu, memory), which the scripts
# add back from the workflow config. compute.threads and compute.backend stay: the numbers'
# rounding depends on them.
SHARED_SETTINGS = {
    "training": config["training"],
    "model": resolved_model(config),  # weights: proxy -> the pretrained file
    "compute": result_compute(config["compute"]),
    "video": config["video"],  # video-level columns (rule chosen on validation)
}
AL_SETTINGS = SHARED_SETTINGS | {
    "al": {k: v for k, v in config["al"].items() if k != "strategies"}
}
BASELINE_SETTINGS = SHARED_SETTINGS | {"baseline": config["baseline"]}
# One run's files by name: an active-learning run's, and the full-supervision baseline's. Rule
# train_runs holds every strategy's (AL) and the baseline's (as full_<name>); the one-run rules
# one run's; scripts/train_runs.py tells the two apart by that prefix.
AL_OUTPUTS = {
    "cycles": CYCLES,
    "queries": run_file("queries.csv"),
    "predictions": run_file("predictions.csv"),
    "stopping": STOPPING,
    "weights": run_file("final_weights.h5"),
}
FULL_OUTPUTS = {
    "metrics": FULL_METRICS,
    "history": run_file("history.csv", "full"),
    "predictions": run_file("predictions.csv", "full"),
    "weights": run_file("final_weights.h5", "full"),
}


if BATCH_RUNS:

    rule train_runs:
        """Every run of one fold and seed in one process (compute.batch_runs): full supervision, then each strategy's active learning; resumes from the checkpoints."""
        input:
            trunk_weights_files(config),
            **feature_inputs(),
            keyframes=KEYFRAMES,
            split=SPLIT,
        output:
            **{name: every_strategy(path) for name, path in AL_OUTPUTS.items()},
            **{f"full_{name}": path for name, path in FULL_OUTPUTS.items()},
        log:
            every_strategy(AL_LOG),
            full=FULL_LOG,
        # the first seed's jobs first: the exports wait on them (export.smk)
        priority: lambda wildcards: 6 if int(wildcards.seed) == SEEDS[0] else 5
        group:
            training_group(config["compute"])
        conda:
            model_env_file(config["compute"])
        threads: config["compute"]["threads"]
        resources:
            **training_resources(config["compute"]),
            mem_mb=res("train", "mem_mb"),
            runtime=res("train", "runtime") * (len(STRATEGIES) + 1),
        params:
            config={s: al_settings(AL_SETTINGS, s) for s in STRATEGIES},
            baseline=BASELINE_SETTINGS,
        message:
            f"Training fold {{wildcards.fold}}, seed {{wildcards.seed}}: full supervision, "
            f"{', '.join(STRATEGIES)}"
        script:
            "../../scripts/train_runs.py"

else:

    rule active_learning:
        """One active-learning run (fold, seed, strategy); resumes from its checkpoint."""
        input:
            trunk_weights_files(config),
            **feature_inputs(),
            keyframes=KEYFRAMES,
            split=SPLIT,
        output:
            **AL_OUTPUTS,
        log:
            AL_LOG,
        group:
            training_group(config["compute"])
        conda:
            model_env_file(config["compute"])
        threads: config["compute"]["threads"]
        resources:
            **training_resources(config["compute"]),
            mem_mb=res("train", "mem_mb"),
            runtime=res("train", "runtime"),
        params:
            config=lambda wildcards: al_settings(AL_SETTINGS, wildcards.strategy),
        message:
            "Active learning: fold {wildcards.fold}, seed {wildcards.seed}, {wildcards.strategy}"
        script:
            "../../scripts/active_learning.py"

    rule full_supervision:
        """The full-supervision reference of one fold and seed: trained on 100% of the pool."""
        input:
            trunk_weights_files(config),
            **feature_inputs(),
            keyframes=KEYFRAMES,
            split=SPLIT,
        output:
            **FULL_OUTPUTS,
        log:
            FULL_LOG,
        priority: 5  # before the AL runs: the exports wait on it (export.smk)
        group:
            training_group(config["compute"])
        conda:
            model_env_file(config["compute"])
        threads: config["compute"]["threads"]
        resources:
            **training_resources(config["compute"]),
            mem_mb=res("train", "mem_mb"),
            runtime=res("train", "runtime"),
        params:
            config=BASELINE_SETTINGS,
        message:
            "Full supervision: fold {wildcards.fold}, seed {wildcards.seed}"
        script:
            "../../scripts/full_supervision.py"


TARGETS.extend(
    expand(
        run_file("{name}.csv"),
        fold=FOLDS,
        seed=SEEDS,
        strategy=STRATEGIES,
        name=["cycles", "queries", "predictions", "stopping"],
    )
)
TARGETS.extend(
    expand(
        run_file("{name}.csv", "full"),
        fold=FOLDS,
        seed=SEEDS,
        name=["metrics", "history", "predictions"],
    )
)
