"""Rule peer_scores: a zero-shot peer's P(porn) of every keyframe (report.peers, docs/peers.md)."""

from alnsfw.entry import run_logged
from alnsfw.model.open_nsfw import write_peer_scores

run_logged(
    write_peer_scores,
    snakemake.log[0],
    keyframes_h5=snakemake.input.keyframes,
    out_csv=snakemake.output.scores,
    batch=snakemake.params.batch,
    threads=snakemake.threads,
)
