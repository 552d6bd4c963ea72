"""Labels from people: Label Studio tasks -> checked annotations -> an append-only label log.

Label Studio's own semantics (1.23.2, checked in /work/shared/LABEL-STUDIO-NOTES.md and on a
real server; the table is in docs/campaign.md, "Label Studio's semantics"):
- a task holds one annotation per annotator (`completed_by`, a user id), nothing merged;
- "Skip" stores an annotation with `was_cancelled: true` and an empty result;
- the label is the Choices control's value, `result[i].value.choices`;
- the API accepts an empty or several-choice annotation even when the project forbids empty
  submissions (only the web page enforces `enable_empty_annotation: false` / `required`);
- annotations can be edited or deleted after a pull; `ground_truth` marks a reviewer's answer.

A pull is turned into a `Pull`: the annotations that can be applied, the task-id -> row map of
the campaign's tasks, and the problems set aside (one per bad annotation or task, each saying
what to do). A bad annotation never blocks the others: the rest of the pull applies, and the
set-aside annotation keeps whatever the log said before. Tasks that this campaign did not make
(a team's own tasks in the same project) are counted and ignored. Only a file of another project
is refused as a whole. The pulled state is then compared with what the log already says: only
new, changed and deleted annotations are appended. Pulling the same state twice appends nothing.

The log (labels.jsonl) is append-only in meaning: one JSON event per line, never edited; it is
rewritten whole through a temporary file and a rename, so a kill leaves the old or the new log,
never half a line. The current label of an item is derived from it: a `ground_truth` annotation
if there is one, else each annotator's latest annotation and a majority vote (ties reported and
sent back to the queue for one more annotator, see `requeue_overlaps`).
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alnsfw.al.cost import Cost, CostModel, answered_task
from alnsfw.io import write_text

# The two classes, in class order (label 0, label 1) = the Choice values of our labelling config.
CHOICES: tuple[str, str] = ("non_porn", "porn")
FROM_NAME = "label"
TO_NAME = "image"
LABEL_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Header value="$video_path at $time_s s (frame $frame)"/>'
    '<Header value="$guess" size="6"/>'
    '<Choices name="label" toName="image" choice="single" showInLine="true" required="true">'
    '<Choice value="porn"/><Choice value="non_porn"/></Choices></View>'
)
# campaign.blur: hover. The task image stays blurred until the person points at it (interactive
# blur: Das, Dang & Lease, HCOMP 2020, found it lowered the emotional impact on moderators at the
# same accuracy and speed; static blur or greyscale alone did not help in a 2026 study, so it is
# an option and exposures are counted either way). Label Studio applies a <Style> tag's CSS.
# The filter is on the image's whole `.lsf-object` box, not on its <img>: Label Studio 1.23.2
# paints the picture a person sees elsewhere in that box (a blur on the <img> alone changed its
# computed style and not one pixel on the screen: tests/test_campaign_live.py now measures the
# screen); the pointer is over the box's drawing canvas.
BLUR_STYLE = (
    "<Style>.lsf-object {filter: blur(28px) !important} "
    ".lsf-object:hover {filter: none !important}</Style>"
)


# al.unit shot / video: one task shows a unit's keyframes side by side, each with its own choice.
# Label Studio 1.23.2's <Repeater> (its frontend expands it per item of the task's `images` list,
# putting `{{idx}}` = 0, 1, ... into the names and values; its backend validates `images` as a
# list) gives controls label_0, label_1, ... on images image_0, image_1, ...; the Repeater's
# own style lays the per-keyframe boxes out in a wrapping row. A project has one config, so a
# unit campaign sends every task this way (audit, validation and kick-off tasks as one-image
# units). Each Choices is required: Submit stays disabled until every keyframe has a choice.
IDX = "{{idx}}"
UNIT_LABEL_CONFIG = (
    '<View><Header value="$video_path: $n_keyframes keyframe(s), from $time_s s"/>'
    '<Header value="$guess" size="6"/>'
    '<Repeater on="$images" indexFlag="{{idx}}" '
    'style="display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start">'
    '<View style="width: 300px; padding: 4px; border: 1px solid #ccc">'
    '<Image name="image_{{idx}}" value="$images[{{idx}}].url"/>'
    '<Header value="$images[{{idx}}].caption" size="6"/>'
    '<Choices name="label_{{idx}}" toName="image_{{idx}}" choice="single" showInLine="true" '
    'required="true"><Choice value="porn"/><Choice value="non_porn"/></Choices>'
    "</View></Repeater></View>"
)


def label_config(blur: str = "none", unit: bool = False) -> str:
    """Our labelling config (`unit`: the one of a shot / video campaign, one choice per
    keyframe); with blur "hover", images blurred until pointed at, each on its own."""
    config = UNIT_LABEL_CONFIG if unit else LABEL_CONFIG
    if blur == "none":
        return config
    return config.replace("<View>", "<View>" + BLUR_STYLE, 1)


MAX_LISTED = 20  # problems named one by one in an error or a report; the rest are counted


class LabelInputError(ValueError):
    """Tasks or annotations that cannot be applied; names each and says what to do."""


@dataclass(frozen=True)
class LabelScheme:
    """How a project's Choices control maps to the two classes.

    `values` maps a Choice value to 0 (non_porn), 1 (porn) or None ("not sure": counted as a
    skip). Several values may map to one class, so a team keeps its own names. `names` is the
    value written for each class in pre-annotations (the first listed).
    """

    from_name: str = FROM_NAME
    to_name: str = TO_NAME
    values: Mapping[str, int | None] = field(default_factory=lambda: {CHOICES[0]: 0, CHOICES[1]: 1})
    named: bool = False  # from_name / to_name set in the config (else found in the project)

    @classmethod
    def from_config(cls, ls_cfg: Mapping[str, Any] | None, unit: bool = False) -> LabelScheme:
        """From `campaign.labelstudio` (`choices`, `from_name`, `to_name`); defaults: ours
        (`unit`: the per-keyframe controls of UNIT_LABEL_CONFIG, `label_{{idx}}`)."""
        ls_cfg = ls_cfg or {}
        mapping = dict(ls_cfg.get("choices") or {})
        if not mapping.get("porn") and not mapping.get("non_porn"):
            mapping |= {"porn": [CHOICES[1]], "non_porn": [CHOICES[0]]}
        values: dict[str, int | None] = {}
        for key, klass in (("non_porn", 0), ("porn", 1), ("unsure", None)):
            names = mapping.get(key) or []
            for name in [names] if isinstance(names, str) else names:
                if name in values:
                    raise LabelInputError(
                        f"campaign.labelstudio.choices: '{name}' is listed under two classes; "
                        "give each Choice value one class"
                    )
                values[str(name)] = klass
        for klass, key in ((0, "non_porn"), (1, "porn")):
            if klass not in values.values():
                raise LabelInputError(
                    f"campaign.labelstudio.choices.{key} is empty: name the Choice value(s) of "
                    "your labelling config that mean this class"
                )
        suffix = "_" + IDX if unit else ""
        return cls(
            str(ls_cfg.get("from_name") or FROM_NAME + suffix),
            str(ls_cfg.get("to_name") or TO_NAME + suffix),
            values,
            bool(ls_cfg.get("from_name") or ls_cfg.get("to_name")),
        )

    @property
    def repeated(self) -> bool:
        """A unit config: one Choices per keyframe, named by a Repeater's `{{idx}}`."""
        return IDX in self.from_name

    def control(self, idx: int) -> tuple[str, str]:
        """(from_name, to_name) of keyframe `idx` of a unit task (the names as they are when
        the config has no Repeater)."""
        return self.from_name.replace(IDX, str(idx)), self.to_name.replace(IDX, str(idx))

    def results(self, labels: Sequence[int | None]) -> list[dict[str, Any]]:
        """A unit task's pre-annotation: one choice per keyframe (None: no guess on that one).
        Without a Repeater, `labels` must hold one label (a keyframe task)."""
        if not self.repeated:
            if len(labels) != 1:
                raise LabelInputError(
                    f"a task of {len(labels)} keyframes needs the unit labelling config (one "
                    f"Choices per keyframe, named like 'label_{IDX}'); this project's control "
                    f"is '{self.from_name}': use a project made by a unit campaign"
                )
            return self.result(labels[0])
        out = []
        for idx, label in enumerate(labels):
            for item in self.result(label):
                item["from_name"], item["to_name"] = self.control(idx)
                out.append(item)
        return out

    def name_of(self, label: int) -> str:
        """The Choice value written for class `label` in a pre-annotation."""
        return next(v for v, k in self.values.items() if k == label)

    def result(self, label: int | None) -> list[dict[str, Any]]:
        """A pre-annotation's result: the class's Choice value (empty: no guess shown)."""
        if label is None:
            return []
        return [
            {
                "from_name": self.from_name,
                "to_name": self.to_name,
                "type": "choices",
                "value": {"choices": [self.name_of(int(label))]},
            }
        ]

    def for_label_config(self, label_config: str) -> LabelScheme:
        """This mapping checked against a project's labelling config; from_name / to_name found
        there unless `named` (the only Choices control). Raises LabelInputError saying what
        does not fit: no such control, or Choice values the mapping does not cover."""
        from_name = self.from_name if self.named else None
        to_name = self.to_name if self.named else None
        try:
            root = ET.fromstring(label_config)
        except ET.ParseError as err:
            raise LabelInputError(f"the project's labelling config is not XML ({err})") from err
        controls = [c for c in root.iter() if c.tag == "Choices"]
        names = [c.get("name") for c in controls]
        if from_name:
            controls = [c for c in controls if c.get("name") == from_name]
        if len(controls) != 1:
            why = (
                f"has no Choices control named '{from_name}'"
                if from_name
                else f"has {len(controls)} Choices controls ({names})"
            )
            raise LabelInputError(
                f"the project's labelling config {why}: set campaign.labelstudio.from_name to "
                "the Choices control people answer with"
            )
        control = controls[0]
        offered = [str(c.get("value")) for c in control.iter("Choice")]
        unmapped = [v for v in offered if v not in self.values]
        if unmapped:
            raise LabelInputError(
                f"Choice value(s) {unmapped} of control '{control.get('name')}' are not in "
                "campaign.labelstudio.choices: list each under porn, non_porn or unsure"
            )
        for klass, key in ((0, "non_porn"), (1, "porn")):
            if not any(self.values[v] == klass for v in offered):
                raise LabelInputError(
                    f"control '{control.get('name')}' offers no Choice mapped to {key} "
                    f"(it offers {offered}): fix campaign.labelstudio.choices"
                )
        values = {v: self.values[v] for v in offered}  # pre-annotations use an offered value
        return LabelScheme(
            str(control.get("name")),
            str(to_name or control.get("toName") or self.to_name),
            values,
            self.named,
        )


