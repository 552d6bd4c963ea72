"""Paper scale and GPU packing, checked from Snakemake's plans (dry runs), no GPU needed.

- presets/paper-scale-synthetic.yaml plans the whole grid: 75 AL runs and 25 baselines;
- compute.runs_per_gpu = N: training jobs hold a `gpu_slots` resource (workstation) and join the
  job group `gpu_pack`, which `--group-components gpu_pack=N` fills with N runs that ask for one
  GPU together (`gres=gpu:1`, not summed like `gpu=1`);
- compute.gpu: true makes the training rules use envs/model-gpu.yaml;
- each packed process gets its share of the GPU memory through backend-specific variables.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alnsfw.packing import (
    GROUP,
    apply_gpu_share,
    check_group_components,
    gpu_share_env,
    model_env_file,
    training_resources,
)

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "presets/paper-scale-synthetic.yaml"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-n", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def job_counts(stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    table = stdout.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def pack_overlay(tmp_path: Path, n: int) -> Path:
    path = tmp_path / f"pack{n}.yaml"
    path.write_text(yaml.safe_dump({"compute": {"gpu": True, "runs_per_gpu": n}}))
    return path


def test_paper_scale_grid_and_packed_groups_of_n(tmp_path):
    """One dry run of the paper-scale preset packed 8 runs per GPU: the whole grid is planned
    (packing changes no job count) and the training jobs form groups of 8. (Was two tests with
    one dry run each, ~30 s apiece: the grid's counts are the same with or without packing.)"""
    done = dry_run(
        tmp_path / "w",
        "--configfile", str(PRESET), str(pack_overlay(tmp_path, 8)),
        "--resources", "gpu_slots=8",
        "--group-components", f"{GROUP}=8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    counts = job_counts(done.stdout)
    assert counts["active_learning"] == 75
    assert counts["full_supervision"] == 25
    assert counts["make_splits"] == 25
    assert counts["extract_keyframes"] == 800
    assert counts["cache_features"] == 1
    preset = yaml.safe_load(PRESET.read_text())
    videos = preset["synthetic"]["videos"]
    assert (videos["vPorn"], videos["vNonPornEasy"], videos["vNonPornDifficulty"]) == (
        400,
        200,
        200,
    )
    lo, hi = preset["synthetic"]["shots_per_video"]
    assert 16_000 <= 800 * (lo + hi) / 2 <= 17_500  # one keyframe per shot: NPDI has 16,727
    assert preset["keyframes"]["size"] == preset["model"]["input_size"] == 224

    out = done.stdout + done.stderr
    groups = out.split(f"Group job {GROUP}")[1:]
    sizes = sorted(
        len(re.findall(r"Job \d+: (?:Active learning|Full supervision)", g)) for g in groups
    )
    assert sum(sizes) == 100  # every training job is in a group, and only those
    assert sizes == [4] + [8] * 12


def test_a_group_asks_for_one_gpu_and_sums_the_rest():
    """Snakemake's own group arithmetic on N packed jobs: one gres=gpu:1, N slots, N x memory."""
    from snakemake.resources import GroupResources, Resources

    compute = {"gpu": True, "runs_per_gpu": 8}

    class Job:  # what basic_layered reads of a job
        def __init__(self, i):
            self.resources = {"_cores": 2, "mem_mb": 12000, "runtime": 720} | training_resources(
                compute
            )
            self.is_pipe = False
            self.pipe_group = None
            self.name = f"active_learning_{i}"

    jobs = [Job(i) for i in range(8)]
    merged = GroupResources.basic_layered(
        toposorted_jobs=[jobs],
        constraints=Resources.from_mapping({"_cores": 64, "mem_mb": 10**6, "gpu_slots": 8}),
        run_local=False,
        additive_resources=["runtime"],
    )
    assert merged["gres"] == "gpu:1"
    assert merged["gpu"] == 0
    assert merged["gpu_slots"] == 8
    assert merged["mem_mb"] == 8 * 12000
    assert merged["_cores"] == 16
    assert merged["runtime"] == 720


def test_training_resources_without_packing_are_unchanged():
    assert training_resources({"gpu": False}) == {"gpu": 0, "gpu_slots": 0}
    assert training_resources({"gpu": True}) == {"gpu": 1, "gpu_slots": 1}
    assert training_resources({"gpu": True, "runs_per_gpu": 1}) == {"gpu": 1, "gpu_slots": 1}
    assert training_resources({"gpu": False, "runs_per_gpu": 8}) == {"gpu": 0, "gpu_slots": 0}


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        (
            "jax",
            {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "XLA_PYTHON_CLIENT_MEM_FRACTION": "0.1125"},
        ),
        ("tensorflow", {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}),
    ],
)
def test_memory_share_env_is_backend_specific(backend, expected):
    assert gpu_share_env({"gpu": True, "runs_per_gpu": 8, "backend": backend}) == expected
    assert gpu_share_env({"gpu": True, "runs_per_gpu": 1, "backend": backend}) == {}
    assert gpu_share_env({"gpu": False, "runs_per_gpu": 8, "backend": backend}) == {}


