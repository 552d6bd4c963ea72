"""Labels from people: Label Studio tasks -> checked annotations -> an append-only label log.

Label Studio's own semantics (1.23.2, checked in /work/shared/LABEL-STUDIO-NOTES.md):
- a task holds one annotation per annotator (`completed_by`), nothing merged;
- "Skip" stores an annotation with `was_cancelled: true` and an empty result;
- the label is `result[0].value.choices[0]` of the Choices control;
- annotations can be edited or deleted after a pull.

A pull is turned into a list of `Annotation`s, checked as a whole (another project's or another
campaign's tasks, unknown task ids, labels outside the two classes, an empty result: all named
at once, nothing applied), then compared with what the log already says: only new, changed and
deleted annotations are appended. Pulling the same state twice appends nothing.

The log (labels.jsonl) is append-only in meaning: one JSON event per line, never edited; it is
rewritten whole through a temporary file and a rename, so a kill leaves the old or the new log,
never half a line. The current label of an item is derived from it: each annotator's latest
annotation, then a majority vote (ties left unlabelled and reported).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alnsfw.io import write_text

# The two classes, in class order (label 0, label 1) = the Choice values of the labelling config.
CHOICES: tuple[str, str] = ("non_porn", "porn")
FROM_NAME = "label"
TO_NAME = "image"
LABEL_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Header value="$video at $time_s s (frame $frame), AL rank $al_rank"/>'
    '<Choices name="label" toName="image" choice="single" showInLine="true">'
    '<Choice value="porn"/><Choice value="non_porn"/></Choices></View>'
)
MAX_LISTED = 20  # problems named one by one in an error; the rest are counted


class LabelInputError(ValueError):
    """Tasks or annotations that cannot be applied; names each and says what to do."""


@dataclass(frozen=True)
class Annotation:
    """One annotator's answer on one task: `label` 0/1, or None for a skip."""

    task_id: int
    annotation_id: int
    row: int
    annotator: str
    label: int | None
    updated_at: str


def _annotator(value: Any) -> str:  # noqa: ANN401
    """`completed_by` is a user id in exports and a user object in some API answers."""
    if isinstance(value, dict):
        return str(value.get("email") or value.get("username") or value.get("id"))
    return str(value)


def _label_of(task_id: int, ann: Mapping[str, Any], who: str) -> tuple[int | None, str | None]:
    """(label or None for a skip, problem or None) of one raw annotation."""
    aid = ann.get("id")
    if ann.get("was_cancelled"):
        return None, None
    result = ann.get("result") or []
    choices = [
        c
        for r in result
        if r.get("type") == "choices" and r.get("from_name", FROM_NAME) == FROM_NAME
        for c in (r.get("value") or {}).get("choices", [])
    ]
    if not result or not choices:
        return None, (
            f"task {task_id}, annotation {aid} by {who}: empty result (neither a label nor a "
            "skip); choose porn or non_porn (or Skip) in Label Studio and pull again"
        )
    if len(set(choices)) != 1:
        return None, f"task {task_id}, annotation {aid} by {who}: several choices {choices}"
    if choices[0] not in CHOICES:
        return None, (
            f"task {task_id}, annotation {aid} by {who}: label '{choices[0]}' is neither of "
            f"{' / '.join(CHOICES)}; fix the labelling config or the annotation and pull again"
        )
    return CHOICES.index(choices[0]), None


def parse_tasks(
    tasks: Iterable[Mapping[str, Any]],
    campaign_id: str,
    known: Mapping[int, int],
    pushed_rows: set[int],
    project_id: int | None = None,
) -> tuple[list[Annotation], dict[int, int]]:
    """Annotations of Label Studio tasks (export JSON or API task list), checked as a whole.

    `known` maps task ids seen before to their rows; `pushed_rows` are the rows this campaign
    sent. Returns the annotations and the task-id -> row map of every task seen. Raises
    LabelInputError naming every bad task or annotation; then nothing is returned to apply.
    """
    problems: list[str] = []
    out: list[Annotation] = []
    seen: dict[int, int] = {}
    for task in tasks:
        tid = task.get("id")
        data = task.get("data") or {}
        if not isinstance(tid, int):
            problems.append(f"a task without an integer id (data {dict(data)!r:.80})")
            continue
        project = task.get("project")
        if project_id is not None and project is not None and int(project) != int(project_id):
            problems.append(
                f"task {tid} belongs to Label Studio project {project}, not this campaign's "
                f"project {project_id}: export (or pull) from the campaign's project only"
            )
            continue
        if data.get("alnsfw_campaign") != campaign_id:
            problems.append(
                f"task {tid} was not made by this campaign (data.alnsfw_campaign = "
                f"{data.get('alnsfw_campaign')!r}, expected {campaign_id!r}): another project's "
                "task; remove it from the file or pull from the campaign's own project"
            )
            continue
        row = data.get("alnsfw_row")
        if not isinstance(row, int) or row not in pushed_rows:
            problems.append(
                f"task {tid}: unknown item (data.alnsfw_row = {row!r} was never sent by this "
                "campaign); the task was edited or made by hand: delete it in Label Studio"
            )
            continue
        if tid in known and known[tid] != row:
            problems.append(
                f"task {tid} is item {row} now but was item {known[tid]} at an earlier pull: "
                "task data was edited; restore it or delete the task"
            )
            continue
        seen[tid] = row
        for ann in task.get("annotations") or []:
            who = _annotator(ann.get("completed_by"))
            aid = ann.get("id")
            if not isinstance(aid, int):
                problems.append(f"task {tid}: an annotation by {who} without an integer id")
                continue
            label, problem = _label_of(tid, ann, who)
            if problem:
                problems.append(problem)
                continue
            updated = str(ann.get("updated_at") or ann.get("created_at") or "")
            out.append(Annotation(tid, aid, row, who, label, updated))
    if problems:
        shown = "\n  ".join(problems[:MAX_LISTED])
        more = (
            f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        )
        raise LabelInputError(
            f"{len(problems)} problem(s) in the labels pulled; nothing was applied:\n  "
            f"{shown}{more}"
        )
    return out, seen


