"""A labelling campaign: the simulation's loop (alnsfw.al.loop) with people as the annotator.

`start` draws, by video, a held-out **audit set** (the accuracy estimate with its 95% Wilson
interval; never trained on) and a **validation set** (early stopping, and the stop set of the
stopping rules), then a random **initial batch** (no labels to stratify by), and sends all three
for labelling, audit first (lowest `al_rank`). Each `round` then

1. pulls the labels (Label Studio or its export file) and appends what changed to the label log;
2. trains (warm start) on the labelled pool items: `loop.train_and_test`, the simulation's code;
3. evaluates on the labelled audit items (accuracy, Wilson interval) and the stopping rules;
4. scores the candidates with the configured strategy (`loop.propose_query`; unlabelled items
   already sent, pending or skipped, are never candidates) and pushes the next batch.

State lives in `campaign.dir`: campaign.json (the draws), labels.jsonl (the label log), tasks.json
(task ids and rows sent), checkpoint/ (alnsfw.al.checkpoint: the loop state and the learner after
each round) and rounds.csv. A round is safe to kill or repeat: the log only gains what differs from
it, the checkpoint is committed before the push, and a push skips rows the server already has.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alnsfw.al.checkpoint import CheckpointStore
from alnsfw.al.loop import (
    CYCLE_COLUMNS,
    LoopModel,
    LoopSettings,
    Split,
    _RunState,
    check_model_for,
    propose_query,
    train_and_test,
)
from alnsfw.al.pool import PoolState, Query
from alnsfw.al.seeding import RunSeeds, derive_seed, seed_python_numpy
from alnsfw.al.stopping import (
    CycleRecord,
    StoppingSettings,
    Verdict,
    evaluate_rules,
    wilson_interval,
)
from alnsfw.al.strategies import get_strategy
from alnsfw.campaign.client import ClientError, FileClient, LabelClient
from alnsfw.campaign.labels import (
    LabelInputError,
    LabelLog,
    Pull,
    Resolved,
    append_problems,
    parse_tasks,
    problems_summary,
    requeue_overlaps,
    resolve,
)
from alnsfw.campaign.tasks import KeyframeIndex, build_task, relative_source, write_task_images
from alnsfw.io import write_csv, write_json
from alnsfw.video_eval import VideoSettings

log = logging.getLogger(__name__)

LearnerFactory = Callable[[dict[str, Any], str, str | None, str | None, int], LoopModel]
ROUND_COLUMNS = [
    "round",
    "cycle",
    "n_labelled",
    "labelled_share",
    "audit_labelled",
    "audit_accuracy",
    "audit_ci_low",
    "audit_ci_high",
    "agreement",
    "ties",
    "skipped",
    "open_unlabelled",
    "batch_size",
    "stop_suggested",
    "round_seconds",
]


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


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of k correct in n (alnsfw.al.stopping's, i.e. scipy's binomtest),
    (nan, nan) without data."""
    if n == 0:
        return float("nan"), float("nan")
    return wilson_interval(int(k), int(n))


