"""Atomic per-cycle checkpoints of a run, so a killed job resumes at its last finished cycle.

Layout of a checkpoint folder (kept beside the run's outputs, never a declared Snakemake output,
because Snakemake deletes the outputs of a failed job and the checkpoint must survive a kill):

    state.json        the commit point: which cycle is done, pool state, strategy RNG state,
                      cycles.csv rows so far, last test predictions, the name of the learner folder
    learner-NNNN/     Learner.save() after cycle NNNN (weights, optimizer, the learner's RNG)

A new checkpoint is written as a new `learner-NNNN/` folder, then `state.json` is replaced
atomically to point at it, then older learner folders are removed. A kill at any moment leaves
either the previous complete checkpoint or the new one; leftovers are removed on the next save.

`state.json` carries a fingerprint of the run's settings and inputs; a checkpoint with another
fingerprint (the config or an input changed since) is discarded rather than resumed.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alnsfw.io import write_json

STATE_FILE = "state.json"
FORMAT_VERSION = 1

log = logging.getLogger(__name__)


def _nan_to_none(obj: Any) -> Any:  # noqa: ANN401
    """Replace float NaN by None recursively, so state.json is strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


@dataclass
class Checkpoint:
    """A loaded checkpoint: the saved state dict and the learner folder to load weights from."""

    state: dict[str, Any]
    learner_dir: Path


class CheckpointStore:
    """Reads and writes the checkpoints of one run in `directory`."""

    def __init__(self, directory: str | Path, fingerprint: str) -> None:
        self.directory = Path(directory)
        self.fingerprint = fingerprint

    def load(self) -> Checkpoint | None:
        """The last complete checkpoint, or None (none yet, or stale and therefore discarded)."""
        path = self.directory / STATE_FILE
        if not path.is_file():
            return None
        state = json.loads(path.read_text())
        if state.get("version") != FORMAT_VERSION or state.get("fingerprint") != self.fingerprint:
            log.warning(
                "checkpoint %s was written for other settings or inputs; starting afresh",
                self.directory,
            )
            self.remove()
            return None
        learner_dir = self.directory / state["learner_dir"]
        if not learner_dir.is_dir():
            raise FileNotFoundError(f"checkpoint {path} names a missing folder {learner_dir}")
        return Checkpoint(state=state, learner_dir=learner_dir)

    def save(self, cycle: int, state: dict[str, Any], save_learner: Any) -> None:  # noqa: ANN401
        """Write the checkpoint after `cycle`: learner folder first, then state.json, then cleanup.

        `save_learner(directory)` writes the learner into a fresh folder (Learner.save).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"learner-{cycle:04d}"
        learner_dir = self.directory / name
        if learner_dir.exists():  # left by a kill between this folder and state.json
            shutil.rmtree(learner_dir)
        learner_dir.mkdir()
        save_learner(str(learner_dir))
        full_state = {"version": FORMAT_VERSION, "fingerprint": self.fingerprint}
        full_state.update(state)
        full_state["learner_dir"] = name
        write_json(self.directory / STATE_FILE, _nan_to_none(full_state))
        for old in self.directory.glob("learner-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def remove(self) -> None:
        """Delete the checkpoint folder (after the run's outputs are written)."""
        shutil.rmtree(self.directory, ignore_errors=True)
