# Export: a run's trained network as one standard .keras file, the same network as .onnx (for
# the light install), and a JSON beside them with its operating point (see
# src/alnsfw/predict/export.py and docs/deploy.md). `all` exports the runs listed in export.runs (default: the
# full-supervision model of the first fold and seed); any other run on request, e.g.
#   snakemake --cores 2 results/models/fold1/seed0/entropy.keras


rule export_model:
    """One run's network as .keras and .onnx, a JSON with its operating point, self-checked."""
    input:
        trunk_weights_files(config),
        weights=run_file("final_weights.h5", "{method}"),
        results=export_results_file,
        predictions=run_file("predictions.csv", "{method}"),
        keyframes=KEYFRAMES,
        split=SPLIT,
    output:
        model=f"{MODEL_DIR}/{{method}}.keras",
        onnx=f"{MODEL_DIR}/{{method}}.onnx",
        meta=f"{MODEL_DIR}/{{method}}.json",
    log:
        "results/logs/export_model/fold{fold}/seed{seed}/{method}.log",
    # Exports (a minute of ONNX conversion) start as soon as their run is done, beside the other
    # runs (full_supervision goes first for that), instead of last, after every run.
    priority: 10
    conda:
        "../../envs/model.yaml"
    threads: config["compute"]["threads"]
    resources:
        mem_mb=res("features", "mem_mb"),
        runtime=res("features", "runtime"),
    params:
        config=export_settings,
    message:
        "Export the model of fold {wildcards.fold}, seed {wildcards.seed}, {wildcards.method}"
    script:
        "../../scripts/export_model.py"


rule operating_points:
    """Per fold: the full-supervision model's operating point and test precision/recall at it."""
    input:
        expand(f"{MODEL_DIR}/full.json", fold=FOLDS, seed=SEEDS[:1]),
    output:
        csv=report(
            "results/tables/operating_points.csv",
            caption="../report/operating_points.rst",
            category=CATEGORY["tables"],
            subcategory="Operating points",
            labels={"table": "Operating points", "format": "CSV"},
        ),
        md="results/tables/operating_points.md",
        html=report(
            "results/tables/operating_points.html",
            caption="../report/operating_points.rst",
            category=CATEGORY["tables"],
            subcategory="Operating points",
            labels={"table": "Operating points", "format": "HTML"},
        ),
    log:
        "results/logs/operating_points/operating_points.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=res("default", "mem_mb"),
        runtime=res("default", "runtime"),
    message:
        "Operating points of the full-supervision models, one per fold"
    script:
        "../../scripts/operating_points.py"


TARGETS.extend(exported_models())
TARGETS.extend(rules.operating_points.output)
