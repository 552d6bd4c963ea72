"""Corrupted checkpoints: detected by their checksums, discarded with a warning naming the file,
and the run falls back to the previous good checkpoint or a fresh start.

The runs are interrupted in-process (a learner that raises in its k-th fit), which leaves the
checkpoint folder exactly as a killed job would; the restarted run must finish and write the same
CSVs as an uninterrupted one (everything is seeded, so resuming from any checkpoint, or from
nothing, gives the same result).
"""

import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from test_al_fakes import al_outputs, fake_build, make_dataset, run_al

from alnsfw.al.checkpoint import CheckpointStore
from alnsfw.al.loop import TIMING_COLUMNS


class Interrupted(RuntimeError):
    pass


def interrupting_build(after_fits):
    """A LearnerFactory whose learner raises in fit number `after_fits + 1` (a killed job)."""

    def build(cfg, keyframes, features, bank, seed):
        learner = fake_build(cfg, keyframes, features, bank, seed)
        fit = learner.fit

        def limited_fit(*args, **kwargs):
            if len(learner.fit_calls) >= after_fits:
                raise Interrupted
            return fit(*args, **kwargs)

        learner.fit = limited_fit
        return learner

    return build


def interrupted_run(tmp_path, after_fits=3):
    data = make_dataset(tmp_path / "data")
    run_al(data, tmp_path / "whole", "entropy")
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupted):
        run_al(data, run_dir, "entropy", build=interrupting_build(after_fits))
    assert (run_dir / "checkpoint").is_dir()
    return data, run_dir


def assert_same_outputs(tmp_path, run_dir):
    whole, resumed = al_outputs(tmp_path / "whole"), al_outputs(run_dir)
    pd.testing.assert_frame_equal(
        pd.read_csv(whole["cycles"]).drop(columns=TIMING_COLUMNS),
        pd.read_csv(resumed["cycles"]).drop(columns=TIMING_COLUMNS),
    )
    for name in ("queries", "predictions", "stopping"):
        assert pd.read_csv(whole[name]).equals(pd.read_csv(resumed[name]))


def test_truncated_checkpoint_state_is_discarded_and_the_run_finishes(tmp_path, caplog):
    data, run_dir = interrupted_run(tmp_path)
    truncated = sorted((run_dir / "checkpoint").glob("*.json"))
    assert truncated
    for path in truncated:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        run_al(data, run_dir, "entropy")
    assert_same_outputs(tmp_path, run_dir)
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert any(str(p) in warned for p in truncated), warned


def test_overwritten_learner_bytes_are_detected(tmp_path, caplog):
    """A learner file that still parses but holds other numbers must not be resumed from."""
    data, run_dir = interrupted_run(tmp_path)
    newest = sorted((run_dir / "checkpoint").glob("learner-*/fake.json"))[-1]
    state = json.loads(newest.read_text())
    state["w"] = [w + 1.0 for w in state["w"]]
    newest.write_text(json.dumps(state))
    with caplog.at_level(logging.WARNING):
        run_al(data, run_dir, "entropy")
    assert_same_outputs(tmp_path, run_dir)
    assert str(newest) in caplog.text


def save_cycles(store, n):
    """Checkpoints after cycles 0..n-1 of a learner whose state is one 64-byte file."""
    for cycle in range(n):

        def save_learner(directory, cycle=cycle):
            (Path(directory) / "w.bin").write_bytes(bytes([cycle]) * 64)

        store.save(cycle, {"next_cycle": cycle + 1}, save_learner)


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    store = CheckpointStore(tmp_path / "ck", "fp")
    save_cycles(store, 3)
    newest = sorted((tmp_path / "ck").glob("learner-*/w.bin"))[-1]
    newest.write_bytes(b"\x07" * 64)
    with caplog.at_level(logging.WARNING):
        loaded = store.load()
    assert loaded is not None and loaded.state["next_cycle"] == 2
    assert str(newest) in caplog.text
    assert not newest.exists()


def test_no_good_checkpoint_means_a_fresh_start(tmp_path, caplog):
    store = CheckpointStore(tmp_path / "ck", "fp")
    save_cycles(store, 2)
    for path in (tmp_path / "ck").rglob("w.bin"):
        path.write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert store.load() is None
    assert caplog.text.count("discarding checkpoint") >= 1


def test_fingerprint_change_still_starts_afresh(tmp_path):
    save_cycles(CheckpointStore(tmp_path / "ck", "old"), 2)
    assert CheckpointStore(tmp_path / "ck", "new").load() is None
    assert not (tmp_path / "ck").exists()