@dataclass(frozen=True)
class Annotation:
    """One annotator's answer on one task: `label` 0/1, or None for a skip."""

    task_id: int
    annotation_id: int
    row: int
    annotator: str
    label: int | None
    updated_at: str
    ground_truth: bool = False
    lead_time: float | None = None
    # a unit task (several keyframes): how many it showed, and this keyframe's pre-filled guess
    # (Label Studio stores the prediction shown with each annotation); human cost counts them
    shown: int = 1
    guess: int | None = None

    def event(self) -> dict[str, Any]:
        """The label log's fields (a keyframe task's as they always were)."""
        fields = asdict(self)
        if self.shown == 1:
            del fields["shown"], fields["guess"]
        return fields


@dataclass(frozen=True)
class Problem:
    """An annotation or task set aside by a pull: which, by whom, why, what to do."""

    task_id: int | None
    reason: str
    todo: str
    annotation_id: int | None = None
    annotator: str | None = None
    row: int | None = None
    updated_at: str = ""

    def text(self) -> str:
        """One line a person can act on."""
        where = f"task {self.task_id}" if self.task_id is not None else "a task"
        if self.annotation_id is not None:
            where += f", annotation {self.annotation_id}"
        if self.annotator:
            where += f" by {self.annotator}"
        return f"{where}: {self.reason}; {self.todo}"

    def key(self) -> tuple[Any, ...]:
        """Identity in the problems log: the same problem in a later pull is not logged twice."""
        return (self.task_id, self.annotation_id, self.reason, self.updated_at)


