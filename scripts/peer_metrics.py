"""Rule peer_metrics: a peer's test metrics on every fold x seed split (alnsfw.predict.peers)."""

from alnsfw.entry import run_logged
from alnsfw.predict.peers import write_run_metrics

p = snakemake.params
run_logged(
    write_run_metrics,
    snakemake.log[0],
    peer=snakemake.wildcards.peer,
    scores_csv=snakemake.input.scores,
    keyframes=snakemake.input.keyframes,
    split_files=list(snakemake.input.splits),
    folds=p.folds,
    seeds=p.seeds,
    config={"video": p.video, "export": p.export},
    out=snakemake.output.runs,
)
