"""profiles/slurm against a real single-node SLURM (tests/cluster/up.sh), on the smoke preset.

Run with `make test-cluster` (as root: it installs and starts munge, MariaDB, slurmdbd, slurmctld
and slurmd). The module:

1. brings the cluster up (idempotent) and shuts it down at the end (ALNSFW_KEEP_CLUSTER=1 keeps it);
2. runs the smoke workflow locally, as the reference, with a cluster's job grid (one job per run
   and per video: tests/cluster/per-run.yaml, as the paper presets; the smoke preset batches them);
3. runs it again in a fresh copy through `--workflow-profile profiles/slurm`, with the GPU overlay
   (compute.gpu: true), and checks with `sacct` that every job but the local `all` went through
   sbatch, with the account and partition given, training jobs with one (fake) GPU and the others
   with none; and that every CSV of results/runs and results/tables equals the local one
   (except the *_seconds wall-time columns);
4. runs the smoke preset as it is (compute.batch_runs: true) through SLURM too: one train_runs
   job with its GPU, and the same files as one job per run;
5. kills a running active-learning job in two ways and checks that it resumes from its per-cycle
   checkpoint and ends with the same results:
   - `scancel --batch --signal=TERM` while Snakemake keeps running: the job fails, the profile's
     `retries: 1` resubmits it;
   - `scancel` plus a SIGKILL of the submitting Snakemake (a lost login node or session), then
     `--unlock` and `--rerun-incomplete`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "cluster"
WORKFLOW_PATHS = ["Snakefile", "config.yaml", "presets", "workflow", "scripts", "src", "envs",
                  "profiles"]  # fmt: skip
ACCOUNT = os.environ.get("ALNSFW_SLURM_ACCOUNT", "alnsfw")
PARTITION = os.environ.get("ALNSFW_SLURM_PARTITION", "debug")
TRAINING_RULES = {"active_learning", "full_supervision", "train_runs"}
RUN = "results/runs/fold0/seed0"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# The smoke preset with a cluster's job grid: one job per run and per video (per-run.yaml).
PER_RUN = str(CLUSTER / "per-run.yaml")
CONFIG = ["--configfile", "presets/smoke.yaml", PER_RUN]
# What a user adds on the command line (README "Running on a cluster"), plus a short first status
# check so the test does not wait the plugin's default 40 s after each submission.
SLURM = [
    "--workflow-profile", "profiles/slurm",
    "--configfile", "presets/smoke.yaml", PER_RUN, str(CLUSTER / "gpu.yaml"),
    "--default-resources", f"slurm_account={ACCOUNT}", f"slurm_partition={PARTITION}",
    "mem_mb=1000", "runtime=30",
    "--slurm-init-seconds-before-status-checks", "2",
]  # fmt: skip
RESUME_REL_TOL = 1e-5  # float32 carries about 7 significant digits
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: ([^)]+)\)")


# ---------------------------------------------------------------------------- helpers


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake", "results", "resources")
    for name in WORKFLOW_PATHS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def environment(workdir: Path) -> dict[str, str]:
    # The copy's library, also inside SLURM jobs (the plugin submits with --export=ALL).
    return {**os.environ, "PYTHONPATH": str(workdir / "src")}


def snakemake(workdir: Path, args: list[str], log_name: str, timeout: int = 900) -> str:
    """Run Snakemake in `workdir`, its output to `workdir/<log_name>`; fail with its tail."""
    log_path = workdir / log_name
    with log_path.open("w") as log:
        proc = subprocess.run(
            SNAKEMAKE + args,
            cwd=workdir,
            env=environment(workdir),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
    text = log_path.read_text()
    assert proc.returncode == 0, f"snakemake {' '.join(args)} failed:\n{text[-4000:]}"
    return text


def start_snakemake(workdir: Path, args: list[str], log_name: str) -> subprocess.Popen:
    log = (workdir / log_name).open("w")
    return subprocess.Popen(
        SNAKEMAKE + args,
        cwd=workdir,
        env=environment(workdir),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the test can kill it alone
    )


def sacct(job_ids: list[str]) -> list[dict[str, str]]:
    fields = ["JobIDRaw", "Comment", "Account", "Partition", "State", "ExitCode", "AllocTRES"]
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "-j", ",".join(job_ids), "-o", ",".join(fields)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def rule_of(comment: str) -> str:
    """The plugin's sbatch --comment is rule_<name> or rule_<name>_wildcards_<values>."""
    return re.match(r"rule_(.+?)(?:_wildcards_.*)?$", comment).group(1)


def slurm_ids(log_text: str) -> list[str]:
    return [m.group(1) for m in SUBMITTED.finditer(log_text)]


def local_rules() -> set[str]:
    """The Snakefile's `localrules:` (short jobs run by the submitting process), and `all`."""
    text = (ROOT / "Snakefile").read_text()
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", text, re.M)
    assert block, "the Snakefile declares no localrules"
    return {"all", *re.findall(r"\w+", block.group(1))}


