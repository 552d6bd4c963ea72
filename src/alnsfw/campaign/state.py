"""The campaign's state: its draws, its files and their lock (the driver, alnsfw.campaign.core,
reads and writes them only through this module; the adapter, labels/client/tasks/mlbackend,
talks to Label Studio).

Files in `campaign.dir`: campaign.json (the plan: the draws, the project), tasks.json (task ids
and rows sent), labels.jsonl (alnsfw.campaign.labels.LabelLog), checkpoint/
(alnsfw.al.checkpoint: the loop state and the learner after each round), rounds.csv, cycles.csv,
problems.jsonl, `.lock`. Every write goes to a temporary name and is renamed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from alnsfw.al.checkpoint import CheckpointStore
from alnsfw.al.stopping import wilson_interval
from alnsfw.io import write_json


class CampaignError(RuntimeError):
    """The campaign cannot go on as asked; the message says what to do."""


def draw_by_video(
    candidates: np.ndarray, videos: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """`size` rows drawn round-robin over videos in random order, a random keyframe of each per
    turn, so that no video dominates (a long video gives as many as a short one until the short
    one runs out). Sorted ascending."""
    candidates = np.asarray(candidates, dtype=np.int64)
    by_video: dict[int, list[int]] = {}
    for row in rng.permutation(candidates):
        by_video.setdefault(int(videos[row]), []).append(int(row))
    order = [by_video[v] for v in sorted(by_video)]
    order = [order[i] for i in rng.permutation(len(order))]
    chosen: list[int] = []
    turn = 0
    while len(chosen) < size and any(turn < len(rows) for rows in order):
        chosen.extend(rows[turn] for rows in order if turn < len(rows))
        turn += 1
    return np.sort(np.asarray(chosen[:size], dtype=np.int64))


def draw_whole_videos(
    candidates: np.ndarray, videos: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Whole videos in random order until at least `size` keyframes: an audit that shares no
    video with training (a video's keyframes are near-duplicates, and an audit that shares
    videos with the training set flatters the model, as the paper's test folds avoid). Sorted."""
    candidates = np.asarray(candidates, dtype=np.int64)
    chosen: list[int] = []
    for video in rng.permutation(np.unique(videos[candidates])):
        if len(chosen) >= size:
            break
        chosen.extend(int(r) for r in candidates[videos[candidates] == video])
    return np.sort(np.asarray(chosen, dtype=np.int64))


