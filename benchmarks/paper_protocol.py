"""The paper's protocol on NPDI, counted once for every benchmark that projects onto it.

Hor et al. (2022) on NPDI (../shared/PROTOCOL.md): 16,727 keyframes of 800 videos, 5 folds x 5
seeds, 3 strategies + full supervision; validation 20% of training; initial 20% of the pool; 500
per query; at most 5 epochs per cycle, baseline 10 epochs (project default); validation every
epoch. bench_phases, bench_strategies and gpu_slice used to carry their own copies of these
counts (and a test checked that two of them agreed); they import them from here instead.
"""

from __future__ import annotations

PAPER = {
    "keyframes": 16727,
    "videos": 800,
    "folds": 5,
    "seeds": 5,
    "strategies": 3,
    "val_fraction": 0.2,
    "initial_fraction": 0.2,
    "query": 500,
    "epochs": 5,
    "baseline_epochs": 10,
}
FRAMES_PER_VIDEO = round(PAPER["keyframes"] / PAPER["videos"])  # 21


def split_sizes(n: int = PAPER["keyframes"], folds: int = PAPER["folds"]) -> tuple[float, int, int]:
    """(test keyframes per fold, validation keyframes, training pool) of one fold."""
    n_test = n / folds
    train = n - n_test
    n_val = round(train * PAPER["val_fraction"])
    return n_test, n_val, round(train - n_val)


def protocol_images(
    n: int = PAPER["keyframes"],
    folds: int = PAPER["folds"],
    seeds: int = PAPER["seeds"],
    strategies: int = PAPER["strategies"],
    query: int = PAPER["query"],
    epochs: int = PAPER["epochs"],
    baseline_epochs: int = PAPER["baseline_epochs"],
) -> dict:
    """Image passes of the whole protocol, every epoch run (an upper bound), split by phase:
    training (labelled images x epochs, with validation each epoch), scoring the unlabelled
    pool, testing."""
    n_test, n_val, pool = split_sizes(n, folds)
    labelled = [round(pool * PAPER["initial_fraction"])]
    while labelled[-1] < pool:
        labelled.append(min(pool, labelled[-1] + query))
    runs = folds * seeds
    per_run = {
        "train": sum(epochs * k for k in labelled),
        "val": sum(epochs * n_val for _ in labelled),
        "score": sum(pool - k for k in labelled),
        "test": n_test * len(labelled),
    }
    base = {
        "train": baseline_epochs * pool,
        "val": baseline_epochs * n_val,
        "score": 0,
        "test": n_test,
    }
    total = {k: runs * (strategies * per_run[k] + base[k]) for k in per_run}
    return {
        "cycles_per_run": len(labelled),
        "pool": pool,
        "al_runs": runs * strategies,
        "baselines": runs,
        "per_al_run": per_run,
        "per_baseline": base,
        **total,
    }