class LabelLog:
    """The append-only log of label events (labels.jsonl) and the labels derived from it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.events: list[dict[str, Any]] = []
        if self.path.is_file():
            for n, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    self.events.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise LabelInputError(
                        f"{self.path} line {n} is not JSON ({err}); the log is written "
                        "atomically, so it was edited by hand: restore it from a backup"
                    ) from err

    def current(self) -> dict[int, dict[str, Any]]:
        """annotation id -> its latest event, deleted annotations left out."""
        latest: dict[int, dict[str, Any]] = {}
        for event in self.events:
            latest[int(event["annotation_id"])] = event
        return {aid: e for aid, e in latest.items() if e["event"] != "delete"}

    def diff(self, pulled: Sequence[Annotation], pulled_tasks: set[int]) -> list[dict[str, Any]]:
        """Events that bring the log to the pulled state: new or changed annotations, and
        deletions of logged annotations of pulled tasks that the pull no longer has."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        current = self.current()
        events: list[dict[str, Any]] = []
        for ann in sorted(pulled, key=lambda a: a.annotation_id):
            old = current.get(ann.annotation_id)
            kind = "skip" if ann.label is None else "label"
            if old is not None and old["event"] == kind and old["label"] == ann.label:
                continue
            events.append({"event": kind, "time": now, **asdict(ann)})
        present = {a.annotation_id for a in pulled}
        for aid, old in sorted(current.items()):
            if aid not in present and int(old["task_id"]) in pulled_tasks:
                gone = {k: v for k, v in old.items() if k != "seq"}
                events.append({**gone, "event": "delete", "time": now, "label": None})
        return events

    def append(self, events: Sequence[dict[str, Any]]) -> None:
        """Add `events` and rewrite the file atomically (old or new log, never half a line)."""
        if not events:
            return
        first = len(self.events)
        stamped = [{**e, "seq": first + i} for i, e in enumerate(events)]
        lines = [json.dumps(e, sort_keys=True) for e in [*self.events, *stamped]]
        write_text(self.path, "\n".join(lines) + "\n")
        self.events.extend(stamped)

    def votes(self) -> dict[int, dict[str, int | None]]:
        """row -> {annotator: label or None (skip)}: each annotator's latest annotation."""
        out: dict[int, dict[str, tuple[str, int, int | None]]] = {}
        for event in self.current().values():
            key = (str(event["updated_at"]), int(event["annotation_id"]), event["label"])
            per = out.setdefault(int(event["row"]), {})
            who = str(event["annotator"])
            if who not in per or key[:2] > per[who][:2]:
                per[who] = key
        return {row: {who: v[2] for who, v in per.items()} for row, per in out.items()}


@dataclass(frozen=True)
class Resolved:
    """Labels by majority vote and what could not be decided."""

    labels: dict[int, int]  # row -> 0/1
    ties: list[int]  # rows with votes but no majority (left unlabelled)
    skipped: list[int]  # rows with only skips
    n_multi: int  # rows with two or more votes
    n_agree: int  # of those, rows where every vote agrees

    @property
    def agreement(self) -> float | None:
        """Share of multiply-labelled items on which all annotators agree (None: none yet)."""
        return self.n_agree / self.n_multi if self.n_multi else None


def resolve(votes: Mapping[int, Mapping[str, int | None]]) -> Resolved:
    """Majority vote per item; a tie is reported and the item stays unlabelled."""
    labels: dict[int, int] = {}
    ties, skipped = [], []
    n_multi = n_agree = 0
    for row in sorted(votes):
        given = [v for v in votes[row].values() if v is not None]
        if not given:
            skipped.append(row)
            continue
        counts = Counter(given).most_common()
        if len(given) >= 2:
            n_multi += 1
            n_agree += len(counts) == 1
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            ties.append(row)
            continue
        labels[row] = int(counts[0][0])
    return Resolved(labels, ties, skipped, n_multi, n_agree)