def interleave(groups: Sequence[Sequence[Any]]) -> list[Any]:
    """The items of `groups` merged so that every prefix holds each group in proportion to its
    size (largest remainder), keeping each group's order: the first dozen labels then already
    give pool, validation and audit items, so the first round trains after about a dozen."""
    sizes = [len(g) for g in groups]
    total = sum(sizes)
    taken = [0] * len(groups)
    out: list[Any] = []
    for step in range(1, total + 1):
        due = [step * n / total - t for n, t in zip(sizes, taken)]
        k = max(
            range(len(groups)), key=lambda i: (due[i], -i) if taken[i] < sizes[i] else (-1e9, 0)
        )
        out.append(groups[k][taken[k]])
        taken[k] += 1
    return out


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of k correct in n (alnsfw.al.stopping's, i.e. scipy's binomtest),
    (nan, nan) without data."""
    if n == 0:
        return float("nan"), float("nan")
    return wilson_interval(int(k), int(n))


def porn_class_stats(row: dict[str, Any], truth: np.ndarray) -> dict[str, Any]:
    """Precision and recall of the porn class and the estimated prevalence on the labelled
    audit items, each with its 95% Wilson interval: at moderation prevalence (a few % porn),
    accuracy alone says little (predicting "non-porn" always is then 95% accurate)."""
    tp, fp, fn = int(row["tp"]), int(row["fp"]), int(row["fn"])
    n, pos = len(truth), int(np.sum(np.asarray(truth) == 1))

    def stat(k: int, m: int) -> list[Any] | None:
        return None if m == 0 else [k / m, list(wilson(k, m))]

    return {
        "precision": stat(tp, tp + fp),
        "recall": stat(tp, tp + fn),
        "prevalence": stat(pos, n),
    }


def class_counts(labels: np.ndarray, pool_rows: np.ndarray, audit_rows: np.ndarray) -> dict:
    """Labelled items of each class in the pool and the audit (the stop suggestion's guard)."""
    return {
        "pool": [int(np.sum(labels[pool_rows] == c)) for c in (0, 1)],
        "audit": [int(np.sum(labels[audit_rows] == c)) for c in (0, 1)],
    }


class CampaignState:
    """The files of one campaign (`directory`) over one keyframes file; `fingerprint` holds
    the settings a checkpoint must have been written with (al, training, model, strategy)."""

    def __init__(self, directory: str | Path, keyframes: str, fingerprint: dict[str, Any]) -> None:
        self.dir = Path(directory)
        self.keyframes = keyframes
        self.fingerprint = fingerprint
        self._digest: tuple[tuple[int, int], str] | None = None

    @property
    def plan_path(self) -> Path:
        return self.dir / "campaign.json"

    def plan(self, check_keyframes: bool = True) -> dict[str, Any]:
        if not self.plan_path.is_file():
            raise CampaignError(
                f"no campaign in {self.dir}: start one with `alnsfw campaign start`"
            )
        plan = json.loads(self.plan_path.read_text())
        if check_keyframes:
            digest = self.keyframes_digest()
            if digest != plan["keyframes_sha256"]:
                raise CampaignError(
                    f"{self.keyframes} is not the keyframes file this campaign started on "
                    f"({plan['keyframes']}; its rows are the items labelled so far): restore it, "
                    "or start a new campaign in another campaign.dir"
                )
        return plan

    def keyframes_digest(self) -> str:
        """sha256 of keyframes.h5, recomputed only when its size or mtime changed (a served
        campaign checks it every round; the file can be hundreds of MB)."""
        st = Path(self.keyframes).stat()
        key = (st.st_size, st.st_mtime_ns)
        if self._digest is None or self._digest[0] != key:
            with open(self.keyframes, "rb") as f:
                self._digest = (key, hashlib.file_digest(f, "sha256").hexdigest())
        return self._digest[1]

    def load(self, store: CheckpointStore, readonly: bool = False) -> Any:  # noqa: ANN401
        """The last checkpoint; a config change since is refused instead of starting over (the
        store would discard checkpoints written for other settings)."""
        states = sorted(store.directory.glob("state-*.json")) if store.directory.is_dir() else []
        if states:
            try:
                written = json.loads(states[-1].read_text()).get("fingerprint")
            except (OSError, ValueError):
                written = None  # a damaged file: the store discards it and falls back
            if written is not None and written != store.fingerprint:
                raise CampaignError(
                    f"the settings changed since the last round (al, training, model or "
                    f"campaign.strategy; {store.directory}): restore them, or start a new "
                    "campaign in another campaign.dir"
                )
        return store.load(readonly=readonly)

    def tasks(self) -> dict[str, Any]:
        path = self.dir / "tasks.json"
        if path.is_file():
            return json.loads(path.read_text())
        return {"sent_rows": [], "task_rows": {}}

    def save_tasks(self, tasks: dict[str, Any]) -> None:
        write_json(self.dir / "tasks.json", tasks)

    def store(self, plan: dict[str, Any]) -> CheckpointStore:
        blob = json.dumps(
            {
                "plan": {k: plan[k] for k in ("id", "audit", "val", "pool", "initial")},
                **self.fingerprint,
            },
            sort_keys=True,
            default=str,
        )
        return CheckpointStore(self.dir / "checkpoint", hashlib.sha256(blob.encode()).hexdigest())

    @contextmanager
    def locked(self, wait: float = 0.0) -> Iterator[None]:
        """One command at a time per campaign, readers included (`status` and `export` read
        the checkpoint a round may be writing). Waits up to `wait` seconds (a served campaign
        holds the lock only during a round), then fails saying why."""
        self.dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait
        with open(self.dir / ".lock", "w") as handle:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as err:
                    if time.monotonic() >= deadline:
                        raise CampaignError(
                            f"another alnsfw campaign command is running on {self.dir}; wait "
                            "for it (a round takes seconds) and run this again"
                        ) from err
                    time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
