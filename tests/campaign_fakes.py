"""Stand-ins for the campaign tests: a scripted Label Studio (in memory) and a fake learner.

`ScriptedLabelStudio` keeps tasks and annotations the way Label Studio 1.23.2 does (one
annotation per annotator, a skip = `was_cancelled` with an empty result, ids assigned by the
server, edits bump `updated_at`, deletions remove the annotation) and answers `pull` with its JSON
export format; it can also fail like a server that is down or a wrong token.
"""

from __future__ import annotations

import copy
from pathlib import Path

import h5py
import numpy as np
from test_al_fakes import FakeLearner

from alnsfw.campaign.client import ClientError
from alnsfw.campaign.labels import CHOICES


def image_features(keyframes: str | Path) -> np.ndarray:
    """Three features per keyframe: mean R, G, B of the stored training image (0..1)."""
    with h5py.File(keyframes, "r") as h5:
        images = h5["images"][:].astype(np.float64)
    x = images.mean(axis=(1, 2)) / 255.0
    return (x - x.mean(0)) / (x.std(0) + 1e-9)


def fake_factory(cfg, keyframes, features, bank, seed):
    """LearnerFactory: logistic regression on image_features (reads no label itself)."""
    x = image_features(keyframes)
    return FakeLearner(x, np.zeros(len(x), np.int8), seed, cfg["training"])


class ScriptedLabelStudio:
    """An in-memory Label Studio project answering like the real one."""

    def __init__(self, project_id: int = 7) -> None:
        self.project_id = project_id
        self.tasks: dict[int, dict] = {}
        self.next_task = 100
        self.next_ann = 1000
        self.clock = 0
        self.fail: str | None = None  # "down" | "401"
        self.push_calls = 0
        self.fail_push = False
        self.requeued: dict[int, int] = {}

    # --- the client interface -------------------------------------------------------------
    def ensure_project(self, document_root):
        return self.project_id

    def _check(self, what):
        if self.fail == "down":
            raise ClientError(f"Label Studio at http://127.0.0.1:1 is not reachable ({what})")
        if self.fail == "401":
            raise ClientError(f"Label Studio refused the token (401) while trying to {what}")

    def push(self, tasks, round_no):
        self._check("import the tasks")
        if self.fail_push:
            raise ClientError("Label Studio is not reachable (import the tasks)")
        self.push_calls += 1
        out = {}
        for task in tasks:
            tid = self.next_task
            self.next_task += 1
            self.tasks[tid] = {
                "id": tid,
                "project": self.project_id,
                "data": copy.deepcopy(task["data"]),
                "annotations": [],
                "predictions": copy.deepcopy(task.get("predictions", [])),
            }
            out[task["data"]["alnsfw_row"]] = tid
        return out

    def pull(self):
        self._check("list the project's tasks")
        return copy.deepcopy(list(self.tasks.values())), True

    def sent_rows(self):
        self._check("list the project's tasks")
        return {
            r
            for t in self.tasks.values()
            for r in t["data"].get("alnsfw_rows", [t["data"].get("alnsfw_row")])
            if r is not None
        }

    def users(self):
        """GET /api/users: ids -> emails (annotator `who` is ann<who>@example.com)."""
        return {who: f"ann{who}@example.com" for who in range(1, 6)}

    def requeue(self, overlaps):
        """PATCH /api/tasks/<id> {overlap, is_labeled: false}."""
        self.requeued.update(overlaps)
        for tid, overlap in overlaps.items():
            self.tasks[tid]["overlap"] = overlap
        return len(overlaps)

    # --- people ---------------------------------------------------------------------------
    def task_of(self, row: int) -> dict:
        return next(
            t
            for t in self.tasks.values()
            if row in t["data"].get("alnsfw_rows", [t["data"].get("alnsfw_row")])
        )

    def annotate_unit(self, task_id: int, labels: list, who: int = 1) -> dict:
        """Annotator `who` submits a unit task (al.unit shot / video): one choice per keyframe
        (label None: that keyframe left without one; all None: a skip). As Label Studio does,
        the annotation keeps the prediction shown (`prediction`: the task's newest)."""
        task = self.tasks[task_id]
        result = [
            {
                "from_name": f"label_{idx}",
                "to_name": f"image_{idx}",
                "type": "choices",
                "value": {"choices": [CHOICES[label]]},
            }
            for idx, label in enumerate(labels)
            if label is not None
        ]
        shown = task["predictions"][-1] if task.get("predictions") else {}
        ann = {
            "id": self.next_ann,
            "completed_by": who,
            "created_at": self._stamp(),
            "result": result,
            "was_cancelled": not result,
            "prediction": copy.deepcopy(shown),
            "updated_at": self._stamp(),
        }
        self.next_ann += 1
        task["annotations"].append(ann)
        return ann

    def _stamp(self) -> str:
        self.clock += 1
        return f"2026-12-02T10:{self.clock // 60:02d}:{self.clock % 60:02d}.000000Z"

    def annotate(self, row: int, label: int | None, who: int = 1, value: str | None = None):
        """Annotator `who` labels (or skips: label None) the task of `row`; edits if present."""
        task = self.task_of(row)
        mine = [a for a in task["annotations"] if a["completed_by"] == who]
        result = []
        if label is not None or value is not None:
            choice = value if value is not None else CHOICES[label]
            result = [
                {
                    "from_name": "label",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [choice]},
                }
            ]
        if mine:
            ann = mine[0]
        else:
            ann = {"id": self.next_ann, "completed_by": who, "created_at": self._stamp()}
            self.next_ann += 1
            task["annotations"].append(ann)
        ann.update(
            {"result": result, "was_cancelled": label is None and value is None}
            | {"updated_at": self._stamp()}
        )
        return ann

    def delete(self, row: int, who: int = 1) -> None:
        task = self.task_of(row)
        task["annotations"] = [a for a in task["annotations"] if a["completed_by"] != who]

    def answer_all(self, truth: np.ndarray, who: int = 1) -> int:
        """Annotator `who` labels every task they have not answered with the true label."""
        n = 0
        for task in self.tasks.values():
            if "alnsfw_row" in task["data"] and not any(
                a["completed_by"] == who for a in task["annotations"]
            ):
                if "alnsfw_rows" in task["data"]:  # a unit campaign's task
                    rows = task["data"]["alnsfw_rows"]
                    self.annotate_unit(task["id"], [int(truth[r]) for r in rows], who)
                    n += 1
                    continue
                self.annotate(
                    task["data"]["alnsfw_row"], int(truth[task["data"]["alnsfw_row"]]), who
                )
                n += 1
        return n
