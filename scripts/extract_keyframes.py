"""Rule extract_keyframes: one video's keyframes (extracted or shipped) -> its HDF5 shard; or,
with compute.keyframe_jobs, rule extract_keyframes_<group>: each video of the group in turn."""

from alnsfw.data.extract import extract_group, extract_keyframes
from alnsfw.entry import run_logged

if "videos" in snakemake.params.keys():
    run_logged(
        extract_group,
        snakemake.log[0],
        videos=snakemake.params.videos,
        outs=list(snakemake.output),
        keyframes=snakemake.params.keyframes,
        on_truncated=snakemake.params.on_truncated,
    )
else:
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
