"""A NumPy stand-in for the network Learner, and a tiny dataset, for the active-learning tests.

FakeLearner is logistic regression on a feature array stored in a small keyframes.h5 (dataset
`x` beside `label` and `video`). It implements the loop's model interface (fit with early
stopping restoring the best weights, predict_proba, reset, save/load including its RNG state,
and for the embedding and MC-dropout strategies embed / mc_dropout_proba), so the tests prove
the loop works with any model and knows nothing about the network. Also runnable as a script
(`python tests/test_al_fakes.py ...`) for the kill-and-resume test.
"""

from __future__ import annotations

import copy
import json
import logging
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from alnsfw.al.jobs import active_learning_job, fold_seed_runs, full_supervision_job

CONFIG = {
    "al": {
        "initial_fraction": 0.2,
        "query_size": 8,
        "warm_start": True,
        "mc_samples": 20,
        "max_per_video": None,
    },
    "training": {"max_epochs": 3, "patience": 1, "learning_rate": 0.5, "batch_size": 16},
    "baseline": {"epochs": 6, "patience": None},
    "fake": {"sleep": 0.0},
}


def config(**overrides: dict) -> dict:
    """CONFIG with some sections updated, e.g. config(al={"warm_start": False})."""
    cfg = copy.deepcopy(CONFIG)
    for section, values in overrides.items():
        cfg[section].update(values)
    return cfg


