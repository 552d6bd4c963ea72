"""Entry point of rule `export_model`: one run's .keras and .onnx model and their JSON."""

from alnsfw.entry import run_logged
from alnsfw.model.settings import with_runtime
from alnsfw.predict.export import export_model

w = snakemake.wildcards
run_logged(
    export_model,
    snakemake.log[0],
    config=with_runtime(snakemake.params.config, snakemake.config),  # + gpu, memory keys
    weights=snakemake.input.weights,
    results=snakemake.input.results,
    predictions=snakemake.input.predictions,
    keyframes=snakemake.input.keyframes,
    outputs=dict(snakemake.output.items()),
    run={"fold": int(w.fold), "seed": int(w.seed), "method": w.method},
    split=snakemake.input.split,
)
