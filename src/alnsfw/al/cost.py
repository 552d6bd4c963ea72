"""The human cost of labelling: one model, stated here once, applied to every simulated query.

The paper counts labelled keyframes. The people who label pornography pay in two more
currencies: decisions (time) and explicit images seen (harm). A run counts all three, per cycle
(cycles.csv: tasks, corrections, decisions, images_shown beside n_labelled), with this model
(config `al.cost`, docs/human-cost.md):

- a keyframe task (al.unit: keyframe, and the initial set of every run) shows one image and takes
  `decisions_per_task` decisions (one: porn or not);
- a unit task (al.unit: shot or video) shows all of the unit's keyframes that are still
  unlabelled, side by side, each pre-filled with the model's guess (its predicted class at query
  time); it takes `decisions_per_task` decisions (accept the page) plus
  `decisions_per_correction` per keyframe the person changes from the guess. The simulation
  knows the true labels, so it knows which guesses a person would change;
- every keyframe shown costs `images_per_keyframe` images (set it to 0 to count tasks only).

The counts are cumulative: the row of cycle c holds the cost of every label the model of cycle c
trained on (the initial set as keyframe tasks, plus the queries of cycles 0..c-1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

COST_COLUMNS = ["tasks", "corrections", "decisions", "images_shown"]
"""cycles.csv's human-cost columns (cumulative up to the labels the cycle trained on)."""


@dataclass(frozen=True)
class CostModel:
    """What one task costs a person (config `al.cost`); see the module docstring."""

    decisions_per_task: float = 1.0
    decisions_per_correction: float = 1.0
    images_per_keyframe: float = 1.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> CostModel:
        """From `al.cost` (absent or partial: the defaults above, the issue's model)."""
        section = section or {}
        model = cls(
            decisions_per_task=float(section.get("decisions_per_task", 1.0)),
            decisions_per_correction=float(section.get("decisions_per_correction", 1.0)),
            images_per_keyframe=float(section.get("images_per_keyframe", 1.0)),
        )
        for name, value in vars(model).items():
            if not value >= 0:
                raise ValueError(f"al.cost.{name} must be >= 0, got {value}")
        return model


@dataclass(frozen=True)
class Cost:
    """Counts of tasks answered, guesses corrected and keyframes shown (what a person did)."""

    tasks: int = 0
    corrections: int = 0
    keyframes_shown: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.tasks + other.tasks,
            self.corrections + other.corrections,
            self.keyframes_shown + other.keyframes_shown,
        )

    def to_dict(self) -> dict[str, int]:
        """Plain-JSON form (checkpointed with the run's state)."""
        return {
            "tasks": self.tasks,
            "corrections": self.corrections,
            "keyframes_shown": self.keyframes_shown,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cost:
        """Inverse of to_dict."""
        return cls(int(data["tasks"]), int(data["corrections"]), int(data["keyframes_shown"]))

    def columns(self, model: CostModel) -> dict[str, float]:
        """The cycles.csv columns of this cost under `model`."""
        return {
            "tasks": self.tasks,
            "corrections": self.corrections,
            "decisions": model.decisions_per_task * self.tasks
            + model.decisions_per_correction * self.corrections,
            "images_shown": model.images_per_keyframe * self.keyframes_shown,
        }


def keyframe_tasks(n: int) -> Cost:
    """n keyframe tasks: one image each, nothing pre-filled, so nothing to correct."""
    return Cost(tasks=int(n), corrections=0, keyframes_shown=int(n))


def unit_tasks(units: np.ndarray, guesses: np.ndarray, truths: np.ndarray) -> Cost:
    """Tasks of whole units: one per distinct unit id, every keyframe shown, a correction for
    every keyframe whose pre-filled guess differs from its true label.

    `units`, `guesses` and `truths` are aligned, one entry per keyframe the tasks show.
    """
    units, guesses, truths = np.asarray(units), np.asarray(guesses), np.asarray(truths)
    if not (len(units) == len(guesses) == len(truths)):
        raise ValueError("unit_tasks: units, guesses and truths differ in length")
    return Cost(
        tasks=len(np.unique(units)),
        corrections=int(np.sum(guesses != truths)),
        keyframes_shown=len(units),
    )


def answered_task(guesses: Sequence[int | None], answers: Sequence[int | None]) -> Cost:
    """One task a person answered in a campaign (one submission), aligned per keyframe shown.

    A one-image task is a keyframe task: one decision, nothing to correct (as `keyframe_tasks`).
    On a unit task every keyframe whose answer differs from its pre-filled guess is a
    correction, and so is one answered with no guess pre-filled (the person chose it alone); a
    keyframe left unanswered (a skip) is none. The simulation's `unit_tasks` is the same rule
    with the true labels as answers.
    """
    if len(guesses) != len(answers):
        raise ValueError("answered_task: guesses and answers differ in length")
    corrections = 0
    if len(answers) > 1:
        corrections = sum(a is not None and a != g for g, a in zip(guesses, answers))
    return Cost(tasks=1, corrections=int(corrections), keyframes_shown=len(answers))