@dataclass
class Pull:
    """What one pull gives the campaign (see the module docstring)."""

    annotations: list[Annotation]
    seen: dict[int, int]  # task id -> row of every task of this campaign in the pull
    problems: list[Problem]
    foreign: int = 0  # tasks of the project not made by this campaign: ignored
    missing: set[int] = field(default_factory=set)  # known task ids the pull no longer has
    complete: bool = True  # the pull holds every task (deletions are readable from it)
    newest: str = ""  # newest annotation stamp in the pull (older-export check)

    units: dict[int, list[int]] = field(default_factory=dict)  # task id -> rows (unit tasks)

    @property
    def held(self) -> set[tuple[int, int | None]]:
        """(annotation id, row) set aside: the log keeps what it said about them."""
        return {(p.annotation_id, p.row) for p in self.problems if p.annotation_id is not None}


def annotator_name(value: Any, users: Mapping[int, str] | None = None) -> str:  # noqa: ANN401
    """A person's email (else username, else `user <id>`): `completed_by` is a user id in exports
    (mapped through `users`, from GET /api/users) and a user object in some API answers."""
    if isinstance(value, dict):
        return str(value.get("email") or value.get("username") or f"user {value.get('id')}")
    try:
        uid = int(value)
    except (TypeError, ValueError):
        return str(value)
    return (users or {}).get(uid) or f"user {uid}"