def test_explicit_memory_fraction_wins():
    compute = {"gpu": True, "runs_per_gpu": 8, "backend": "jax", "gpu_memory_fraction": 0.5}
    assert gpu_share_env(compute) == {}


def test_apply_gpu_share_keeps_what_the_user_set():
    environ = {"XLA_PYTHON_CLIENT_MEM_FRACTION": "0.3"}
    applied = apply_gpu_share({"gpu": True, "runs_per_gpu": 4, "backend": "jax"}, environ)
    assert environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.3"
    assert applied == {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


def test_check_group_components():
    """Run by the workflow's onstart hook (not in dry runs: settings come after parsing)."""
    check_group_components({"gpu": True, "runs_per_gpu": 4}, {GROUP: 4})
    check_group_components({"gpu": False}, {})
    with pytest.raises(ValueError, match="gpu_pack=8 but compute.runs_per_gpu is 4"):
        check_group_components({"gpu": True, "runs_per_gpu": 4}, {GROUP: 8})
    with pytest.raises(ValueError, match="compute.runs_per_gpu: 8 and compute.gpu: true"):
        check_group_components({"gpu": False}, {GROUP: 8})
    assert "check_packing()" in (ROOT / "Snakefile").read_text()


def test_training_rules_use_the_gpu_env_when_a_gpu_is_asked_for(tmp_path):
    """The conda env of each model rule in the loaded workflow (Snakemake API; no conda needed)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    def envs(*configfiles: Path) -> dict[str, str]:
        with SnakemakeApi(OutputSettings()) as api:
            workflow = api.workflow(
                resource_settings=ResourceSettings(),
                config_settings=ConfigSettings(configfiles=list(configfiles)),
                storage_settings=StorageSettings(),
                snakefile=ROOT / "Snakefile",
                workdir=tmp_path,
            )._workflow
            names = ("active_learning", "full_supervision", "cache_features")
            return {n: Path(workflow.get_rule(n).conda_env).name for n in names}

    assert envs(PRESET) == dict.fromkeys(
        ("active_learning", "full_supervision", "cache_features"), "model.yaml"
    )
    gpu = envs(PRESET, pack_overlay(tmp_path, 1))
    assert gpu["active_learning"] == gpu["full_supervision"] == "model-gpu.yaml"
    assert model_env_file({"gpu": True}).endswith("envs/model-gpu.yaml")
    assert (ROOT / "workflow/rules" / model_env_file({"gpu": True})).resolve().is_file()


def test_a_real_run_refuses_mismatched_group_components(tmp_path):
    """The onstart check stops the run before any job (dry runs cannot see the group settings)."""
    command = [
        str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path / "w"), "--cores", "1",
        "--until", "synthesize_dataset", "--group-components", f"{GROUP}=4",
        "--configfile", str(ROOT / "presets/smoke.yaml"), str(pack_overlay(tmp_path, 8)),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert f"{GROUP}=4 but compute.runs_per_gpu is 8" in done.stdout + done.stderr
    assert not (tmp_path / "w" / "resources").exists()  # nothing ran