def planned_jobs(log_text: str, skip: frozenset[str] = frozenset({"all"})) -> Counter:
    """Snakemake's "Job stats" table (jobs per rule) at the top of a run's log, minus `skip`."""
    table = log_text[log_text.index("Job stats:") :].splitlines()[3:]
    counts = Counter()
    for line in table:
        name, count = line.split()
        if name == "total":
            return counts
        if name not in skip:  # local rules run in the submitting process
            counts[name] = int(count)
    raise AssertionError("no end to the Job stats table")


def results_table(path: Path) -> list[dict[str, str]]:
    """A CSV's rows without wall-time columns, which differ between any two runs."""
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in rows]


def result_csvs(workdir: Path) -> list[Path]:
    return sorted(
        p.relative_to(workdir)
        for sub in ("results/runs", "results/tables")
        for p in (workdir / sub).rglob("*.csv")
    )


def same_value(a: str, b: str, rel_tol: float) -> bool:
    if a == b:
        return True
    try:
        return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=rel_tol * 1e-6)
    except ValueError:
        return False


def assert_same_results(workdir: Path, reference: Path, rel_tol: float = 0.0) -> None:
    """Every CSV of results/runs and results/tables equal, wall-time columns excepted.

    rel_tol 0: the same text. A resumed Keras run may differ from an uninterrupted one in the
    last bits of float32 results (seen: val_loss 3e-7, entropy scores 2e-6 relative), so the
    resume tests allow RESUME_REL_TOL on numbers; the labelled counts, queried rows, confusion
    counts and predicted classes must still be equal.
    """
    ours, theirs = result_csvs(workdir), result_csvs(reference)
    assert ours == theirs, "the two runs wrote different result files"
    assert any(str(p).endswith("cycles.csv") for p in ours), "no cycles.csv to compare"
    for rel in ours:
        mine, ref = results_table(workdir / rel), results_table(reference / rel)
        assert len(mine) == len(ref) and all(a.keys() == b.keys() for a, b in zip(mine, ref)), rel
        for i, (a, b) in enumerate(zip(mine, ref)):
            bad = {k: (a[k], b[k]) for k in a if not same_value(a[k], b[k], rel_tol)}
            assert not bad, f"{rel} row {i} differs from the local run: {bad}"


def assert_completed_with_their_gpus(jobs: list[dict[str, str]]) -> None:
    """Every job COMPLETED under the account and partition given; a training job with one GPU,
    any other job with none."""
    for job in jobs:
        assert job["State"] == "COMPLETED", job
        assert (job["Account"], job["Partition"]) == (ACCOUNT, PARTITION), job
        gpus = re.search(r"gres/gpu=(\d+)", job["AllocTRES"])
        if rule_of(job["Comment"]) in TRAINING_RULES:
            assert gpus and gpus.group(1) == "1", f"training job without its GPU: {job}"
        else:
            assert gpus is None, f"a GPU for a job that does not train: {job}"


def wait_for(
    predicate, what: str, timeout: float, proc: subprocess.Popen | None = None, poll: float = 0.2
):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"snakemake exited ({proc.returncode}) while waiting for {what}")
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def running_job(comment_part: str) -> str | None:
    """SLURM id of the running job whose comment contains `comment_part`."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i|%k"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        job_id, _, comment = line.partition("|")
        if comment_part in comment:
            return job_id
    return None


def kill_mid_run(workdir: Path, strategy: str, proc: subprocess.Popen, scancel: list[str]) -> str:
    """Wait until the run has checkpointed a cycle but not finished, then scancel its job.

    The smoke run's later cycles and its outputs take about a second after the first checkpoint,
    so the job's id is looked up before (the job runs seconds before it: imports, the first
    cycle), and the checkpoint is polled every 10 ms: a kill after the run has written its
    outputs and removed its checkpoint would leave nothing to resume from."""
    run = workdir / RUN / strategy
    job_id = wait_for(lambda: running_job(f"active_learning_wildcards_0_0_{strategy}"),
                      f"the SLURM job of {strategy}", 600, proc)  # fmt: skip
    committed = run / "checkpoint"  # a cycle's checkpoint counts once its .sha256 is written
    wait_for(lambda: any(committed.glob("state-*.json.sha256")), "a checkpoint", 600, proc, 0.01)
    assert not (run / "cycles.csv").exists(), "the run finished before it could be killed"
    subprocess.run(["scancel", *scancel, job_id], check=True)
    wait_for(
        lambda: sacct([job_id])[0]["State"].split()[0] in ("CANCELLED", "FAILED"),
        f"job {job_id} to end",
        60,
    )
    return job_id


def job_log(workdir: Path, strategy: str) -> str:
    return (workdir / f"results/logs/active_learning/fold0/seed0/{strategy}.log").read_text()


def forget_run(workdir: Path, strategy: str) -> None:
    """Remove one run's outputs, so that Snakemake runs it (and what depends on it) again."""
    for name in ("cycles", "queries", "predictions"):
        (workdir / RUN / strategy / f"{name}.csv").unlink()
    (workdir / f"results/logs/active_learning/fold0/seed0/{strategy}.log").unlink()


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("the test cluster needs root (tests/cluster/up.sh starts system daemons)")
    up = subprocess.run(["bash", str(CLUSTER / "up.sh")], capture_output=True, text=True)
    assert up.returncode == 0, f"tests/cluster/up.sh failed:\n{up.stdout}\n{up.stderr}"
    yield
    if os.environ.get("ALNSFW_KEEP_CLUSTER") != "1":
        subprocess.run(["bash", str(CLUSTER / "down.sh")], check=False)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("cluster") / "local")
    snakemake(workdir, ["--cores", "2", *CONFIG], "snakemake-local.log")
    return workdir