def _lead_time(ann: Mapping[str, Any]) -> float | None:
    value = ann.get("lead_time")
    return float(value) if isinstance(value, int | float) else None


def _label_of(
    ann: Mapping[str, Any], scheme: LabelScheme, idx: int | None = None
) -> tuple[int | None, tuple[str, str] | None]:
    """(label, or None for a skip / "not sure"; (reason, what to do) or None) of an annotation;
    `idx`: of keyframe `idx` of a unit task (its own control, `label_<idx>`)."""
    if ann.get("was_cancelled"):
        return None, None
    result = ann.get("result") or []
    name = scheme.from_name if idx is None else scheme.control(idx)[0]
    ours = [r for r in result if r.get("type") == "choices" and r.get("from_name") == name]
    unit_names = _unit_controls(scheme) if idx is not None else set()
    others = [
        r.get("from_name")
        for r in result
        if r.get("type") == "choices" and r not in ours and r.get("from_name") not in unit_names
    ]
    choices = [c for r in ours for c in (r.get("value") or {}).get("choices", [])]
    answer = "answer it again in Label Studio (open the task, pick one choice, Update)"
    if not choices and others:
        return None, (
            f"its choice is on control {sorted(set(map(str, others)))}, not "
            f"'{scheme.from_name}' (a renamed control?)",
            "set campaign.labelstudio.from_name to the control's name, or " + answer,
        )
    if not choices and idx is not None:
        return None, (f"no choice for keyframe {idx + 1} (control '{name}')", answer)
    if not choices:
        return None, ("empty result (neither a label nor a skip)", answer)
    if len(set(choices)) != 1:
        return None, (f"several choices {choices}", answer)
    if choices[0] not in scheme.values:
        return None, (
            f"choice '{choices[0]}' is none of {sorted(scheme.values)}",
            "add it to campaign.labelstudio.choices, or " + answer,
        )
    return scheme.values[choices[0]], None


def _unit_controls(scheme: LabelScheme, most: int = 1000) -> set[str]:
    """The per-keyframe control names a unit task may carry (label_0 ... label_<most - 1>)."""
    return {scheme.control(i)[0] for i in range(most)}


def _guesses(ann: Mapping[str, Any], scheme: LabelScheme, n: int) -> list[int | None]:
    """The pre-filled guess of each of a unit task's `n` keyframes: Label Studio stores the
    prediction shown (the project's model version) with each annotation (`prediction`); None
    where it held no choice for a keyframe, or no prediction was shown."""
    result = (ann.get("prediction") or {}).get("result") or []
    by_name = {
        r.get("from_name"): (r.get("value") or {}).get("choices") or []
        for r in result
        if isinstance(r, dict) and r.get("type") == "choices"
    }
    out: list[int | None] = []
    for idx in range(n):
        choices = by_name.get(scheme.control(idx)[0]) or []
        out.append(scheme.values.get(choices[0]) if len(choices) == 1 else None)
    return out


def task_rows(data: Mapping[str, Any]) -> list[int] | None:
    """The rows a task labels: `alnsfw_rows` (a unit task, first = `alnsfw_row`), else
    [`alnsfw_row`]; None when they are not integers."""
    rows = data.get("alnsfw_rows")
    if rows is None:
        row = data.get("alnsfw_row")
        return [row] if isinstance(row, int) and not isinstance(row, bool) else None
    if (
        not isinstance(rows, list)
        or not rows
        or not all(isinstance(r, int) and not isinstance(r, bool) for r in rows)
        or rows[0] != data.get("alnsfw_row")
        or len(set(rows)) != len(rows)
    ):
        return None
    return list(rows)


