"""Rule merge_keyframes: all shards + per-frame labels -> keyframes.h5 and manifest.csv."""

from alnsfw.data.stages import merge_keyframes
from alnsfw.entry import run_logged

run_logged(
    merge_keyframes,
    snakemake.log[0],
    shards=list(snakemake.input.shards),
    out_h5=snakemake.output.h5,
    out_manifest=snakemake.output.manifest,
    frame_labels=snakemake.input.labels[0] if snakemake.input.labels else None,
    on_missing=snakemake.params.on_missing,
)
