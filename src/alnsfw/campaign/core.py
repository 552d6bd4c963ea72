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

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alnsfw.al.checkpoint import CheckpointStore
from alnsfw.al.cost import CostModel, keyframe_tasks
from alnsfw.al.loop import (
    CYCLE_COLUMNS,
    LoopModel,
    LoopSettings,
    RunState,
    Split,
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
)
from alnsfw.al.strategies import get_strategy
from alnsfw.campaign.client import ClientError, FileClient, LabelClient
from alnsfw.campaign.data import inputs_for
from alnsfw.campaign.labels import (
    LabelInputError,
    LabelLog,
    LabelScheme,
    Pull,
    Resolved,
    append_problems,
    parse_tasks,
    problems_summary,
    requeue_overlaps,
    resolve,
)
from alnsfw.campaign.state import (  # noqa: F401 - the draws and errors, re-exported
    CampaignError,
    CampaignState,
    class_counts,
    draw_by_video,
    draw_whole_videos,
    interleave,
    porn_class_stats,
    wilson,
)
from alnsfw.campaign.tasks import (
    KeyframeIndex,
    build_task,
    build_unit_task,
    relative_source,
    write_task_images,
)
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
    "audit_precision",
    "audit_recall",
    "audit_prevalence",
    "agreement",
    "ties",
    "skipped",
    "open_unlabelled",
    "batch_size",
    "stop_suggested",
    "round_seconds",
]