def parse_tasks(
    tasks: Iterable[Mapping[str, Any]],
    campaign_id: str,
    known: Mapping[int, int],
    pushed_rows: set[int],
    project_id: int | None = None,
    scheme: LabelScheme | None = None,
    users: Mapping[int, str] | None = None,
    complete: bool = True,
) -> Pull:
    """The annotations of Label Studio tasks (JSON export or API task list) this campaign can
    apply, with every bad one set aside as a `Problem`.

    `known` maps task ids seen before to their rows; `pushed_rows` are the rows this campaign
    sent; `users` maps user ids to emails (names in problems and the log); `complete` says the
    pull holds every task of the project, so that known tasks it lacks were deleted
    (`Pull.missing`). Raises LabelInputError only for a pull of another project.
    """
    scheme = scheme or LabelScheme()
    pull = Pull([], {}, [], complete=complete)
    present: set[int] = set()
    for task in tasks:
        tid = task.get("id")
        data = task.get("data") or {}
        if isinstance(tid, int):
            present.add(tid)
        if not isinstance(tid, int):
            pull.problems.append(
                Problem(
                    None,
                    f"a task without an integer id (data {dict(data)!r:.80})",
                    "give Label Studio's JSON export (Export -> JSON), unedited",
                )
            )
            continue
        project = task.get("project")
        if project_id is not None and project is not None and int(project) != int(project_id):
            raise LabelInputError(
                f"task {tid} belongs to Label Studio project {project}, not this campaign's "
                f"project {project_id}: export (or pull) from the campaign's project only; "
                "nothing was applied"
            )
        if data.get("alnsfw_campaign") != campaign_id:
            pull.foreign += 1  # a team's own task, or another campaign's: not ours to read
            continue
        row = data.get("alnsfw_row")
        rows = task_rows(data)
        if rows is None or not set(rows) <= pushed_rows:
            what = "alnsfw_row" if "alnsfw_rows" not in data else "alnsfw_rows"
            pull.problems.append(
                Problem(
                    tid,
                    f"unknown item (data.{what} = {data.get(what)!r:.80} was never sent by "
                    "this campaign)",
                    "the task was edited or made by hand: delete it in Label Studio",
                )
            )
            continue
        assert isinstance(row, int)
        if tid in known and known[tid] != row:
            pull.problems.append(
                Problem(
                    tid,
                    f"it is item {row} now but was item {known[tid]} at an earlier pull",
                    "task data was edited: restore it or delete the task",
                    row=row,
                )
            )
            continue
        pull.seen[tid] = row
        unit = "alnsfw_rows" in data
        if unit:
            pull.units[tid] = rows
        for ann in task.get("annotations") or []:
            who = annotator_name(ann.get("completed_by"), users)
            aid = ann.get("id")
            updated = str(ann.get("updated_at") or ann.get("created_at") or "")
            pull.newest = max(pull.newest, updated)
            if not isinstance(aid, int):
                pull.problems.append(
                    Problem(
                        tid,
                        "an annotation without an integer id",
                        "give Label Studio's JSON export, unedited",
                        annotator=who,
                        row=row,
                    )
                )
                continue
            _apply_annotation(pull, ann, tid, aid, who, rows, updated, scheme, unit)
    if complete:
        pull.missing = set(known) - present
    return pull


def _apply_annotation(
    pull: Pull,
    ann: Mapping[str, Any],
    tid: int,
    aid: int,
    who: str,
    rows: Sequence[int],
    updated: str,
    scheme: LabelScheme,
    unit: bool,
) -> None:
    """One annotation -> one Annotation per keyframe of its task (a keyframe task: its one row;
    a unit task: each keyframe's own control, with the guess it showed). A keyframe without a
    readable choice is set aside alone, the others apply; a skip skips all."""
    guesses = _guesses(ann, scheme, len(rows)) if unit else [None] * len(rows)
    for idx, row in enumerate(rows):
        label, problem = _label_of(ann, scheme, idx if unit else None)
        if problem is not None:
            reason, todo = problem
            pull.problems.append(Problem(tid, reason, todo, aid, who, row, updated))
            continue
        pull.annotations.append(
            Annotation(
                tid,
                aid,
                row,
                who,
                label,
                updated,
                bool(ann.get("ground_truth")),
                _lead_time(ann),
                len(rows),
                guesses[idx],
            )
        )


