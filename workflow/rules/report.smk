# Results: the paper's Table 2 (+ F1 and ROC-AUC twins), Figures 3-7 (one per fold), a summary
# figure, learning-curve statistics, strategy-vs-random CIs, and the report's protocol page.
# `snakemake --report results/report.html` collects everything marked report(...) below.
report: "../report/workflow.rst"


rule aggregate:
    input:
        run_results(FOLDS),
    output:
        **table_outputs(),
        missing=report(
            "results/tables/missing.csv",
            caption="../report/missing.rst",
            category="Tables",
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
        folds=FOLDS,
        seeds=SEEDS,
        strategies=STRATEGIES,
        cycles=lambda wc: CYCLES,
        full=lambda wc: FULL_METRICS,
        report={
            k: v
            for k, v in config["report"].items()
            if k not in ("dpi", "curve_metric")
        },
    message:
        "Table 2, F1/ROC-AUC tables, summary and paired CIs over {params.folds} x {params.seeds}"
    script:
        "../../scripts/aggregate.py"


rule plot_fold:
    input:
        lambda wc: run_results([int(wc.fold)]),
    output:
        png=report(
            "results/figures/fold{fold}.png",
            caption="../report/fold_figure.rst",
            category="Figures",
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
        seeds=SEEDS,
        strategies=STRATEGIES,
        cycles=lambda wc: CYCLES,
        full=lambda wc: FULL_METRICS,
        report={k: config["report"][k] for k in ("dpi", "curve_metric")},
    message:
        "Learning curves of fold {wildcards.fold} (the paper's Figures 3-7)"
    script:
        "../../scripts/plot_fold.py"


rule plot_summary:
    input:
        run_results(FOLDS),
    output:
        png=report(
            "results/figures/summary.png",
            caption="../report/summary_figure.rst",
            category="Figures",
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
        folds=FOLDS,
        seeds=SEEDS,
        strategies=STRATEGIES,
        cycles=lambda wc: CYCLES,
        full=lambda wc: FULL_METRICS,
        report={
            k: config["report"][k] for k in ("dpi", "within_points", "curve_metric")
        },
    message:
        "Learning curves averaged over folds {params.folds}"
    script:
        "../../scripts/plot_summary.py"


rule report_protocol:
    input:
        table1=TABLE1,
    output:
        html=report(
            "results/tables/protocol.html",
            caption="../report/protocol.rst",
            category="Protocol",
            labels={"page": "Protocol, config and Table 1"},
        ),
        md="results/tables/protocol.md",
        config=report(
            "results/tables/config_used.yaml",
            caption="../report/config_used.rst",
            category="Protocol",
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
        # The whole validated config on purpose: this page documents it, so any change redoes it.
        config=config,
    message:
        "Protocol page: settings, Table 1 and the complete config"
    script:
        "../../scripts/report_protocol.py"


TARGETS += [
    *(
        f"results/tables/{name}.{fmt}"
        for name in REPORT_TABLES
        for fmt in ("csv", "md", "html")
    ),
    "results/tables/missing.csv",
    *expand("results/figures/fold{fold}.{ext}", fold=FOLDS, ext=["png", "pdf"]),
    "results/figures/summary.png",
    "results/figures/summary.pdf",
    "results/tables/protocol.html",
    "results/tables/protocol.md",
    "results/tables/config_used.yaml",
]
