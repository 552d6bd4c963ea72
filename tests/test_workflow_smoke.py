"""The whole workflow end to end on presets/smoke.yaml: every stage, reruns, and the report.

This is what `make run` does on the demo config, at the smallest size that still runs every rule
(about a minute on 2 cores). The run is the session's `smoke_workflow` fixture (tests/conftest.py),
shared with the other tests that read its outputs; it runs in a temporary working directory, with
the repository's Snakefile, so nothing is written into the checkout.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import smoke_snakemake

# The tests that read the session's smoke run share one xdist worker, which builds it once
# (tests/conftest.py); the JAX run below gets its own, so both start at once.
SMOKE_GROUP = pytest.mark.xdist_group("smoke_workflow")


def snakemake(workdir: Path, *args: str) -> str:
    """Run the workflow on the smoke preset in `workdir`; the output of a successful run."""
    done = smoke_snakemake(workdir, *args)
    return done.stdout + done.stderr


def planned_rules(output: str) -> set[str]:
    """Rule names in the 'Job stats' table of a dry run."""
    stats = output.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    rows = re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.MULTILINE)
    return {name for name, _ in rows if name != "total"}


@pytest.fixture
def workdir(smoke_workflow):
    """The session's finished smoke run (tests/conftest.py): read and dry-run only."""
    return smoke_workflow


@SMOKE_GROUP
def test_every_stage_writes_its_outputs(workdir):
    results = workdir / "results"
    for path in [
        "keyframes/keyframes.h5",
        "keyframes/manifest.csv",
        "splits/fold0/seed0.json",
        "tables/table1.md",
        "figures/contact_sheet.png",
        "runs/fold0/seed0/full/metrics.csv",
        "tables/table2.md",
        "tables/summary.md",
        "tables/paired.md",
        "tables/stopping.md",
        "tables/stopping_runs.csv",
        "figures/fold0.png",
        "figures/fold0.pdf",
        "figures/summary.png",
    ]:
        assert (results / path).stat().st_size > 0, path
    for strategy in ("random", "least_confidence", "entropy"):
        cycles = pd.read_csv(results / f"runs/fold0/seed0/{strategy}/cycles.csv")
        assert cycles["pct_labelled"].iloc[-1] == 100.0
        assert cycles["n_labelled"].is_monotonic_increasing
        assert (results / f"runs/fold0/seed0/{strategy}/queries.csv").exists()
        stopping = pd.read_csv(results / f"runs/fold0/seed0/{strategy}/stopping.csv")
        assert stopping["cycle"].tolist() == cycles["cycle"].tolist()
        assert not (results / f"runs/fold0/seed0/{strategy}/checkpoint").exists()
    table2 = pd.read_csv(results / "tables/table2.csv")
    assert {"random_mean", "entropy_mean", "full_supervision_mean"} <= set(table2.columns)
    # issue 12: one exported model (export.runs default) and the video-level results
    assert sorted(p.name for p in (results / "models").rglob("*.*")) == [
        "full.json",
        "full.keras",
        "full.onnx",
    ]
    assert (results / "models/fold0/seed0/full.keras").stat().st_size > 0
    assert not (results / "models/fold0/seed0/random.keras").exists()
    for method in ("random", "full"):
        assert (results / f"runs/fold0/seed0/{method}/final_weights.h5").stat().st_size > 0
    cycles = pd.read_csv(results / "runs/fold0/seed0/entropy/cycles.csv")
    assert cycles["video_accuracy"].notna().all() and (cycles["n_test_videos"] > 0).all()
    video = pd.read_csv(results / "tables/table2_video.csv")
    assert video["full_supervision_mean"].notna().all()


@SMOKE_GROUP
def test_a_finished_workflow_has_nothing_to_do(workdir):
    assert "Nothing to be done" in snakemake(workdir, "-n")


@SMOKE_GROUP
def test_a_report_key_reruns_only_report_rules(workdir):
    out = snakemake(workdir, "-n", "--config", "report={interpolation: nearest}")
    assert planned_rules(out) <= {"aggregate", "report_protocol", "report_front", "all"}
    assert "aggregate" in planned_rules(out)


@SMOKE_GROUP
def test_video_curves_rerun_only_the_figures(workdir):
    out = snakemake(workdir, "-n", "--config", "report={curve_metric: video_accuracy}")
    rules = planned_rules(out)
    assert rules <= {"plot_fold", "plot_summary", "report_protocol", "report_front", "all"}
    assert "plot_fold" in rules


