"""Hand-made runs with known values, shared by the report tests (no tests of its own).

Design, so every expected number can be worked out by hand:
- folds 0 and 1, seeds 0 and 1; pool 100 (fold 0) and 300 (fold 1) images;
- cycles at 20, 35, 50, 65, 80, 100 % labelled;
- accuracy (%) of a run at p % labelled = 80 + 0.1 (p - 20) + STRATEGY_OFFSET + RUN_OFFSET
  (+ ENTROPY_NOISE for entropy only), i.e. a straight line, so linear reading is exact;
- full supervision: 86.2% on fold 0, 87% on fold 1 (mean 86.6).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alnsfw.al.loop import STOP_COLUMNS
from alnsfw.outputs import CYCLES, FULL_METRICS, STOPPING
from alnsfw.report.runs import expected_runs

FOLDS = [0, 1]
SEEDS = [0, 1]
STRATEGIES = ["random", "least_confidence", "entropy"]
PCTS = [20, 35, 50, 65, 80, 100]
POOL = {0: 100, 1: 300}
N_TEST = {0: 1000, 1: 1234}
STRATEGY_OFFSET = {"random": 0.0, "least_confidence": 1.0, "entropy": 2.0, "margin": 0.5}
RUN_OFFSET = {(0, 0): -1.0, (0, 1): 1.0, (1, 0): -2.0, (1, 1): 2.0}
ENTROPY_NOISE = {(0, 0): 0.4, (0, 1): -0.4, (1, 0): 0.8, (1, 1): -0.8}
FULL_ACCURACY = {0: 86.2, 1: 87.0}


def accuracy(strategy: str, fold: int, seed: int, pct: float) -> float:
    """Accuracy in percent of the hand-made run at `pct` % labelled."""
    value = 80 + 0.1 * (pct - 20) + STRATEGY_OFFSET[strategy] + RUN_OFFSET[(fold, seed)]
    if strategy == "entropy":
        value += ENTROPY_NOISE[(fold, seed)]
    return value


def metric_columns(acc: float) -> dict:
    """The test-metric columns of a run's row (accuracy as a fraction, as the runs write it)."""
    counts = dict.fromkeys(("tp", "tn", "fp", "fn"), 0)
    return (
        {"accuracy": acc, "precision": acc, "recall": acc, "f1": acc - 0.05}
        | {"roc_auc": acc + 0.05}
        | counts
    )


def cycles_frame(strategy: str, fold: int, seed: int) -> pd.DataFrame:
    """A cycles.csv with the contract's columns."""
    rows = []
    for i, p in enumerate(PCTS):
        acc = accuracy(strategy, fold, seed, p) / 100
        rows.append(
            {
                "cycle": i,
                "n_labelled": POOL[fold] * p // 100,
                "pct_labelled": float(p),
                "n_labelled_porn": 0,
                "n_labelled_nonporn": 0,
                "n_test": N_TEST[fold],
                **metric_columns(acc),
                "val_loss": 0.5,
                "epochs": 5,
                "train_seconds": 1.0,
                "score_seconds": 1.0,
                "test_seconds": 1.0,
                # keyframe tasks: one decision and one image per label (alnsfw.al.cost)
                "tasks": POOL[fold] * p // 100,
                "corrections": 0,
                "decisions": POOL[fold] * p // 100,
                "images_shown": POOL[fold] * p // 100,
            }
        )
    return pd.DataFrame(rows)


def full_frame(fold: int) -> pd.DataFrame:
    """A one-row full/metrics.csv."""
    row = {"n_labelled": POOL[fold], "pct_labelled": 100.0, "n_test": N_TEST[fold]}
    row |= metric_columns(FULL_ACCURACY[fold] / 100)
    row |= {"val_loss": 0.4, "epochs": 10, "train_seconds": 1.0, "test_seconds": 1.0}
    return pd.DataFrame([row])


A = "0110100110"  # 10 stop-set items


def flipped(packed: str) -> str:
    return "".join("1" if c == "0" else "0" for c in packed)


def stopping_frame(strategy: str, fold: int) -> pd.DataFrame:
    """A stopping.csv whose rules fire at known cycles (see test_report_stopping)."""
    rows = []
    for i, p in enumerate(PCTS):
        if strategy == "entropy":
            preds = A if i % 2 else flipped(A)  # kappa -1 every window
        else:
            preds = flipped(A) if i == 0 else A  # one change, then stable
        uncertainty = 0.01 if strategy == "least_confidence" and i >= 2 else 0.2
        audit = 0.5 + 0.08 * i  # rises by 8 points a cycle, intervals of +-1 point: no plateau
        n = POOL[fold] * p // 100
        rows.append(
            {
                "cycle": i,
                "n_labelled": n,
                "labelled_share": n / POOL[fold],
                "stop_n": len(A),
                "stop_kappa": float("nan"),
                "stop_uncertainty": uncertainty,
                "audit_correct": 0,
                "audit_accuracy": audit,
                "audit_ci_low": audit - 0.01,
                "audit_ci_high": audit + 0.01,
                "stop_predictions": preds,
            }
        )
    return pd.DataFrame(rows, columns=STOP_COLUMNS)


def make_runs(root: Path, strategies: list[str] | None = None) -> list:
    """Write every hand-made run under `root` and return their RunSpecs (absolute paths)."""
    strategies = strategies or STRATEGIES
    runs = expected_runs(FOLDS, SEEDS, strategies, str(root / CYCLES), str(root / FULL_METRICS))
    for run in runs:
        Path(run.path).parent.mkdir(parents=True, exist_ok=True)
        if run.method == "full":
            full_frame(run.fold).to_csv(run.path, index=False)
        else:
            cycles_frame(run.method, run.fold, run.seed).to_csv(run.path, index=False)
            stop = root / STOPPING.format(fold=run.fold, seed=run.seed, strategy=run.method)
            stopping_frame(run.method, run.fold).to_csv(stop, index=False)
    return runs


def table_outputs(root: Path) -> dict[str, str]:
    """Output paths of `aggregate` under root/results/tables."""
    out = {
        f"{name}_{fmt}": str(root / "results" / "tables" / f"{name}.{fmt}")
        for name in ("table2", "table2_video", "f1", "roc_auc", "summary", "paired")
        for fmt in ("csv", "md", "html")
    }
    out["missing"] = str(root / "results" / "tables" / "missing.csv")
    return out
