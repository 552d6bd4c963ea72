"""The model jobs of the workflow on the JAX backend (presets/smoke.yaml, one strategy).

Kept apart from tests/test_workflow_smoke.py so that this run (minutes) and the session's smoke
run (`smoke_workflow`) start at once on the two xdist workers (tests/conftest.py).
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from conftest import smoke_snakemake

pytestmark = pytest.mark.xdist_group("jax_workdir")

# The JAX run: only the jobs whose answer the backend can change (the model jobs and the
# export), for one strategy. The strategies themselves are NumPy (alnsfw.al) and the report reads
# CSVs, so the TensorFlow run (tests/test_workflow_smoke.py) covers them; the learner's numbers
# on JAX are tests/test_backends.py's.
JAX_TARGETS = [
    "results/runs/fold0/seed0/entropy/cycles.csv",
    "results/runs/fold0/seed0/full/metrics.csv",
    "results/models/fold0/seed0/full.keras",
]


@pytest.fixture(scope="module")
def jax_workdir(tmp_path_factory):
    """The model jobs on the JAX backend, with every HDF5 array streamed (preload_mb 0)."""
    pytest.importorskip("jax")
    work = tmp_path_factory.mktemp("smoke-workflow-jax")
    config = ["compute={backend: jax, preload_mb: 0}", "al={strategies: [entropy]}"]
    smoke_snakemake(work, "--config", *config, "--", *JAX_TARGETS)
    return work


def test_the_workflow_runs_on_jax(jax_workdir):
    """compute.backend: jax reaches every model job (each logs its backend and devices), and
    compute.preload_mb, left out of the params so it reruns nothing, still reaches the learner."""
    results = jax_workdir / "results"
    cycles = pd.read_csv(results / "runs/fold0/seed0/entropy/cycles.csv")
    assert cycles["pct_labelled"].iloc[-1] == 100.0
    assert (results / "models/fold0/seed0/full.keras").stat().st_size > 0
    logs = sorted((results / "logs").rglob("*.log"))
    model_logs = [p for p in logs if p.parts[-2] in ("cache_features", "augment_bank")]
    model_logs += [p for p in logs if "active_learning" in p.parts or "full_supervision" in p.parts]
    assert len(model_logs) == 2 + 1 + 1
    for path in model_logs:
        assert "Keras backend jax sees devices: cpu:0" in path.read_text(), path
    run_log = (results / "logs/active_learning/fold0/seed0/entropy.log").read_text()
    assert "compute.preload_mb 0:" in run_log and "streamed" in run_log
    assert re.search(r"epoch 1/1: loss .*; stop|epoch 1/1: .*last epoch", run_log)
