# Results: the paper's Table 2 (+ F1 and ROC-AUC twins), Figures 3-7 (one per fold), a summary
# figure, learning-curve statistics, strategy-vs-random CIs, and the report's protocol page.
# `snakemake --report results/report.html` collects everything marked report(...) below.
from alnsfw.report.options import ReportOptions  # noqa: E402


report: "../report/workflow.rst"


include: "report_helpers.smk"  # the report's tables, outputs and run lists (lint: no functions here)


# The report keys the tables read (the figures read only dpi, within_points and curve_metric).
AGGREGATE_KEYS = [
    k for k in ReportOptions.__dataclass_fields__ if k in config["report"]
]
PEERS = config["report"]["peers"]  # zero-shot peers beside Table 2 (docs/peers.md)


rule peer_metrics:
    """A zero-shot peer's test metrics on every fold x seed split (report.peers)."""
    input:
        scores=PEER_SCORES,  # by path (rule peer_scores): report.smk stands alone
        keyframes=KEYFRAMES,
        splits=expand(SPLIT, fold=FOLDS, seed=SEEDS),
    output:
        runs="results/peers/{peer}-runs.csv",
    log:
        "results/logs/peer_metrics/{peer}.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        folds=FOLDS,
        seeds=SEEDS,
        video=config["video"],
        export={"operating_point": config["export"]["operating_point"]},
    message:
        "Zero-shot peer {wildcards.peer} on the test keyframes of folds {params.folds}"
    script:
        "../../scripts/peer_metrics.py"


rule aggregate:
    """Table 2, F1 and ROC-AUC tables, the learning-curve summary and strategy-vs-random CIs."""
    input:
        run_results(FOLDS),
        peers=expand(rules.peer_metrics.output.runs, peer=PEERS),
    output:
        **table_outputs(),
        missing=report(
            "results/tables/missing.csv",
            caption="../report/missing.rst",
            category=CATEGORY["tables"],
            subcategory="Coverage",
            labels={"table": "Missing runs", "format": "CSV"},
        ),
    log:
        "results/logs/aggregate/aggregate.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        **key_params("report", AGGREGATE_KEYS),
        folds=FOLDS,
        seeds=SEEDS,
        strategies=STRATEGIES,
        cycles=lambda wc: CYCLES,
        full=lambda wc: FULL_METRICS,
    message:
        "Table 2, F1/ROC-AUC tables, summary and paired CIs over {params.folds} x {params.seeds}"
    script:
        "../../scripts/aggregate.py"


rule stopping:
    """Every run's stopping verdicts and the stopping table (beside Table 2)."""
    input:
        run_results(FOLDS),
        stopping_results(FOLDS),
    output:
        **stopping_outputs(),
    log:
        "results/logs/stopping/stopping.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        **leaf_params(config["stopping"], ("stopping",)),
        **key_params("report", ["allow_partial"]),
        folds=FOLDS,
        seeds=SEEDS,
        strategies=STRATEGIES,
        stopping=lambda wc: STOPPING,
        cycles=lambda wc: CYCLES,
        full=lambda wc: FULL_METRICS,
    message:
        "Stopping rules on every run of folds {params.folds}, seeds {params.seeds}"
    script:
        "../../scripts/stopping.py"


rule human_cost:
    """The human-cost table and figure: decisions and images shown per strategy and setting."""
    input:
        run_results(FOLDS),
        verdicts=rules.stopping.output.runs,
    output:
        **human_cost_outputs(),
    log:
        "results/logs/human_cost/human_cost.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        **key_params("report", ["within_points", "dpi", "allow_partial"]),
        **leaf_params(
            {
                k: config["al"][k]
                for k in (
                    "unit",
                    "unit_score",
                    "shot_keyframes",
                    "pseudo_labels",
                    "cost",
                )
            },
            ("al",),
        ),
        rules=config["stopping"]["rules"],
        folds=FOLDS,
        seeds=SEEDS,
        strategies=STRATEGIES,
        cycles=lambda wc: CYCLES,
        full=lambda wc: FULL_METRICS,
    message:
        "Human cost (decisions, images shown) over {params.folds} x {params.seeds}"
    script:
        "../../scripts/human_cost.py"


rule plot_fold:
    """Learning curves of one fold (the paper's Figures 3-7)."""
    input:
        lambda wc: run_results([int(wc.fold)]),
        verdicts=rules.stopping.output.runs,
    output:
        png=report(
            "results/figures/fold{fold}.png",
            caption="../report/fold_figure.rst",
            category=CATEGORY["figures"],
            subcategory="Learning curves",
            labels={"figure": "Fold {fold}"},
        ),
        pdf="results/figures/fold{fold}.pdf",
    log:
        "results/logs/plot_fold/fold{fold}.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        **key_params("report", ["dpi", "curve_metric"]),
        seeds=SEEDS,
        strategies=STRATEGIES,
        cycles=lambda wc: CYCLES,
        full=lambda wc: FULL_METRICS,
    message:
        "Learning curves of fold {wildcards.fold} (the paper's Figures 3-7)"
    script:
        "../../scripts/plot_fold.py"


rule plot_summary:
    """Learning curves averaged over folds, with the full-supervision line."""
    input:
        run_results(FOLDS),
        verdicts=rules.stopping.output.runs,
    output:
        png=report(
            "results/figures/summary.png",
            caption="../report/summary_figure.rst",
            category=CATEGORY["figures"],
            subcategory="Learning curves",
            labels={"figure": "All folds"},
        ),
        pdf="results/figures/summary.pdf",
    log:
        "results/logs/plot_summary/summary.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        **key_params("report", ["dpi", "within_points", "curve_metric"]),
        folds=FOLDS,
        seeds=SEEDS,
        strategies=STRATEGIES,
        cycles=lambda wc: CYCLES,
        full=lambda wc: FULL_METRICS,
    message:
        "Learning curves averaged over folds {params.folds}"
    script:
        "../../scripts/plot_summary.py"


rule report_protocol:
    """The report's protocol page: settings, Table 1 and the complete config used."""
    input:
        table1=TABLE1,
    output:
        html=report(
            "results/tables/protocol.html",
            caption="../report/protocol.rst",
            category=CATEGORY["protocol"],
            labels={"page": "Protocol, config and Table 1"},
        ),
        md="results/tables/protocol.md",
        config=report(
            "results/tables/config_used.yaml",
            caption="../report/config_used.rst",
            category=CATEGORY["protocol"],
            labels={"page": "Complete config (YAML)"},
        ),
    log:
        "results/logs/report_protocol/protocol.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    params:
        # The whole validated config on purpose: this page documents it, so any change redoes it
        # (one param per key, so the rerun reason names the key).
        **leaf_params(config),
    message:
        "Protocol page: settings, Table 1 and the complete config"
    script:
        "../../scripts/report_protocol.py"


rule report_front:
    """Table 2 and the summary figure for the front page of snakemake --report."""
    input:
        table2=rules.aggregate.output.table2_html,
        summary=rules.plot_summary.output.png,
    output:
        rst=FRONT_PAGE,
    log:
        "results/logs/report_front/report_front.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    message:
        "Front page of the report: Table 2 and the summary figure"
    script:
        "../../scripts/report_front.py"


# Everything the report stage makes, taken from the rules themselves.
TARGETS += [
    *map(str, rules.aggregate.output),
    *map(str, rules.stopping.output),
    *map(str, rules.human_cost.output),
    *expand(rules.plot_fold.output, fold=FOLDS),
    *map(str, rules.plot_summary.output),
    *map(str, rules.report_protocol.output),
    *map(str, rules.report_front.output),
]
