# Deep active learning for pornography recognition (Hor et al., IJTech 2022), as a workflow.
# Table of contents: each stage's rules live in workflow/rules/<stage>.smk, their entry points in
# scripts/<rule>.py, and the computation in src/alnsfw/<stage>/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"  # config validation, video list, targets
include: "workflow/rules/data.smk"  # synthetic videos -> keyframes.h5 -> folds and splits
include: "workflow/rules/features.smk"  # frozen-trunk feature cache and augmentation bank
include: "workflow/rules/experiment.smk"  # active-learning runs and full-supervision baselines
include: "workflow/rules/export.smk"  # trained models as standard .keras files
include: "workflow/rules/report.smk"  # Table 2, figures, summary statistics


# Short jobs (splits, merges, tables, plots, report pages) run inside the Snakemake process, not
# as sbatch jobs of their own: on a cluster their queue wait would dwarf their seconds of work.
# The criterion (docs/cluster.md; tests/test_envs.py derives it from the rules): no model env, one
# thread and the `resources.default` family, except extract_keyframes and synthesize_dataset.
localrules:
    merge_keyframes,
    make_splits,
    ingest_report,
    aggregate,
    stopping,
    human_cost,
    plot_fold,
    plot_summary,
    report_protocol,
    report_front,
    operating_points,
    peer_metrics,


onstart:
    check_packing()
    clean_stale_temporaries()


onsuccess:
    where_results_are()


rule all:
    """Everything the config asks for: Table 2 and its twins, the figures, the protocol page."""
    default_target: True
    input:
        all_targets(),