def problems_summary(problems: Sequence[Problem]) -> list[str]:
    """Report lines: 'set aside: N annotation(s) ...' and the first MAX_LISTED problems."""
    if not problems:
        return []
    lines = [
        f"set aside: {len(problems)} annotation(s) or task(s) that cannot be read (the rest "
        "of the pull applied):"
    ]
    lines += [f"  {p.text()}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  ... and {len(problems) - MAX_LISTED} more (see the problems log)")
    return lines


def append_problems(path: str | Path, problems: Sequence[Problem]) -> int:
    """Add the problems not logged before to the problems log (JSON lines, written atomically);
    returns how many were new."""
    path = Path(path)
    old = (
        [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        if path.is_file()
        else []
    )
    keys = {(e["task_id"], e["annotation_id"], e["reason"], e["updated_at"]) for e in old}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    new = [{**asdict(p), "text": p.text(), "time": now} for p in problems if p.key() not in keys]
    if new:
        write_text(path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in [*old, *new]))
    return len(new)


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

    def current(self) -> dict[tuple[int, int], dict[str, Any]]:
        """(annotation id, row) -> its latest event, deleted annotations left out (one
        annotation of a unit task labels several rows)."""
        latest: dict[tuple[int, int], dict[str, Any]] = {}
        for event in self.events:
            latest[(int(event["annotation_id"]), int(event["row"]))] = event
        return {key: e for key, e in latest.items() if e["event"] != "delete"}

    def diff(
        self,
        pulled: Sequence[Annotation],
        pulled_tasks: set[int],
        held: set[tuple[int, int | None]] | None = None,
        not_after: str | None = None,
    ) -> list[dict[str, Any]]:
        """Events that bring the log to the pulled state: new or changed annotations, and
        deletions of logged annotations of pulled tasks that the pull no longer has.

        `held`: (annotation id, row) set aside by the pull (no event: the log keeps its word).
        `not_after`: the newest stamp of an export file; a logged annotation newer than it is
        not taken as deleted (the file is older than it). An annotation whose `updated_at` is
        older than the logged one is a stale copy (an older export): no event.
        """
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        current = self.current()
        held = held or set()
        events: list[dict[str, Any]] = []
        for ann in sorted(pulled, key=lambda a: (a.annotation_id, a.row)):
            old = current.get((ann.annotation_id, ann.row))
            kind = "skip" if ann.label is None else "label"
            if old is not None:
                same = old["event"] == kind and old["label"] == ann.label
                if same and bool(old.get("ground_truth")) == ann.ground_truth:
                    continue
                if ann.updated_at and ann.updated_at < str(old.get("updated_at") or ""):
                    continue  # an older copy of an annotation already logged
            events.append({"event": kind, "time": now, **ann.event()})
        present = {(a.annotation_id, a.row) for a in pulled} | held
        for key, old in sorted(current.items()):
            if key in present or int(old["task_id"]) not in pulled_tasks:
                continue
            if not_after is not None and str(old.get("updated_at") or "") > not_after:
                continue
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

    def costs(self) -> dict[str, Cost]:
        """annotator -> what they did so far (alnsfw.al.cost): each submission (a label, a
        skip, an edit: one annotation's events with one `updated_at`) is one task answered,
        with a correction per keyframe of a unit task changed from its pre-filled guess
        (`answered_task`); the keyframes of each task a person answered were shown to them
        once. A deleted annotation was still paid."""
        submissions: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
        for event in self.events:
            if event["event"] == "delete":
                continue
            key = (str(event["annotator"]), int(event["annotation_id"]), str(event["updated_at"]))
            submissions.setdefault(key, []).append(event)
        out: dict[str, Cost] = {}
        seen: set[tuple[str, int]] = set()
        for (who, _, _), events in submissions.items():
            shown = int(events[0].get("shown", 1))
            cost = answered_task(
                [e.get("guess") for e in events] + [None] * (shown - len(events)),
                [e["label"] for e in events] + [None] * (shown - len(events)),
            )
            task = (who, int(events[0]["task_id"]))
            if task in seen:  # an edit: its images were counted with the first answer
                cost = Cost(cost.tasks, cost.corrections, 0)
            seen.add(task)
            out[who] = out.get(who, Cost()) + cost
        return out

    def human_cost(self, model: CostModel | None = None) -> dict[str, tuple[float, float]]:
        """annotator -> (decisions, images seen) so far under the cost model (`al.cost`; issue
        30's currencies): see `costs`. Whole numbers are ints."""
        model = model or CostModel()
        out: dict[str, tuple[float, float]] = {}
        for who, cost in self.costs().items():
            cols = cost.columns(model)
            out[who] = (_whole(cols["decisions"]), _whole(cols["images_shown"]))
        return out

    def images_today(self, day: str | None = None) -> dict[str, int]:
        """annotator -> keyframe images seen on `day` (UTC, YYYY-MM-DD; default today), by
        Label Studio's time of each answer: what campaign.exposure_cap_per_day is checked on
        (a unit task's keyframes count one each)."""
        day = day or time.strftime("%Y-%m-%d", time.gmtime())
        seen: dict[str, dict[int, int]] = {}
        for event in self.events:
            if event["event"] != "delete" and str(event.get("updated_at", "")).startswith(day):
                per = seen.setdefault(str(event["annotator"]), {})
                per[int(event["task_id"])] = int(event.get("shown", 1))
        return {who: sum(tasks.values()) for who, tasks in seen.items()}

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

    def ground_truth(self) -> dict[int, int]:
        """row -> label of its latest `ground_truth` annotation (skips are not ground truth)."""
        best: dict[int, tuple[str, int, int]] = {}
        for event in self.current().values():
            if not event.get("ground_truth") or event["label"] is None:
                continue
            key = (str(event["updated_at"]), int(event["annotation_id"]), int(event["label"]))
            row = int(event["row"])
            if row not in best or key[:2] > best[row][:2]:
                best[row] = key
        return {row: v[2] for row, v in best.items()}