@SMOKE_GROUP
def test_a_stopping_key_reruns_the_verdicts_and_figures_not_the_runs(workdir):
    out = snakemake(workdir, "-n", "--config", "stopping={budget: {max_share: 0.5}}")
    rules = planned_rules(out)
    assert "stopping" in rules and "plot_fold" in rules
    assert rules <= {
        "stopping",
        "human_cost",  # its cost at each stopping rule's stop
        "plot_fold",
        "plot_summary",
        "report_protocol",
        "report_front",
        "all",
    }


@SMOKE_GROUP
def test_a_query_size_change_reruns_runs_not_data(workdir):
    """presets/smoke.yaml trains with compute.batch_runs (one job per fold and seed), so the
    baseline reruns with its strategies; one job per run (the JAX run below) keeps it."""
    out = snakemake(workdir, "-n", "--config", "al={query_size: 5}")
    rules = planned_rules(out)
    assert "train_runs" in rules
    assert not rules & {"extract_keyframes", "merge_keyframes", "make_splits", "cache_features"}


@SMOKE_GROUP
def test_html_report(workdir, tmp_path):
    snakemake(workdir, "--report", str(tmp_path / "report.html"))  # outside the shared run
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "fold0.png" in html and "table2" in html


# The JAX run: only the jobs whose answer the backend can change (the model jobs and the
# export), for one strategy. The strategies themselves are NumPy (alnsfw.al) and the report reads
# CSVs, so the TensorFlow run above covers them; the learner's numbers on JAX are
# tests/test_backends.py's.
JAX_COMPUTE = "compute={backend: jax, preload_mb: 0, batch_runs: false, keyframe_jobs: 1}"
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
    # one job per run (compute.batch_runs: false), the schema's default: the smoke preset's
    # batched training is the TensorFlow run's; the keyframes, which no backend touches, in one
    # job (the one-video jobs are the TensorFlow run's too)
    config = [JAX_COMPUTE]
    config += ["al={strategies: [entropy]}"]
    # XLA's persistent cache (workflow/rules/common.smk sets it up, every program in it): the
    # model jobs compile the same trunk and top model (cache and bank, baseline and run), each
    # once instead of once per job; the same programs run
    smoke_snakemake(work, "--config", *config, "--", *JAX_TARGETS)
    assert any((work / ".snakemake" / "xla-cache").iterdir())
    return work


@pytest.mark.xdist_group("jax_workdir")
def test_the_workflow_runs_on_jax(jax_workdir):
    """compute.backend: jax reaches every model job (each logs its backend and devices), and
    compute.preload_mb, left out of the params so it reruns nothing, still reaches the learner."""
    results = jax_workdir / "results"
    cycles = pd.read_csv(results / "runs/fold0/seed0/entropy/cycles.csv")
    assert cycles["pct_labelled"].iloc[-1] == 100.0
    assert (results / "models/fold0/seed0/full.keras").stat().st_size > 0
    logs = sorted((results / "logs").rglob("*.log"))
    model_logs = [p for p in logs if p.parts[-2] == "cache_features"]  # features and bank
    model_logs += [p for p in logs if "active_learning" in p.parts or "full_supervision" in p.parts]
    assert len(model_logs) == 1 + 1 + 1
    for path in model_logs:
        assert "Keras backend jax sees devices: cpu:0" in path.read_text(), path
    run_log = (results / "logs/active_learning/fold0/seed0/entropy.log").read_text()
    assert "compute.preload_mb 0:" in run_log and "streamed" in run_log
    assert re.search(r"epoch 1/1: loss .*; stop|epoch 1/1: .*last epoch", run_log)


@pytest.mark.xdist_group("jax_workdir")
def test_one_job_per_run_reruns_only_the_runs_a_change_touches(jax_workdir):
    """With one job per run, a query-size change reruns the active-learning run alone: not the
    baseline, not the data (compute.preload_mb left out of the params, as above)."""
    config = [JAX_COMPUTE, "al={strategies: [entropy], query_size: 5}"]
    rules = planned_rules(snakemake(jax_workdir, "-n", "--config", *config, "--", *JAX_TARGETS))
    assert "active_learning" in rules
    assert not rules & {"full_supervision", "make_splits", "cache_features"}
    assert not [rule for rule in rules if rule.startswith("extract_keyframes")]