# Label Studio keeps the predictions of this many past rounds (see Campaign._send_queue).
VERSIONS_KEPT = 10


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
    # porn = positive, on the labelled audit items: (value, (low, high)) or None
    precision: tuple[float, tuple[float, float]] | None = None
    recall: tuple[float, tuple[float, float]] | None = None
    prevalence: tuple[float, tuple[float, float]] | None = None
    audit_unit: str = "video"
    problems: list[str] = field(default_factory=list)  # labels.problems_summary of the pull
    # annotator -> (decisions: annotations given, skips included; images seen: tasks opened)
    people: dict[str, tuple[int, int]] = field(default_factory=dict)
    over_cap: dict[str, int] = field(default_factory=dict)  # annotator -> images seen today

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
            held = "held-out videos" if self.audit_unit == "video" else "keyframes (not by video)"
            lines.append(
                f"  audit accuracy: {self.audit_accuracy:.3f} (95% Wilson CI {lo:.3f}-{hi:.3f}) "
                f"on {self.audit_labelled} of {self.audit_size} audit keyframes ({held})"
            )
            parts = [
                f"{name} {v:.3f} ({a:.3f}-{b:.3f})"
                for name, got in (
                    ("precision", self.precision),
                    ("recall", self.recall),
                    ("prevalence", self.prevalence),
                )
                if got is not None
                for v, (a, b) in [got]
            ]
            if parts:
                lines.append("  audit, porn class (95% Wilson CI): " + ", ".join(parts))
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
        if self.people:
            lines.append(
                "  people (decisions / keyframe images seen): "
                + "; ".join(f"{who} {d} / {i}" for who, (d, i) in sorted(self.people.items()))
            )
        for who, n in sorted(self.over_cap.items()):
            lines.append(
                f"  exposure cap: {who} has seen {n} images today (campaign.exposure_cap_per_day):"
                " ask them to stop for today; Label Studio's Community edition cannot withhold "
                "tasks from one person"
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
    uncertainty its mean 1 - max p, the audit the labelled audit items.

    No suggestion at all until the pool and the audit each hold campaign.stop_min_per_class
    labels of both classes: a model that has seen one class predicts one class with certainty,
    and every rule (stable predictions, low uncertainty, a flat audit) then fires on nothing.
    """
    need = int(config["campaign"]["stop_min_per_class"])
    counts = records[-1].get("class_counts") if records else None
    if counts is not None:
        short = [
            f"{where} has {counts[where][1]} porn / {counts[where][0]} non-porn"
            for where in ("pool", "audit")
            if min(counts[where]) < need
        ]
        if short:
            return [], (
                f"none yet: needs {need} labels of each class in the pool and in the audit "
                f"(campaign.stop_min_per_class); the {'; the '.join(short)}"
            )
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


def unit_groups(rows: np.ndarray, units: np.ndarray, cap: int) -> list[list[int]]:
    """The tasks of a unit query: `rows` come grouped by unit (alnsfw.al.units.take_units);
    each unit's rows, in row (frame) order, split into tasks of at most `cap` keyframes (a
    long video is several tasks, each one unit's keyframes only)."""
    if cap < 1:
        raise CampaignError(f"campaign.unit_max_keyframes must be >= 1, got {cap}")
    out: list[list[int]] = []
    order: list[int] = []
    members: dict[int, list[int]] = {}
    for row, unit in zip(np.asarray(rows).tolist(), np.asarray(units).tolist()):
        if unit not in members:
            order.append(unit)
            members[unit] = []
        members[unit].append(int(row))
    for unit in order:
        got = sorted(members[unit])
        n_tasks = -(-len(got) // cap)
        size = -(-len(got) // n_tasks)  # even split: 13 keyframes at cap 12 -> 7 + 6, not 12 + 1
        out += [got[k : k + size] for k in range(0, len(got), size)]
    return out


def unit_prediction_items(queue: dict[Any, list[Any]], tasks: dict[str, Any]) -> list[Any]:
    """A unit campaign's predictions: one per open task, a guess per keyframe (None where the
    queue has none: labelled, or hidden by hide_guess_below) and the task's lowest queue score
    among its open keyframes (Label Studio serves the lowest first)."""
    from alnsfw.campaign.client import PredictionItem

    units = {int(t): [int(r) for r in rows] for t, rows in tasks.get("task_units", {}).items()}
    rows_of = {int(t): units.get(int(t), [int(r)]) for t, r in tasks["task_rows"].items()}
    queue = {int(r): v for r, v in queue.items()}
    items = []
    for tid, rows in sorted(rows_of.items()):
        scores = [float(queue[r][1]) for r in rows if r in queue]
        if not scores:
            continue
        labels = tuple(queue[r][0] if r in queue else None for r in rows)
        items.append(PredictionItem(tid, None, min(scores), labels))
    items.sort(key=lambda item: item.score)
    return items


class Campaign:
    """One campaign in `config["campaign"]["dir"]` over keyframes.h5 of a folder of videos."""

    def __init__(
        self,
        config: dict[str, Any],
        keyframes: str | Path | None = None,
        client: LabelClient | None = None,
        build: LearnerFactory | None = None,
    ) -> None:
        self.config = config
        self.cfg = config["campaign"]
        inputs = inputs_for(config, None if keyframes is None else str(keyframes))
        self.inputs = inputs
        self.keyframes = inputs.keyframes
        self.dir = Path(self.cfg["dir"])
        self.settings = LoopSettings.from_config(config)
        # al.unit shot / video: a query task shows a unit's keyframes (at most
        # campaign.unit_max_keyframes per task; tasks.build_unit_task); keyframe: one per task
        self.unit = self.settings.unit != "keyframe"
        self.unit_cap = int(self.cfg.get("unit_max_keyframes", 12))
        self.cost_model = CostModel.from_config(config["al"].get("cost"))
        self.strategy = str(self.cfg["strategy"])
        self.spec = get_strategy(self.strategy)
        self.seeds = RunSeeds.for_run(int(self.cfg["seed"]), 0, self.strategy)
        self.client = client
        self.build = build
        self.log = LabelLog(self.dir / "labels.jsonl")
        # Kept between rounds by a long-running process (alnsfw campaign serve): the learner
        # with its loaded feature cache, and the cycle it holds; a CLI round loads them afresh.
        self._model_obj: LoopModel | None = None
        self._model_cycle: int | None = None
        self.state = CampaignState(
            self.dir,
            self.keyframes,
            {
                "al": config["al"],
                "training": config["training"],
                "model": config.get("model"),
                "strategy": self.strategy,
            },
        )
        self.pulled: Pull | None = None  # the round's pull (labels.Pull), None before one
        self._latest_cache: tuple[Any, Any] | None = None  # (newest state file, checkpoint)

    @property
    def scheme(self) -> LabelScheme:
        """How the project's choices map to classes: the client's (read from the project), else
        the config's (a unit campaign's controls are label_0, label_1, ...)."""
        got = getattr(self.client, "scheme", None)
        if got is not None:
            return got
        return LabelScheme.from_config(self.cfg.get("labelstudio"), self.unit)

    # ---------------------------------------------------------------- files (state.py)
    @property
    def plan_path(self) -> Path:
        return self.state.plan_path

    def plan(self, check_keyframes: bool = False) -> dict[str, Any]:
        """The campaign's plan (campaign.json: draws, project id, whether `start` completed)."""
        return self.state.plan(check_keyframes)

    def _plan(self, check_keyframes: bool = True) -> dict[str, Any]:
        return self.state.plan(check_keyframes)

    def _keyframes_digest(self) -> str:
        return self.state.keyframes_digest()

    def _load(self, store: CheckpointStore, readonly: bool = False) -> Any:  # noqa: ANN401
        return self.state.load(store, readonly)

    def _tasks(self) -> dict[str, Any]:
        return self.state.tasks()

    def _save_tasks(self, tasks: dict[str, Any]) -> None:
        self.state.save_tasks(tasks)

    def _store(self, plan: dict[str, Any]) -> CheckpointStore:
        return self.state.store(plan)

    def _locked(self, wait: float = 0.0) -> AbstractContextManager[None]:
        return self.state.locked(wait)

    # ---------------------------------------------------------------- start
    def start(
        self,
        initial_rows: Callable[[np.ndarray], Sequence[int]] | None = None,
        val_rows: Callable[[np.ndarray], Sequence[int]] | None = None,
    ) -> RoundReport:
        """Draw audit, validation and initial sets, record them, send them for labelling.

        The model is built first, so a bad model setting fails here, before anyone labels.
        Safe to rerun until it has completed: the draws are written once (same seed, same
        draws), the project is made once, and the push skips what the server already has.
        `initial_rows(pool)` replaces the random initial batch and `val_rows(rest)` the drawn
        validation set (the equivalence checks give the simulation's own sets).
        """
        with self._locked():
            if self.plan_path.is_file():
                plan = self._plan()
                if plan.get("started_complete"):
                    raise CampaignError(
                        f"a campaign already exists in {self.dir}: go on with `alnsfw campaign "
                        "round` (or serve), or choose another campaign.dir to start a new one"
                    )
            else:
                self._model(None)  # refuses bad model settings before any task is sent
                plan = self._draw(initial_rows, val_rows)
            if plan.get("project_id") is None:
                plan["project_id"] = self._ensure_project()
                write_json(self.plan_path, plan)
            try:
                pushed = self._push(plan, 0, self._start_items(plan), None)
            except ClientError as err:
                raise CampaignError(
                    f"{err}. The draws are saved: rerun `alnsfw campaign start` once the server "
                    "answers; it sends what is missing"
                ) from err
            plan["started_complete"] = True
            write_json(self.plan_path, plan)
            order = [r for r, _, _ in self._start_items(plan)]
            self._send_queue(
                {r: [None, (k + 1) / (len(order) + 1)] for k, r in enumerate(order)}, 0
            )
            return self._report(plan, 0, False, 0, pushed)

    def _draw(
        self,
        initial_rows: Callable[[np.ndarray], Sequence[int]] | None,
        val_rows: Callable[[np.ndarray], Sequence[int]] | None = None,
    ) -> dict[str, Any]:
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
        audit_rng = np.random.default_rng(derive_seed(seed, 0, "audit"))
        listed = self.cfg.get("audit_videos")
        if listed:
            audit = self._listed_audit(str(listed), index)
        elif self.cfg["audit_unit"] == "video":
            audit = draw_whole_videos(rows, videos, audit_n, audit_rng)
        else:
            audit = draw_by_video(rows, videos, audit_n, audit_rng)
        rest = np.setdiff1d(rows, audit)
        if len(rest) <= val_n + init_n:
            raise CampaignError(
                f"the audit took {len(audit)} of {n_rows} keyframes: too few left for val_size "
                f"{val_n} + initial_size {init_n} and a pool; lower campaign.audit_size"
            )
        if val_rows is None:
            val_rng = np.random.default_rng(derive_seed(seed, 0, "val"))
            val = draw_by_video(rest, videos, val_n, val_rng)
        else:
            val = np.sort(np.asarray(val_rows(rest), dtype=np.int64))
            if not np.isin(val, rest).all():
                raise CampaignError("validation rows must be rows outside the audit")
        pool = np.setdiff1d(rest, val)
        if initial_rows is None:
            rng = np.random.default_rng(self.seeds.initial)
            initial = np.sort(rng.choice(pool, size=init_n, replace=False))
        else:
            initial = np.sort(np.asarray(initial_rows(pool), dtype=np.int64))
            if not np.isin(initial, pool).all():
                raise CampaignError("initial rows must be rows of the campaign pool")
        digest = self._keyframes_digest()
        plan = {
            "id": f"alnsfw-{digest[:8]}-s{seed}",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "keyframes": self.keyframes,
            "keyframes_sha256": digest,
            "n_rows": n_rows,
            "strategy": self.strategy,
            "seed": seed,
            "audit_unit": "listed" if listed else str(self.cfg["audit_unit"]),
            "audit": audit.tolist(),
            "val": val.tolist(),
            "pool": pool.tolist(),
            "initial": initial.tolist(),
            "project_id": None,
            "started_complete": False,
        }
        write_json(self.plan_path, plan)
        return plan

    def _listed_audit(self, listed: str, index: KeyframeIndex) -> np.ndarray:
        """Rows of the videos named in campaign.audit_videos (one per line: the path relative to
        data.root, with or without extension, or the file name's stem; NPDI's fold lists work)."""
        path = Path(listed)
        if not path.is_file():
            raise CampaignError(f"campaign.audit_videos = {listed} is not a file")
        names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        rel = np.asarray([relative_source(src, self.inputs.root) for src in index.source], object)
        keys = {}
        for r in rel:
            p = Path(str(r))
            for key in (str(p), str(p.with_suffix("")), p.stem):
                keys.setdefault(key, set()).add(str(r))
        chosen: set[str] = set()
        unknown = []
        for name in names:
            hit = keys.get(name) or keys.get(Path(name).stem)
            if not hit:
                unknown.append(name)
            else:
                chosen |= hit
        if unknown:
            raise CampaignError(
                f"campaign.audit_videos ({listed}) names {len(unknown)} video(s) not in "
                f"data.root (e.g. {unknown[0]}): fix the list or data.root"
            )
        return np.flatnonzero(np.isin(rel, sorted(chosen))).astype(np.int64)

    def _start_items(self, plan: dict[str, Any]) -> list[tuple[int, str, float | None]]:
        """Audit (random order: a partly labelled audit is then a random sample), validation and
        initial items. First a kick-off block of campaign.min_pool_labels initial items with
        half as many validation and audit ones (about a dozen labels train the first round),
        then the rest interleaved in proportion."""
        rng = np.random.default_rng(derive_seed(int(plan["seed"]), 0, "send-order"))
        audit = [(int(r), "audit", None) for r in rng.permutation(plan["audit"])]
        val = [(int(r), "validation", None) for r in rng.permutation(plan["val"])]
        init = [(int(r), "initial", None) for r in rng.permutation(plan["initial"])]
        k = int(self.cfg["min_pool_labels"])
        h = max(1, (k + 1) // 2)
        head = interleave([init[:k], val[:h], audit[:h]])
        return head + interleave([init[k:], val[h:], audit[h:]])

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
        groups: Sequence[Sequence[int]] = (),
    ) -> int:
        """Send items (row, purpose, AL score) not sent before; records them. Returns how many
        tasks went out. In a unit campaign the rows of each of `groups` go out as one task
        (one unit, capped), every other item as a one-image unit task."""
        tasks = self._tasks()
        already = set(tasks["sent_rows"])
        on_server = self.client.sent_rows() if self.client is not None else None
        if on_server is not None:  # the server's view: a deleted task is sent again when asked
            already = {r for r in on_server if 0 <= r < int(plan["n_rows"])}
        todo = [(r, p, s) for r, p, s in items if r not in already]
        if todo:
            index = KeyframeIndex.read(self.keyframes)
            images = write_task_images([r for r, _, _ in todo], index, self.cfg["image_dir"])
            rank = {r: k for k, (r, _, _) in enumerate(items)}
            if self.unit:
                payload = self._unit_payload(plan, round_no, todo, groups, images, index, proba)
                payload = [t for t, _ in sorted(payload, key=lambda tr: rank[tr[1][0]])]
            else:
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
                        None if proba is None or self._bulk else proba.get(r),
                        scheme=self.scheme,
                        video_path=relative_source(index.source[r], self.inputs.root),
                        hide_guess_below=float(self.cfg.get("hide_guess_below", 0.0)),
                    )
                    for r, purpose, score in todo
                ]
            client = self.client or FileClient(self.dir / "tasks")
            ids = client.push(payload, round_no)
            tasks["task_rows"].update({str(i): r for r, i in ids.items()})
            units = {
                int(t["data"]["alnsfw_row"]): t["data"]["alnsfw_rows"]
                for t in payload
                if len(t["data"].get("alnsfw_rows", ())) > 1
            }
            tasks.setdefault("task_units", {}).update(
                {str(i): units[r] for r, i in ids.items() if r in units}
            )
            if not tasks["task_units"]:
                del tasks["task_units"]
        else:
            payload = []
        tasks["sent_rows"] = sorted(set(tasks["sent_rows"]) | {r for r, _, _ in items})
        tasks["released"] = sorted(set(tasks.get("released", [])) - {r for r, _, _ in items})
        self._save_tasks(tasks)
        return len(payload)

    def _unit_payload(
        self,
        plan: dict[str, Any],
        round_no: int,
        todo: Sequence[tuple[int, str, float | None]],
        groups: Sequence[Sequence[int]],
        images: dict[int, dict[str, Any]],
        index: KeyframeIndex,
        proba: dict[int, float] | None,
    ) -> list[tuple[dict[str, Any], list[int]]]:
        """(task, its rows) of a unit campaign's `todo`: each group's rows still to send as one
        task, every other row as a one-image task; in the order of `todo`."""
        item = {r: (purpose, score) for r, purpose, score in todo}
        group_of = {int(r): k for k, g in enumerate(groups) for r in g}
        batches: dict[Any, list[int]] = {}
        for r, _, _ in todo:
            batches.setdefault(("unit", group_of[r]) if r in group_of else ("row", r), []).append(r)
        scheme = self.scheme
        if not scheme.repeated:
            raise CampaignError(
                f"al.unit: {self.settings.unit} needs the unit labelling config (one Choices per "
                f"keyframe in a <Repeater>, docs/campaign.md); the project's control is "
                f"'{scheme.from_name}': let `campaign start` make the project, or set al.unit: "
                "keyframe"
            )
        out = []
        for rows in batches.values():
            purpose, score = item[rows[0]]
            probs = None if proba is None or self._bulk else [proba.get(r) for r in rows]
            try:
                task = build_unit_task(
                    rows,
                    images,
                    self._document_root(),
                    plan["id"],
                    round_no,
                    purpose,
                    0,
                    score,
                    probs,
                    scheme=scheme,
                    video_path=relative_source(index.source[rows[0]], self.inputs.root),
                    hide_guess_below=float(self.cfg.get("hide_guess_below", 0.0)),
                )
            except LabelInputError as err:
                raise CampaignError(f"al.unit: {self.settings.unit}: {err}") from err
            out.append((task, rows))
        first = {r: k for k, (r, _, _) in enumerate(todo)}
        for task, rows in out:
            task["data"]["al_rank"] = first[rows[0]]
        return out

    @property
    def _bulk(self) -> bool:
        """Whether the client places predictions in bulk (Label Studio): tasks then go out
        without one, and every open task gets this round's in one call."""
        return hasattr(self.client, "replace_predictions")

    def _queue(
        self, plan: dict[str, Any], model: LoopModel, labels: np.ndarray, new_rows: list[int]
    ) -> dict[int, list[Any]]:
        """row -> [guess 0/1 or None, queue score] of every open item after this round.

        Label Studio serves the lowest score first: open pool items (this round's batch and
        earlier leftovers alike) in order of the model's current confidence, least sure first,
        interleaved with the open audit and validation items, which carry no guess (a guess
        there would pull the audit toward the model)."""
        sent = set(self._tasks()["sent_rows"]) | set(new_rows)
        open_rows = np.asarray(sorted(r for r in sent if labels[r] < 0), dtype=np.int64)
        if not len(open_rows):
            return {}
        p = np.asarray(model.predict_proba(open_rows), dtype=np.float64)[:, 1]
        conf = np.maximum(p, 1.0 - p)
        held_out = set(plan["audit"]) | set(plan["val"])
        pool_idx = [i for i in np.argsort(conf, kind="stable") if open_rows[i] not in held_out]
        # in their send order (every audit and validation row is a start item, once)
        held = [
            r
            for r, _, _ in self._start_items(plan)
            if r in held_out and labels[r] < 0 and r in sent
        ]
        hide = float(self.cfg.get("hide_guess_below", 0.0))
        guess = {
            int(open_rows[i]): (int(p[i] >= 0.5) if conf[i] >= hide else None) for i in pool_idx
        }
        merged = interleave([[int(open_rows[i]) for i in pool_idx], held])
        return {r: [guess.get(r), (k + 1) / (len(merged) + 1)] for k, r in enumerate(merged)}

    def _send_queue(self, queue: dict[Any, list[Any]], round_no: int) -> None:
        """Every open task gets this round's prediction (guess and queue score) and the project
        this round's model_version (Label Studio shows and ranks by that version only); the
        file route has the predictions in its task files."""
        if not self._bulk:
            self._after_push(round_no)
            return
        from alnsfw.campaign.client import PredictionItem

        tasks = self._tasks()
        task_of = {int(row): int(tid) for tid, row in tasks["task_rows"].items()}
        if self.unit:
            items = unit_prediction_items(queue, tasks)
        else:
            items = [
                PredictionItem(task_of[int(r)], g, float(score))
                for r, (g, score) in queue.items()
                if int(r) in task_of
            ]
        # The version of VERSIONS_KEPT rounds ago is deleted, not the last one: a task a person
        # has open carries its prediction's id, and Label Studio refuses the Submit (400
        # "parent_prediction: object does not exist") once that prediction is gone.
        old = round_no - VERSIONS_KEPT
        previous = f"round-{old}" if old >= 0 else None
        self.client.replace_predictions(items, f"round-{round_no}", previous)  # type: ignore[union-attr]

    def _after_push(self, round_no: int) -> None:
        """Keep the project's model_version equal to this round's predictions' (Label Studio
        shows, and its uncertainty sampling ranks by, only predictions of the project's
        version); a client without the call (the file route) has nothing to keep."""
        setter = getattr(self.client, "set_model_version", None)
        if setter is not None:
            setter(f"round-{round_no}")

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
            self.scheme,
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
            units = tasks.get("task_units", {})
            gone = {r for t in pull.missing for r in units.get(str(t), [known[t]])}
            tasks["task_rows"] = {
                k: v for k, v in tasks["task_rows"].items() if int(k) not in pull.missing
            }
            if units:
                tasks["task_units"] = {k: v for k, v in units.items() if int(k) not in pull.missing}
            tasks["sent_rows"] = sorted(set(tasks["sent_rows"]) - gone)
            # audit and validation items of deleted tasks are sent again at the next push
            tasks["released"] = sorted(set(tasks.get("released", [])) | gone)
            self._save_tasks(tasks)
        self.log.append(events)
        if pull.problems:
            append_problems(self.dir / "problems.jsonl", pull.problems)
        requeue = getattr(self.client, "requeue", None)
        if requeue is not None:
            votes = self.log.votes()
            resolved = resolve(votes, self.log.ground_truth())
            task_of_row = {row: tid for tid, row in pull.seen.items()}
            task_of_row |= {row: tid for tid, rows in pull.units.items() for row in rows}
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
        cycle = None if saved is None else int(saved.state["loop"]["cycles"][-1]["cycle"])
        if self._model_obj is not None and self._model_cycle == cycle:
            return self._model_obj  # a served campaign: the learner of the last round, in memory
        try:
            model = self.build(
                self.config,
                self.keyframes,
                self.inputs.features,
                self.inputs.bank,
                self.seeds.learner,
            )
        except (ValueError, KeyError, OSError) as err:
            raise CampaignError(f"the model cannot be built with these settings: {err}") from err
        check_model_for(self.spec, model)
        if saved is not None:
            model.load(str(saved.learner_dir))
        self._model_obj, self._model_cycle = model, cycle
        return model

    def round(self) -> RoundReport:
        """Pull, train, evaluate, query, push: one round (see the module docstring)."""
        with self._locked():
            return self._round()

    def step(self, retrain_every: int, low_water: int) -> RoundReport | None:
        """What a served campaign does when woken: pull; run a round when `retrain_every` new
        labels arrived since the last one, or when fewer than `low_water` sent items are still
        open (people would run out) and anything is new; else nothing (None).

        Under the same lock as the CLI commands, held only for this step."""
        with self._locked(wait=60.0):
            plan = self._plan()
            saved = self._latest()
            state = saved.state["campaign"] if saved is not None else None
            try:
                self._pull(plan)
            except (ClientError, LabelInputError) as err:
                raise CampaignError(str(err)) from err
            labels, resolved = self._labels(int(plan["n_rows"]))
            n_now = len(resolved.labels)
            n_then = 0 if state is None else int(state.get("n_resolved", 0))
            sent = np.asarray(self._tasks()["sent_rows"], dtype=np.int64)
            open_n = int(np.sum(labels[sent] < 0)) if len(sent) else 0
            new = n_now - n_then
            if new <= 0 or (new < retrain_every and open_n >= low_water):
                return None
            return self._round(pulled=True)

    def _latest(self) -> Any:  # noqa: ANN401
        """The newest checkpoint, read again only when a round (this process's or a CLI's)
        wrote a newer one: /predict and /setup are called per task, and reading a checkpoint
        verifies every file's checksum."""
        store = self._store(self._plan(check_keyframes=False))
        states = sorted(store.directory.glob("state-*.json")) if store.directory.is_dir() else []
        key = (states[-1].name, states[-1].stat().st_mtime_ns) if states else None
        if self._latest_cache is None or self._latest_cache[0] != key:
            self._latest_cache = (key, self._load(store, readonly=True))
        return self._latest_cache[1]

    def warm(self) -> None:
        """Load the last round's learner (and its feature cache) now, so the first round or
        /predict of a served campaign does not pay for it while a person waits."""
        self._model(self._latest())

    def model_version(self) -> str:
        """The version of the current predictions (the last trained round's)."""
        saved = self._latest()
        return f"round-{0 if saved is None else int(saved.state['campaign']['round'])}"

    def predictions(self, rows: Sequence[int]) -> tuple[np.ndarray | None, str]:
        """P(porn) of `rows` from the last trained round's model (None before the first), and
        that model's version; a served campaign keeps the model in memory."""
        saved = self._latest()
        version = f"round-{0 if saved is None else int(saved.state['campaign']['round'])}"
        if saved is None or not len(rows):
            return None, version
        model = self._model(saved)
        p = np.asarray(model.predict_proba(np.asarray(rows, dtype=np.int64)), dtype=np.float64)
        return p[:, 1], version

    def _round(self, pulled: bool = False) -> RoundReport:
        t0 = time.perf_counter()
        plan = self._plan()
        store = self._store(plan)
        saved = self._load(store)
        state = saved.state["campaign"] if saved is not None else None
        pushed_round = int(self._tasks().get("pushed_round", 0))
        if state is not None and state["open"] is not None and pushed_round < state["round"]:
            self._push_open(plan, state)  # killed between commit and push
        try:
            n_events = 0 if pulled else self._pull(plan)
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
        elif (
            int(labelled.sum()) < int(self.cfg["min_pool_labels"])
            or len(val_l) == 0
            or len(audit_l) == 0
        ):
            why_not = (
                f"not enough labels to train yet ({int(labelled.sum())} pool, {len(val_l)} "
                f"validation, {len(audit_l)} audit keyframes labelled; the first round needs "
                f"{self.cfg['min_pool_labels']} pool labels (campaign.min_pool_labels) and one "
                "of each other): label the open batch, then run the round again"
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
            run = RunState.from_dict(saved.state["loop"])
            rng, cycles, queries, predictions = (
                run.rng,
                run.cycles,
                run.pool.queries,
                run.predictions,
            )
            records = state["records"]
        # human cost (alnsfw.al.cost): every pool label was one keyframe task, one decision and
        # one image under the cost model; what people really did is counted per annotator
        cost = keyframe_tasks(int(labelled.sum()))
        run = RunState(PoolState(pool, labelled, queries), rng, cycles, predictions, cost)
        split = Split(pool=pool, val=val_l, test=audit_l)
        t1 = time.perf_counter()
        row = train_and_test(model, run, split, labels, self.settings)
        t_train = time.perf_counter() - t1
        k = int(row["tp"] + row["tn"])
        ci = wilson(k, len(audit_l))
        audit_stats = porn_class_stats(row, labels[audit_l])
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
                "audit_stats": audit_stats,
                "class_counts": class_counts(labels, pool[labelled], audit_l),
            }
        )
        tasks_now = self._tasks()
        sent = np.asarray(tasks_now["sent_rows"], dtype=np.int64)
        exclude = sent[labels[sent] < 0]
        t2 = time.perf_counter()
        held_out = set(plan["audit"]) | set(plan["val"])
        resend = [
            (int(r), "audit" if r in set(plan["audit"]) else "validation", None)
            for r in tasks_now.get("released", [])
            if r in held_out
        ]
        items: list[tuple[int, str, float | None]] = list(resend)
        proba: dict[int, float] = {}
        groups: list[list[int]] = []
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
            items += [(int(r), "query", float(s)) for r, s in zip(proposal.rows, proposal.scores)]
            p = np.asarray(model.predict_proba(proposal.rows), dtype=np.float64)[:, 1]
            proba = {int(r): float(v) for r, v in zip(proposal.rows, p)}
            if proposal.units is not None:
                groups = unit_groups(proposal.rows, proposal.units, self.unit_cap)
        queue = self._queue(plan, model, labels, [r for r, _, _ in items])
        t_score = time.perf_counter() - t2
        run.cycles.append(row)
        new_state = {
            "n_resolved": len(resolved.labels),
            "audit_rows": audit_l.tolist(),
            "round": round_no,
            "labels_sha256": signature,
            "records": records,
            "open": {
                "round": round_no,
                "items": items,
                "proba": proba,
                "queue": queue,
                **({"groups": groups} if groups else {}),
            },
        }
        store.save(int(row["cycle"]), {"loop": run.to_dict(), "campaign": new_state}, model.save)
        self._model_obj, self._model_cycle = model, int(row["cycle"])
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
        """Send the committed open batch (again: rows already sent are skipped), then this
        round's predictions of every open task."""
        if state["open"] is None:
            return 0
        if not state["open"]["items"] and not state["open"].get("queue"):
            return 0
        items = [(int(r), p, s) for r, p, s in state["open"]["items"]]
        proba = {int(k): float(v) for k, v in state["open"]["proba"].items()}
        try:
            groups = [[int(r) for r in g] for g in state["open"].get("groups", [])]
            pushed = self._push(plan, int(state["open"]["round"]), items, proba, groups)
            self._send_queue(state["open"].get("queue") or {}, int(state["open"]["round"]))
            tasks = self._tasks()
            tasks["pushed_round"] = int(state["open"]["round"])
            self._save_tasks(tasks)
            return pushed
        except ClientError as err:
            raise CampaignError(
                f"{err}. The round's training is saved: rerun `alnsfw campaign round` once the "
                "server answers; it sends the batch first"
            ) from err

    def _write_tables(self, run: RunState, report: RoundReport) -> None:
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
            "audit_precision": None if report.precision is None else report.precision[0],
            "audit_recall": None if report.recall is None else report.recall[0],
            "audit_prevalence": None if report.prevalence is None else report.prevalence[0],
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
        report.audit_unit = str(plan.get("audit_unit", "keyframe"))
        report.people = self.log.human_cost(self.cost_model)
        cap = self.cfg.get("exposure_cap_per_day")
        if cap:
            today = self.log.images_today()
            report.over_cap = {who: n for who, n in today.items() if n >= int(cap)}
        saved = self._latest()
        if saved is not None:
            last = saved.state["campaign"]["records"][-1]
            report.audit_accuracy = last["audit_accuracy"]
            report.audit_ci = tuple(last["audit_ci"])
            for key, got in (last.get("audit_stats") or {}).items():
                if got is not None:
                    setattr(report, key, (float(got[0]), (float(got[1][0]), float(got[1][1]))))
            if not trained:
                report.verdicts, report.stopping_note = stopping_verdicts(
                    saved.state["campaign"]["records"], self.config
                )
        return report

    def status(self) -> RoundReport:
        """Where the campaign stands, from its own files (no pull, no training). Takes the lock
        (waiting for a running round) and deletes nothing."""
        with self._locked(wait=120.0):
            return self._status()

    def _status(self) -> RoundReport:
        plan = self._plan()
        saved = self._load(self._store(plan), readonly=True)
        round_no = 0 if saved is None else int(saved.state["campaign"]["round"])
        report = self._report(plan, round_no, False, 0, 0)
        report.status_only = True
        return report

    # ---------------------------------------------------------------- export
    def export(self, out_dir: str | Path) -> dict[str, Any]:
        """The current model as today's .keras + JSON (alnsfw predict reads them); under the
        lock, so a round in progress is waited for, never read half-written."""
        with self._locked(wait=120.0):
            return self._export(out_dir)

    def _export(self, out_dir: str | Path) -> dict[str, Any]:
        from alnsfw.predict.export import export_model

        plan = self._plan()
        saved = self._load(self._store(plan), readonly=True)
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
        # The stored predictions are of the audit rows labelled at that round, in that order;
        # reused only for exactly those rows (a count alone matches after a relabel too).
        preds = loop["predictions"]
        stored_rows = saved.state["campaign"].get("audit_rows")
        if stored_rows is None or list(map(int, stored_rows)) != tested.tolist():
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
