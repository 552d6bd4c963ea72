"""Active learning: pool state, query strategies, the loop, the full-supervision baseline.

- pool: the labelled mask over the training pool and the query history (JSON-serialisable).
- strategies: pure functions probabilities -> ranking, registered by name.
- loop: train / test / query / reveal until the pool is labelled, checkpointed every cycle.
- baseline: the same learner trained once on the whole pool.
- seeding, checkpoint: per-run seeds and atomic checkpoints (determinism and resume).
- jobs: one Snakemake job each (reads inputs, builds the learner, writes the CSVs).

Nothing here imports TensorFlow at import time; the network is reached only through the Learner
interface (alnsfw.al.loop.Learner).
"""