def _whole(value: float) -> float:
    """An int when `value` is whole (a report prints 3, not 3.0)."""
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class Resolved:
    """Labels by ground truth, else majority vote, and what could not be decided."""

    labels: dict[int, int]  # row -> 0/1
    ties: list[int]  # rows with votes but no majority (left unlabelled, sent back to the queue)
    skipped: list[int]  # rows with only skips
    n_multi: int  # rows with two or more votes
    n_agree: int  # of those, rows where every vote agrees
    ground_truth: list[int] = field(default_factory=list)  # rows decided by a ground truth

    @property
    def agreement(self) -> float | None:
        """Share of multiply-labelled items on which all annotators agree (None: none yet)."""
        return self.n_agree / self.n_multi if self.n_multi else None


def resolve(
    votes: Mapping[int, Mapping[str, int | None]], ground_truth: Mapping[int, int] | None = None
) -> Resolved:
    """A ground-truth annotation decides its item; else majority vote, a tie left unlabelled."""
    ground_truth = ground_truth or {}
    labels: dict[int, int] = {}
    ties, skipped, decided = [], [], []
    n_multi = n_agree = 0
    for row in sorted(set(votes) | set(ground_truth)):
        given = [v for v in votes.get(row, {}).values() if v is not None]
        if len(given) >= 2:
            n_multi += 1
            n_agree += len(set(given)) == 1
        if row in ground_truth:
            labels[row] = int(ground_truth[row])
            decided.append(row)
            continue
        if not given:
            skipped.append(row)
            continue
        counts = Counter(given).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            ties.append(row)
            continue
        labels[row] = int(counts[0][0])
    return Resolved(labels, ties, skipped, n_multi, n_agree, decided)


def requeue_overlaps(
    resolved: Resolved,
    votes: Mapping[int, Mapping[str, int | None]],
    task_of_row: Mapping[int, int],
    extra: int,
) -> dict[int, int]:
    """task id -> the overlap that serves a tied item to `extra` more annotator(s): the number
    of people who labelled it plus `extra` (Label Studio marks a task labelled when its
    annotators who did not skip reach the task's `overlap`; it never serves a task again to
    someone who answered or skipped it). Empty when `extra` is 0 or nothing is tied."""
    if extra <= 0:
        return {}
    return {
        task_of_row[row]: sum(v is not None for v in votes.get(row, {}).values()) + int(extra)
        for row in resolved.ties
        if row in task_of_row
    }
