"""Rule extract_keyframes: one video's keyframes (extracted or shipped) -> its HDF5 shard."""

from alnsfw.data.extract import extract_keyframes
from alnsfw.entry import run_logged

run_logged(
    extract_keyframes,
    snakemake.log[0],
    video=snakemake.wildcards.video,
    video_class=snakemake.params.video_class,
    source=snakemake.params.source,
    inputs=list(snakemake.input),
    out=snakemake.output[0],
    keyframes=snakemake.params.keyframes,
    on_truncated=snakemake.params.on_truncated,
)