@dataclass
class RoundReport:
    """Where the campaign stands, as `alnsfw campaign round` / `status` print it."""

    round: int
    trained: bool
    n_labelled: int
    n_pool: int
    audit_labelled: int
    audit_size: int
    audit_accuracy: float | None
    audit_ci: tuple[float, float] | None
    agreement: float | None
    ties: int
    skipped: int
    open_unlabelled: int
    open_size: int
    batch_pushed: int
    new_events: int
    verdicts: list[Any] = field(default_factory=list)
    stopping_note: str | None = None
    message: str = ""
    status_only: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # labels.problems_summary of the pull

    def text(self) -> str:
        """The lines a person reads after a round."""
        share = 100.0 * self.n_labelled / self.n_pool if self.n_pool else 0.0
        head = (
            f"{'trained' if self.trained else 'not trained'}; "
            f"{self.new_events} label event(s) pulled"
        )
        if self.status_only:
            head = "status from the campaign's files (no pull, no training)"
        lines = [
            f"round {self.round}: {head}",
            f"  labelled: {self.n_labelled} of {self.n_pool} pool keyframes ({share:.1f}%)",
        ]
        if self.audit_accuracy is not None and self.audit_ci is not None:
            lo, hi = self.audit_ci
            lines.append(
                f"  audit accuracy: {self.audit_accuracy:.3f} (95% Wilson CI {lo:.3f}-{hi:.3f}) "
                f"on {self.audit_labelled} of {self.audit_size} audit keyframes"
            )
        else:
            lines.append(
                f"  audit accuracy: none yet ({self.audit_labelled} of {self.audit_size} audit "
                "keyframes labelled)"
            )
        agree = "n/a" if self.agreement is None else f"{100 * self.agreement:.0f}%"
        lines.append(
            f"  annotators: agreement {agree} on multiply-labelled items; {self.ties} tie(s) "
            f"left unlabelled; {self.skipped} skipped"
        )
        if self.verdicts:
            fired = [v for v in self.verdicts if v.fired]
            lines.append(
                "  stop suggestion: "
                + ("STOP (" + ", ".join(v.rule for v in fired) + ")" if fired else "go on")
            )
            lines.extend(
                f"    {v.rule}: {'fired at cycle ' + str(v.cycle) if v.fired else 'not fired'}"
                f" - {v.detail}"
                for v in self.verdicts
            )
        elif self.stopping_note:
            lines.append(f"  stop suggestion: {self.stopping_note}")
        lines.append(
            f"  open batch: {self.open_unlabelled} of {self.open_size} sent item(s) still "
            f"unlabelled; {self.batch_pushed} new task(s) sent this round"
        )
        lines.extend(f"  {line}" for line in self.problems)
        if self.seconds:
            lines.append("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        if self.message:
            lines.append(f"  {self.message}")
        return "\n".join(lines)


def stopping_verdicts(
    records: Sequence[dict[str, Any]], config: dict[str, Any]
) -> tuple[list[Verdict], str | None]:
    """alnsfw.al.stopping.evaluate_rules on the round records (STOPPING-API.md): the stop set is
    the validation set (held out, never queried nor trained on, as in the simulation), the
    uncertainty its mean 1 - max p, the audit the labelled audit items."""
    recs = [
        CycleRecord(
            cycle=int(r["cycle"]),
            n_labelled=int(r["n_labelled"]),
            labelled_share=float(r["labelled_share"]),
            stop_predictions=np.asarray(r["stop_predictions"], dtype=np.int64),
            pool_uncertainty=r["pool_uncertainty"],
            audit_accuracy=r["audit_accuracy"],
            audit_ci=None if r["audit_ci"] is None else (r["audit_ci"][0], r["audit_ci"][1]),
        )
        for r in records
    ]
    return evaluate_rules(recs, StoppingSettings.from_config(config)), None


class Campaign:
    """One campaign in `config["campaign"]["dir"]` over keyframes.h5 of a folder of videos."""

    def __init__(
        self,
        config: dict[str, Any],
        keyframes: str | Path,
        client: LabelClient | None = None,
        build: LearnerFactory | None = None,
    ) -> None:
        self.config = config
        self.cfg = config["campaign"]
        self.keyframes = str(keyframes)
        self.dir = Path(self.cfg["dir"])
        self.settings = LoopSettings.from_config(config)
        self.strategy = str(self.cfg["strategy"])
        self.spec = get_strategy(self.strategy)
        self.seeds = RunSeeds.for_run(int(self.cfg["seed"]), 0, self.strategy)
        self.client = client
        self.build = build
        self.log = LabelLog(self.dir / "labels.jsonl")
        self.pulled: Pull | None = None  # the round's pull (labels.Pull), None before one

    # ---------------------------------------------------------------- files
    @property
    def plan_path(self) -> Path:
        return self.dir / "campaign.json"

    def _plan(self, check_keyframes: bool = True) -> dict[str, Any]:
        if not self.plan_path.is_file():
            raise CampaignError(
                f"no campaign in {self.dir}: start one with `alnsfw campaign start`"
            )
        plan = json.loads(self.plan_path.read_text())
        if check_keyframes:
            with open(self.keyframes, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            if digest != plan["keyframes_sha256"]:
                raise CampaignError(
                    f"{self.keyframes} is not the keyframes file this campaign started on "
                    f"({plan['keyframes']}; its rows are the items labelled so far): restore it, "
                    "or start a new campaign in another campaign.dir"
                )
        return plan

    def _load(self, store: CheckpointStore) -> Any:  # noqa: ANN401
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
        return store.load()

    def _tasks(self) -> dict[str, Any]:
        path = self.dir / "tasks.json"
        if path.is_file():
            return json.loads(path.read_text())
        return {"sent_rows": [], "task_rows": {}}

    def _save_tasks(self, tasks: dict[str, Any]) -> None:
        write_json(self.dir / "tasks.json", tasks)

    def _store(self, plan: dict[str, Any]) -> CheckpointStore:
        blob = json.dumps(
            {
                "plan": {k: plan[k] for k in ("id", "audit", "val", "pool", "initial")},
                "al": self.config["al"],
                "training": self.config["training"],
                "model": self.config.get("model"),
                "strategy": self.strategy,
            },
            sort_keys=True,
            default=str,
        )
        return CheckpointStore(self.dir / "checkpoint", hashlib.sha256(blob.encode()).hexdigest())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One command at a time per campaign (a second one fails at once, saying why)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                raise CampaignError(
                    f"another alnsfw campaign command is running on {self.dir}; wait for it"
                ) from err
            yield

    # ---------------------------------------------------------------- start
    def start(
        self, initial_rows: Callable[[np.ndarray], Sequence[int]] | None = None
    ) -> RoundReport:
        """Draw audit, validation and initial sets, record them, send them for labelling.

        `initial_rows(pool)` replaces the random initial batch (the equivalence test gives the
        simulation's per-class initial set).
        """
        with self._locked():
            if self.plan_path.is_file():
                raise CampaignError(
                    f"a campaign already exists in {self.dir}: go on with `alnsfw campaign "
                    "round`, or choose another campaign.dir to start a new one"
                )
            index = KeyframeIndex.read(self.keyframes)
            videos = index.video_ids()
            n_rows = len(videos)
            seed = int(self.cfg["seed"])
            audit_n, val_n = int(self.cfg["audit_size"]), int(self.cfg["val_size"])
            init_n = int(self.cfg["initial_size"])
            if audit_n + val_n + init_n >= n_rows:
                raise CampaignError(
                    f"{self.keyframes} has {n_rows} keyframes: too few for campaign.audit_size "
                    f"{audit_n} + val_size {val_n} + initial_size {init_n} and a pool to query; "
                    "lower them"
                )
            rows = np.arange(n_rows, dtype=np.int64)
            audit = draw_by_video(
                rows, videos, audit_n, np.random.default_rng(derive_seed(seed, 0, "audit"))
            )
            rest = np.setdiff1d(rows, audit)
            val = draw_by_video(
                rest, videos, val_n, np.random.default_rng(derive_seed(seed, 0, "val"))
            )
            pool = np.setdiff1d(rest, val)
            if initial_rows is None:
                rng = np.random.default_rng(self.seeds.initial)
                initial = np.sort(rng.choice(pool, size=init_n, replace=False))
            else:
                initial = np.sort(np.asarray(initial_rows(pool), dtype=np.int64))
                if not np.isin(initial, pool).all():
                    raise CampaignError("initial rows must be rows of the campaign pool")
            with open(self.keyframes, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            plan = {
                "id": f"alnsfw-{digest[:8]}-s{seed}",
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "keyframes": self.keyframes,
                "keyframes_sha256": digest,
                "n_rows": n_rows,
                "strategy": self.strategy,
                "seed": seed,
                "audit": audit.tolist(),
                "val": val.tolist(),
                "pool": pool.tolist(),
                "initial": initial.tolist(),
                "project_id": None,
            }
            project = self._ensure_project()
            plan["project_id"] = project
            write_json(self.plan_path, plan)
            order = [(r, "audit") for r in audit] + [(r, "validation") for r in val]
            order += [(r, "initial") for r in initial]
            pushed = self._push(plan, 0, [(int(r), p, None) for r, p in order], None)
            return self._report(plan, 0, False, 0, pushed)

    def _ensure_project(self) -> int | None:
        ensure = getattr(self.client, "ensure_project", None)
        if ensure is None:
            return None
        return ensure(self._document_root())

    def _document_root(self) -> Path:
        root = self.cfg.get("labelstudio", {}).get("document_root")
        return Path(root) if root else Path(self.cfg["image_dir"]).resolve().parent

    # ---------------------------------------------------------------- push / pull
    def _push(
        self,
        plan: dict[str, Any],
        round_no: int,
        items: Sequence[tuple[int, str, float | None]],
        proba: dict[int, float] | None,
    ) -> int:
        """Send items (row, purpose, AL score) not sent before; records them. Returns how many."""
        tasks = self._tasks()
        already = set(tasks["sent_rows"])
        on_server = self.client.sent_rows() if self.client is not None else None
        if on_server:  # rows of this campaign's keyframes only (a hand-edited task is not)
            already |= {r for r in on_server if 0 <= r < int(plan["n_rows"])}
        todo = [(r, p, s) for r, p, s in items if r not in already]
        if todo:
            index = KeyframeIndex.read(self.keyframes)
            images = write_task_images([r for r, _, _ in todo], index, self.cfg["image_dir"])
            rank = {r: k for k, (r, _, _) in enumerate(items)}
            payload = [
                build_task(
                    r,
                    images[r],
                    self._document_root(),
                    plan["id"],
                    round_no,
                    purpose,
                    rank[r],
                    score,
                    None if proba is None else proba.get(r),
                    scheme=getattr(self.client, "scheme", None),
                    video_path=relative_source(index.source[r], self.config["data"]["root"]),
                    hide_guess_below=float(self.cfg.get("hide_guess_below", 0.0)),
                )
                for r, purpose, score in todo
            ]
            client = self.client or FileClient(self.dir / "tasks")
            ids = client.push(payload, round_no)
            tasks["task_rows"].update({str(i): r for r, i in ids.items()})
        tasks["sent_rows"] = sorted(already | {r for r, _, _ in items})
        self._save_tasks(tasks)
        return len(todo)

    def _pull(self, plan: dict[str, Any]) -> int:
        """Pull once, set bad annotations aside (problems.jsonl), append what changed to the
        log, send ties back to the queue; returns the number of events. `self.pulled` keeps
        the `labels.Pull` (problems, foreign tasks, `missing`: known task ids the project no
        longer has; their rows are released here: no longer sent, so queryable again)."""
        if self.client is None:
            return 0
        raw, complete = self.client.pull()
        tasks = self._tasks()
        known = {int(k): int(v) for k, v in tasks["task_rows"].items()}
        pull = parse_tasks(
            raw,
            plan["id"],
            known,
            set(tasks["sent_rows"]),
            plan.get("project_id"),
            getattr(self.client, "scheme", None),
            self.client.users() if hasattr(self.client, "users") else {},
            complete,
        )
        self.pulled = pull
        pulled_tasks = set(pull.seen) | (set(known) if complete else set())
        events = self.log.diff(
            pull.annotations, pulled_tasks, pull.held, None if complete else pull.newest
        )
        if pull.seen.keys() - known.keys() or pull.missing:
            tasks["task_rows"].update({str(k): v for k, v in pull.seen.items()})
            gone = {known[t] for t in pull.missing}
            tasks["task_rows"] = {
                k: v for k, v in tasks["task_rows"].items() if int(k) not in pull.missing
            }
            tasks["sent_rows"] = sorted(set(tasks["sent_rows"]) - gone)
            self._save_tasks(tasks)
        self.log.append(events)
        if pull.problems:
            append_problems(self.dir / "problems.jsonl", pull.problems)
        requeue = getattr(self.client, "requeue", None)
        if requeue is not None:
            votes = self.log.votes()
            resolved = resolve(votes, self.log.ground_truth())
            task_of_row = {row: tid for tid, row in pull.seen.items()}
            extra = int(self.cfg.get("tie_extra_votes", 1))
            requeue(requeue_overlaps(resolved, votes, task_of_row, extra))
        return len(events)

    # ---------------------------------------------------------------- rounds
    def _labels(self, n_rows: int) -> tuple[np.ndarray, Resolved]:
        resolved = resolve(self.log.votes(), self.log.ground_truth())
        labels = np.full(n_rows, -1, dtype=np.int64)
        for row, label in resolved.labels.items():
            labels[row] = label
        return labels, resolved

    def _model(self, saved: Any) -> LoopModel:  # noqa: ANN401
        seed_python_numpy(self.seeds.learner)
        if self.build is None:
            from alnsfw.al.jobs import build_network_learner

            self.build = build_network_learner
        model = self.build(self.config, self.keyframes, None, None, self.seeds.learner)
        check_model_for(self.spec, model)
        if saved is not None:
            model.load(str(saved.learner_dir))
        return model

    def round(self) -> RoundReport:
        """Pull, train, evaluate, query, push: one round (see the module docstring)."""
        with self._locked():
            return self._round()

    def _round(self) -> RoundReport:
        t0 = time.perf_counter()
        plan = self._plan()
        store = self._store(plan)
        saved = self._load(store)
        state = saved.state["campaign"] if saved is not None else None
        if state is not None and state["open"] is not None:  # killed between commit and push
            self._push_open(plan, state)
        try:
            n_events = self._pull(plan)
        except (ClientError, LabelInputError) as err:
            raise CampaignError(str(err)) from err
        t_pull = time.perf_counter() - t0
        pool = np.asarray(plan["pool"], dtype=np.int64)
        labels, resolved = self._labels(int(plan["n_rows"]))
        audit = np.asarray(plan["audit"], dtype=np.int64)
        val = np.asarray(plan["val"], dtype=np.int64)
        audit_l, val_l = audit[labels[audit] >= 0], val[labels[val] >= 0]
        labelled = labels[pool] >= 0
        round_no = 1 if state is None else int(state["round"]) + 1
        signature = hashlib.sha256(json.dumps(sorted(resolved.labels.items())).encode()).hexdigest()
        why_not = None
        if state is not None and state["labels_sha256"] == signature:
            why_not = (
                f"no label changed since round {state['round']}: label the open batch in Label "
                "Studio (or give a newer export with --labels), then run the round again"
            )
        elif not labelled.any() or len(val_l) == 0 or len(audit_l) == 0:
            why_not = (
                f"not enough labels to train yet ({int(labelled.sum())} pool, {len(val_l)} "
                f"validation, {len(audit_l)} audit keyframes labelled; each needs at least 1): "
                "label the open batch, then run the round again"
            )
        if why_not is not None:
            report = self._report(plan, round_no - 1, False, n_events, 0, labels, resolved)
            report.message = why_not
            return report

        t_build = time.perf_counter()
        model = self._model(saved)
        t_build = time.perf_counter() - t_build
        rng = np.random.default_rng(self.seeds.strategy)
        cycles: list[dict[str, Any]] = []
        queries: list[Query] = []
        records: list[dict[str, Any]] = []
        predictions = None
        if saved is not None:
            run = _RunState.from_dict(saved.state["loop"])
            rng, cycles, queries, predictions = (
                run.rng,
                run.cycles,
                run.pool.queries,
                run.predictions,
            )
            records = state["records"]
        run = _RunState(PoolState(pool, labelled, queries), rng, cycles, predictions)
        split = Split(pool=pool, val=val_l, test=audit_l)
        t1 = time.perf_counter()
        row = train_and_test(model, run, split, labels, self.settings)
        t_train = time.perf_counter() - t1
        k = int(row["tp"] + row["tn"])
        ci = wilson(k, len(audit_l))
        stop_p = np.asarray(model.predict_proba(val), dtype=np.float64)
        records.append(
            {
                "cycle": int(row["cycle"]),
                "n_labelled": int(row["n_labelled"]),
                "labelled_share": float(labelled.mean()),
                "stop_predictions": stop_p.argmax(1).astype(int).tolist(),
                "pool_uncertainty": float(np.mean(1.0 - stop_p.max(1))),
                "audit_accuracy": float(row["accuracy"]),
                "audit_ci": list(ci),
            }
        )
        sent = np.asarray(self._tasks()["sent_rows"], dtype=np.int64)
        exclude = sent[labels[sent] < 0]
        t2 = time.perf_counter()
        items: list[tuple[int, str, float | None]] = []
        proba: dict[int, float] = {}
        candidates = np.setdiff1d(pool[~labelled], exclude)
        if len(candidates):
            videos = KeyframeIndex.read(self.keyframes).video_ids()
            proposal = propose_query(
                model, run, self.spec, self.settings, row["cycle"], videos, exclude
            )
            row["score_seconds"] = proposal.score_seconds
            row["select_seconds"] = proposal.select_seconds
            run.pool.queries.append(
                Query(
                    int(row["cycle"]),
                    proposal.rows.tolist(),
                    [float(s) for s in proposal.scores],
                )
            )
            items = [(int(r), "query", float(s)) for r, s in zip(proposal.rows, proposal.scores)]
            p = np.asarray(model.predict_proba(proposal.rows), dtype=np.float64)[:, 1]
            proba = {int(r): float(v) for r, v in zip(proposal.rows, p)}
        t_score = time.perf_counter() - t2
        run.cycles.append(row)
        new_state = {
            "round": round_no,
            "labels_sha256": signature,
            "records": records,
            "open": {"round": round_no, "items": items, "proba": proba} if items else None,
        }
        store.save(int(row["cycle"]), {"loop": run.to_dict(), "campaign": new_state}, model.save)
        t3 = time.perf_counter()
        pushed = self._push_open(plan, new_state)
        t_push = time.perf_counter() - t3
        verdicts, note = stopping_verdicts(records, self.config)
        report = self._report(plan, round_no, True, n_events, pushed, labels, resolved)
        report.verdicts, report.stopping_note = verdicts, note
        report.audit_ci = ci
        report.seconds = {
            "model load": t_build,
            "pull": t_pull,
            "train": t_train,
            "score": t_score,
            "push": t_push,
            "round": time.perf_counter() - t0,
        }
        if not items:
            report.message = "the whole pool is labelled: the campaign is complete; export it"
        self._write_tables(run, report)
        return report

    def _push_open(self, plan: dict[str, Any], state: dict[str, Any]) -> int:
        """Send the committed open batch (again: rows already sent are skipped)."""
        if state["open"] is None:
            return 0
        items = [(int(r), p, s) for r, p, s in state["open"]["items"]]
        proba = {int(k): float(v) for k, v in state["open"]["proba"].items()}
        try:
            return self._push(plan, int(state["open"]["round"]), items, proba)
        except ClientError as err:
            raise CampaignError(
                f"{err}. The round's training is saved: rerun `alnsfw campaign round` once the "
                "server answers; it sends the batch first"
            ) from err

    def _write_tables(self, run: _RunState, report: RoundReport) -> None:
        write_csv(self.dir / "cycles.csv", pd.DataFrame(run.cycles, columns=CYCLE_COLUMNS))
        path = self.dir / "rounds.csv"
        table = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=ROUND_COLUMNS)
        lo, hi = report.audit_ci or (float("nan"), float("nan"))
        line = {
            "round": report.round,
            "cycle": len(run.cycles) - 1,
            "n_labelled": report.n_labelled,
            "labelled_share": report.n_labelled / report.n_pool,
            "audit_labelled": report.audit_labelled,
            "audit_accuracy": report.audit_accuracy,
            "audit_ci_low": lo,
            "audit_ci_high": hi,
            "agreement": report.agreement,
            "ties": report.ties,
            "skipped": report.skipped,
            "open_unlabelled": report.open_unlabelled,
            "batch_size": report.batch_pushed,
            "stop_suggested": any(v.fired for v in report.verdicts),
            "round_seconds": report.seconds.get("round"),
        }
        table = table[table["round"] != report.round]
        table = pd.concat([table, pd.DataFrame([line])], ignore_index=True)
        write_csv(path, table[ROUND_COLUMNS])

    # ---------------------------------------------------------------- status
    def _report(
        self,
        plan: dict[str, Any],
        round_no: int,
        trained: bool,
        n_events: int,
        pushed: int,
        labels: np.ndarray | None = None,
        resolved: Resolved | None = None,
    ) -> RoundReport:
        if labels is None or resolved is None:
            labels, resolved = self._labels(int(plan["n_rows"]))
        pool = np.asarray(plan["pool"], dtype=np.int64)
        audit = np.asarray(plan["audit"], dtype=np.int64)
        sent = np.asarray(self._tasks()["sent_rows"], dtype=np.int64)
        open_rows = sent[labels[sent] < 0] if len(sent) else sent
        report = RoundReport(
            round=round_no,
            trained=trained,
            n_labelled=int((labels[pool] >= 0).sum()),
            n_pool=len(pool),
            audit_labelled=int((labels[audit] >= 0).sum()),
            audit_size=len(audit),
            audit_accuracy=None,
            audit_ci=None,
            agreement=resolved.agreement,
            ties=len(resolved.ties),
            skipped=len(resolved.skipped),
            open_unlabelled=len(open_rows),
            open_size=len(sent),
            batch_pushed=pushed,
            new_events=n_events,
        )
        if self.pulled is not None:
            report.problems = problems_summary(self.pulled.problems)
            if self.pulled.foreign:
                report.problems.append(
                    f"ignored: {self.pulled.foreign} task(s) of the project not made by this "
                    "campaign"
                )
            if self.pulled.missing:
                report.problems.append(
                    f"deleted in Label Studio: {len(self.pulled.missing)} task(s) "
                    f"{sorted(self.pulled.missing)[:10]}; their items are no longer sent"
                )
        saved = self._load(self._store(plan)) if (self.dir / "checkpoint").is_dir() else None
        if saved is not None:
            last = saved.state["campaign"]["records"][-1]
            report.audit_accuracy = last["audit_accuracy"]
            report.audit_ci = tuple(last["audit_ci"])
            if not trained:
                report.verdicts, report.stopping_note = stopping_verdicts(
                    saved.state["campaign"]["records"], self.config
                )
        return report

    def status(self) -> RoundReport:
        """Where the campaign stands, from its own files (no pull, no training)."""
        plan = self._plan()
        saved = self._load(self._store(plan))
        round_no = 0 if saved is None else int(saved.state["campaign"]["round"])
        report = self._report(plan, round_no, False, 0, 0)
        report.status_only = True
        return report

    # ---------------------------------------------------------------- export
    def export(self, out_dir: str | Path) -> dict[str, Any]:
        """The current model as today's .keras + JSON (alnsfw predict reads them)."""
        from alnsfw.predict.export import export_model

        plan = self._plan()
        saved = self._load(self._store(plan))
        if saved is None:
            raise CampaignError("no trained round yet: run `alnsfw campaign round` first")
        model = self._model(saved)
        round_no = int(saved.state["campaign"]["round"])
        out = Path(out_dir)
        work = self.dir / "export"
        work.mkdir(parents=True, exist_ok=True)
        weights = work / f"round-{round_no}.weights.h5"
        model.save_weights(str(weights))  # type: ignore[attr-defined]
        loop = saved.state["loop"]
        audit = np.asarray(plan["audit"], dtype=np.int64)
        labels, _ = self._labels(int(plan["n_rows"]))
        tested = audit[labels[audit] >= 0]
        preds = loop["predictions"]
        if len(preds["prob_porn"]) != len(tested):  # labels changed since: score again
            p = np.asarray(model.predict_proba(tested), dtype=np.float64)[:, 1]
            preds = {"prob_porn": p.tolist()}
        predictions = work / f"round-{round_no}-predictions.csv"
        write_csv(predictions, pd.DataFrame({"row": tested, "prob_porn": preds["prob_porn"]}))
        video = VideoSettings.from_config(self.config)
        aggregation, threshold = video.aggregation, video.threshold
        results = work / f"round-{round_no}-cycles.csv"
        last = dict(loop["cycles"][-1])
        last["video_aggregation"] = "topk_mean" if aggregation == "auto" else aggregation
        last["video_threshold"] = 0.5 if threshold == "auto" else float(threshold)
        write_csv(results, pd.DataFrame([last]))
        name = f"campaign-round{round_no}"
        outputs = {"model": str(out / f"{name}.keras"), "meta": str(out / f"{name}.json")}
        from alnsfw.model.settings import with_runtime

        meta = export_model(
            config=with_runtime(self.config, self.config),
            weights=str(weights),
            results=str(results),
            predictions=str(predictions),
            keyframes=self.keyframes,
            outputs=outputs,
            run={"fold": 0, "seed": int(plan["seed"]), "method": f"campaign:{self.strategy}"},
        )
        meta["video"]["chosen_on"] = (
            "no video labels in a campaign: video.aggregation/threshold from the config "
            "(auto -> topk_mean at 0.5)"
        )
        meta["campaign"] = {"id": plan["id"], "round": round_no, "dir": str(self.dir)}
        write_json(outputs["meta"], meta)
        return {"outputs": outputs, "meta": meta}