@pytest.fixture(scope="module")
def slurm_run(cluster, local_run, tmp_path_factory) -> tuple[Path, str]:
    workdir = copy_workflow(tmp_path_factory.mktemp("cluster") / "slurm")
    return workdir, snakemake(workdir, SLURM, "snakemake-slurm.log")


# ---------------------------------------------------------------------------- tests


def test_every_job_went_through_sbatch(slurm_run, local_run):
    workdir, log_text = slurm_run
    ids = slurm_ids(log_text)
    jobs = sacct(ids)
    assert sorted(j["JobIDRaw"] for j in jobs) == sorted(ids), "sacct misses submitted jobs"
    submitted = Counter(rule_of(j["Comment"]) for j in jobs)
    # The jobs the local run executed, each as its own SLURM job, but the local rules.
    local = frozenset(local_rules())
    assert submitted == planned_jobs((local_run / "snakemake-local.log").read_text(), local)
    assert submitted == planned_jobs(log_text, local)
    assert not local & set(submitted), "a local rule was submitted to SLURM"
    assert planned_jobs(log_text)["aggregate"] >= 1  # ... and it did run, locally
    assert submitted["active_learning"] == 3 and submitted["full_supervision"] == 1
    assert_completed_with_their_gpus(jobs)


def test_slurm_results_equal_local_results(slurm_run, local_run):
    workdir, _ = slurm_run
    assert_same_results(workdir, local_run)


def test_batched_runs_go_through_sbatch_with_their_gpu(cluster, local_run, tmp_path_factory):
    """The smoke preset as it is (compute.batch_runs: true, as in config.yaml): one `train_runs`
    job trains the fold and seed's baseline and strategies, asks for its GPU, and writes the same
    files to the last digit as one job per run (the local reference)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("cluster") / "batched")
    log_text = snakemake(workdir, [a for a in SLURM if a != PER_RUN], "snakemake-batched.log")
    jobs = sacct(slurm_ids(log_text))
    submitted = Counter(rule_of(j["Comment"]) for j in jobs)
    assert submitted["train_runs"] == 1, submitted
    assert submitted["active_learning"] == submitted["full_supervision"] == 0, submitted
    assert_completed_with_their_gpus(jobs)
    assert_same_results(workdir, local_run)


def test_job_killed_by_signal_is_retried_and_resumes(slurm_run, local_run):
    """scancel --batch --signal=TERM: the job FAILs, Snakemake (retries: 1) resubmits it."""
    workdir, _ = slurm_run
    forget_run(workdir, "random")
    proc = start_snakemake(workdir, SLURM, "snakemake-retry.log")
    try:
        killed = kill_mid_run(workdir, "random", proc, ["--batch", "--signal=TERM"])
        assert proc.wait(timeout=900) == 0, (workdir / "snakemake-retry.log").read_text()[-4000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    log_text = (workdir / "snakemake-retry.log").read_text()
    attempts = [j for j in sacct(slurm_ids(log_text)) if "wildcards_0_0_random" in j["Comment"]]
    assert [(j["JobIDRaw"], j["State"]) for j in attempts][0] == (killed, "FAILED")
    assert attempts[-1]["State"] == "COMPLETED" and len(attempts) == 2
    assert "resuming after cycle" in job_log(workdir, "random")
    assert_same_results(workdir, local_run, rel_tol=RESUME_REL_TOL)


def test_cancelled_job_resumes_with_rerun_incomplete(slurm_run, local_run):
    """scancel plus a lost submitting Snakemake: --unlock, then --rerun-incomplete resumes."""
    workdir, _ = slurm_run
    forget_run(workdir, "entropy")
    proc = start_snakemake(workdir, SLURM, "snakemake-killed.log")
    try:
        killed = kill_mid_run(workdir, "entropy", proc, [])
    finally:
        # The head node goes down. (Left alive, snakemake-executor-plugin-slurm 2.8.0 would keep
        # waiting: it reads sacct's "CANCELLED by <uid>" as a job still running.)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert sacct([killed])[0]["State"].startswith("CANCELLED")
    assert not (workdir / RUN / "entropy" / "cycles.csv").exists()
    snakemake(workdir, [*SLURM, "--unlock"], "snakemake-unlock.log")
    log_text = snakemake(workdir, [*SLURM, "--rerun-incomplete"], "snakemake-resume.log")
    resumed = [j for j in sacct(slurm_ids(log_text)) if "wildcards_0_0_entropy" in j["Comment"]]
    assert [j["State"] for j in resumed] == ["COMPLETED"]
    assert "resuming after cycle" in job_log(workdir, "entropy")
    assert_same_results(workdir, local_run, rel_tol=RESUME_REL_TOL)