class FakeLearner:
    """Logistic regression trained by mini-batch gradient descent; same interface as Learner."""

    def __init__(
        self, x: np.ndarray, labels: np.ndarray, seed: int, training: dict, sleep: float = 0.0
    ) -> None:
        self.x = x
        self.labels = labels.astype(np.float64)
        self.lr = training.get("learning_rate", 0.5)
        self.batch = training.get("batch_size", 16)
        self.sleep = sleep
        self.initial = np.random.default_rng(seed).normal(0.0, 0.01, x.shape[1] + 1)
        self.w = self.initial.copy()
        self.rng = np.random.default_rng(seed + 1)
        self.resets = 0
        self.fit_calls: list[tuple[np.ndarray, np.ndarray]] = []
        self.predict_calls: list[np.ndarray] = []
        self.embed_calls: list[np.ndarray] = []
        self.mc_calls: list[tuple[np.ndarray, int, int]] = []

    def _p(self, rows: np.ndarray) -> np.ndarray:
        z = self.x[rows] @ self.w[:-1] + self.w[-1]
        return 1.0 / (1.0 + np.exp(-z))

    def _loss_acc(self, rows: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        p = np.clip(self._p(rows), 1e-7, 1 - 1e-7)
        loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
        return loss, float(np.mean((p > 0.5) == (y == 1)))

    def fit(self, train_rows, val_rows, max_epochs, patience, *, train_labels, val_labels):
        """Trains on the labels the caller passes (like Learner), never on its own file's."""
        self.fit_calls.append((np.array(train_rows), np.array(val_rows)))
        given = np.full(len(self.x), np.nan)
        given[np.asarray(train_rows)] = train_labels
        time.sleep(self.sleep)
        best, best_w, wait, history = np.inf, self.w.copy(), 0, []
        for epoch in range(max_epochs):
            order = self.rng.permutation(np.asarray(train_rows))
            for start in range(0, len(order), self.batch):
                rows = order[start : start + self.batch]
                err = self._p(rows) - given[rows]
                grad = np.r_[self.x[rows].T @ err, err.sum()] / len(rows)
                self.w = self.w - self.lr * grad
            loss, acc = self._loss_acc(np.asarray(train_rows), np.asarray(train_labels))
            val_loss, val_acc = self._loss_acc(np.asarray(val_rows), np.asarray(val_labels))
            history.append(
                {
                    "epoch": epoch,
                    "loss": loss,
                    "accuracy": acc,
                    "val_loss": val_loss,
                    "val_accuracy": val_acc,
                }
            )
            if val_loss < best:
                best, best_w, wait = val_loss, self.w.copy(), 0
            else:
                wait += 1
                if wait >= patience:
                    break
        self.w = best_w
        return {"epochs": len(history), "val_loss": best, "history": history}

    def predict_proba(self, rows):
        self.predict_calls.append(np.array(rows))
        p = self._p(np.asarray(rows))
        return np.stack([1 - p, p], axis=1)

    def embed(self, rows):
        """The features themselves as the 'penultimate embedding', and the probabilities."""
        self.embed_calls.append(np.array(rows))
        p = self._p(np.asarray(rows))
        return self.x[np.asarray(rows)].astype(np.float32), np.stack([1 - p, p], axis=1)

    def mc_dropout_proba(self, rows, samples, seed):
        """Dropout (rate 0.5, inverted) on the input features, `samples` times, from `seed`."""
        self.mc_calls.append((np.array(rows), samples, seed))
        x = self.x[np.asarray(rows)]
        rng = np.random.default_rng(seed)
        out = np.empty((samples, len(x), 2))
        for t in range(samples):
            z = (x * (rng.random(x.shape) >= 0.5) * 2.0) @ self.w[:-1] + self.w[-1]
            p = 1.0 / (1.0 + np.exp(-z))
            out[t] = np.stack([1 - p, p], axis=1)
        return out

    def reset(self):
        self.resets += 1
        self.w = self.initial.copy()

    def save(self, directory):
        state = {"w": self.w.tolist(), "rng": self.rng.bit_generator.state}
        (Path(directory) / "fake.json").write_text(json.dumps(state))

    def load(self, directory):
        state = json.loads((Path(directory) / "fake.json").read_text())
        self.w = np.asarray(state["w"])
        self.rng.bit_generator.state = state["rng"]


def fake_build(cfg, keyframes, features, bank, seed):
    """LearnerFactory of the fake: reads `x` and `label` from the tiny keyframes.h5."""
    with h5py.File(keyframes, "r") as h5:
        x, labels = h5["x"][:], h5["label"][:]
    return FakeLearner(x, labels, seed, cfg["training"], cfg.get("fake", {}).get("sleep", 0.0))


def make_dataset(folder: Path, n: int = 130, seed: int = 0) -> tuple[str, str]:
    """keyframes.h5 (x, label, video) and a split json: 80 pool (prevalence ~0.6), 20 val, rest
    test.

    Two overlapping Gaussian blobs, so the fake learns something but not everything. Rows come
    in runs of 1-9 consecutive rows per video (names as bytes, like keyframes.h5), so a pool
    has several keyframes of most videos.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.6).astype(np.int8)
    x = rng.normal(0.0, 1.0, (n, 3)) + labels[:, None] * np.array([1.5, -1.0, 0.5])
    keyframes = folder / "keyframes.h5"
    with h5py.File(keyframes, "w") as h5:
        h5["x"] = x
        h5["label"] = labels
        videos = video_of_rows(n, np.random.default_rng([seed, 1]))  # leaves `rng` untouched
        h5["video"] = np.array([f"v{i}".encode() for i in videos])
    rows = rng.permutation(n)
    pool, val, test = np.sort(rows[:80]), np.sort(rows[80:100]), np.sort(rows[100:])
    split = folder / "split.json"
    parts = {"pool": pool, "val": val, "test": test}
    split.write_text(json.dumps({"fold": 0, "seed": 0} | {k: v.tolist() for k, v in parts.items()}))
    return str(keyframes), str(split)


def video_of_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    """A video number per row: consecutive runs of 1-9 rows."""
    lengths = rng.integers(1, 10, size=n)
    return np.repeat(np.arange(n), lengths)[:n]


def al_outputs(run_dir: Path) -> dict[str, str]:
    """Output paths of an AL run folder."""
    return {k: str(run_dir / f"{k}.csv") for k in ("cycles", "queries", "predictions", "stopping")}


class CrashAt:
    """A learner factory whose learner raises in fit at a given cycle (a simulated kill)."""

    def __init__(self, cycle):
        self.cycle = cycle

    def __call__(self, *args):
        learner = fake_build(*args)
        fit, calls = learner.fit, []

        def crashing_fit(*a, **k):
            calls.append(1)
            if len(calls) > self.cycle:
                raise KeyboardInterrupt("killed")
            return fit(*a, **k)

        learner.fit = crashing_fit
        return learner


def run_al(data: tuple[str, str], run_dir: Path, strategy: str = "entropy", cfg=None, **kw):
    """active_learning_job with the fake learner (fold 0, seed 0 unless given)."""
    keyframes, split = data
    active_learning_job(
        keyframes=keyframes,
        split=split,
        outputs=al_outputs(run_dir),
        config=cfg or config(),
        fold=kw.get("fold", 0),
        seed=kw.get("seed", 0),
        strategy=strategy,
        build=kw.get("build", fake_build),
    )


def run_baseline(data: tuple[str, str], run_dir: Path, cfg=None) -> None:
    """full_supervision_job with the fake learner."""
    keyframes, split = data
    full_supervision_job(
        keyframes=keyframes,
        split=split,
        outputs={k: str(run_dir / f"{k}.csv") for k in ("metrics", "history", "predictions")},
        config=cfg or config(),
        fold=0,
        seed=0,
        build=fake_build,
    )


def test_fake_learner_learns(tmp_path):
    """The fake beats the majority rate, so strategy differences in tests are meaningful."""
    keyframes, split = make_dataset(tmp_path)
    learner = fake_build(config(), keyframes, None, None, 0)
    parts = json.loads(Path(split).read_text())
    pool, val = np.array(parts["pool"]), np.array(parts["val"])
    labels = learner.labels.astype(np.int64)
    learner.fit(pool, val, 20, 5, train_labels=labels[pool], val_labels=labels[val])
    test = np.array(parts["test"])
    acc = np.mean(learner.predict_proba(test).argmax(1) == learner.labels[test])
    assert acc > 0.75


if __name__ == "__main__":
    # python tests/test_al_fakes.py <data folder> <run folder> <strategy> <sleep seconds>
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    data_dir, run_dir, strategy, sleep = sys.argv[1:5]
    data = (str(Path(data_dir) / "keyframes.h5"), str(Path(data_dir) / "split.json"))
    run_al(data, Path(run_dir), strategy, config(fake={"sleep": float(sleep)}))


class Spy:
    """Wraps fake_build and keeps the learners it built, to look at their calls."""

    def __init__(self):
        self.learners = []

    def __call__(self, *args):
        learner = fake_build(*args)
        self.learners.append(learner)
        return learner


def test_a_killed_batch_job_resumes_its_finished_runs(tmp_path):
    """compute.batch_runs: a job killed in its second run is rerun by Snakemake with all of its
    outputs deleted; the finished first run resumes from its kept last checkpoint (no training)
    and every file ends as in an uninterrupted job."""
    import pandas as pd

    from alnsfw.al.loop import TIMING_COLUMNS

    data = make_dataset(tmp_path / "data")
    strategies = ("random", "entropy")

    def runs(root: Path) -> list[dict]:
        return [
            {"strategy": s, "outputs": al_outputs(root / s), "config": config(), "log": None}
            for s in strategies
        ]

    fold_seed_runs(runs(tmp_path / "whole"), *data, fold=0, seed=0, build=fake_build)
    builds = iter([fake_build, CrashAt(3)])  # the second run is killed in its fourth cycle
    with pytest.raises(KeyboardInterrupt):
        fold_seed_runs(runs(tmp_path / "job"), *data, 0, 0, build=lambda *a: next(builds)(*a))
    first = tmp_path / "job" / strategies[0]
    assert (first / "checkpoint").is_dir() and (first / "cycles.csv").exists()
    for path in (tmp_path / "job").rglob("*.csv"):  # Snakemake removes an incomplete job's outputs
        path.unlink()
    fits: list[int] = []  # fit calls per run of the rerun, in order

    def counting(*args):
        learner, run = fake_build(*args), len(fits)
        fits.append(0)
        fit = learner.fit

        def counted(*a, **k):
            fits[run] += 1
            return fit(*a, **k)

        learner.fit = counted
        return learner

    fold_seed_runs(runs(tmp_path / "job"), *data, fold=0, seed=0, build=counting)
    assert fits[0] == 0 and fits[1] > 0, fits  # the finished run only rewrote its outputs
    assert not list((tmp_path / "job").rglob("checkpoint"))
    for strategy in strategies:
        for name in ("cycles", "queries", "predictions", "stopping"):
            whole = pd.read_csv(tmp_path / "whole" / strategy / f"{name}.csv")
            resumed = pd.read_csv(tmp_path / "job" / strategy / f"{name}.csv")
            keep = [c for c in whole.columns if c not in TIMING_COLUMNS]
            pd.testing.assert_frame_equal(resumed[keep], whole[keep], check_exact=True)
