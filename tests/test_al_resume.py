"""Kill -9 a real active-learning process after its first checkpoint, restart it, compare.

The fake learner sleeps in every fit so the kill lands mid-run; the restarted process must resume
from the checkpoint (not from scratch) and write the same CSVs as an uninterrupted run (stopping.csv
byte for byte too), timing columns of cycles.csv excepted.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from test_al_fakes import config, make_dataset, run_al

from alnsfw.al.loop import TIMING_COLUMNS

DRIVER = Path(__file__).with_name("test_al_fakes.py")


def start(data_dir, run_dir, strategy, sleep):
    # This checkout's src first (the venv may hold an editable install of another checkout).
    src = str(DRIVER.parents[1] / "src")
    env = os.environ | {"PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(DRIVER), str(data_dir), str(run_dir), strategy, str(sleep)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_for(path, process, timeout=60.0):
    """Wait until `path` exists (the first checkpoint), failing if the process ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    data_dir = tmp_path / "data"
    data = make_dataset(data_dir)
    sleep = 0.25
    run_al(data, tmp_path / "whole", "least_confidence", config(fake={"sleep": sleep}))

    run_dir = tmp_path / "killed"
    process = start(data_dir, run_dir, "least_confidence", sleep)
    wait_for(run_dir / "checkpoint" / "state-0000.json.sha256", process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    newest = sorted((run_dir / "checkpoint").glob("state-*.json"))[-1]
    if not newest.with_name(newest.name + ".sha256").exists():  # killed mid-save
        newest = sorted((run_dir / "checkpoint").glob("state-*.json"))[-2]
    saved = json.loads(newest.read_text())
    n_cycles = len(pd.read_csv(tmp_path / "whole" / "cycles.csv"))
    assert 1 <= saved["next_cycle"] < n_cycles and not saved["finished"]
    assert not (run_dir / "cycles.csv").exists()

    process = start(data_dir, run_dir, "least_confidence", sleep)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 0, output
    assert f"resuming after cycle {saved['next_cycle'] - 1}" in output
    whole = pd.read_csv(tmp_path / "whole" / "cycles.csv").drop(columns=TIMING_COLUMNS)
    resumed = pd.read_csv(run_dir / "cycles.csv").drop(columns=TIMING_COLUMNS)
    pd.testing.assert_frame_equal(whole, resumed)
    for name in ("queries", "predictions", "stopping"):
        assert (tmp_path / "whole" / f"{name}.csv").read_bytes() == (
            run_dir / f"{name}.csv"
        ).read_bytes()
    assert not (run_dir / "checkpoint").exists()
