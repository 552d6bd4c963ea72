"""Several training jobs on one GPU: resources, memory share and conda env of a training job.

At the paper's batch of 32 one training run uses a small part of a modern GPU (GPU-NOTES: one
process 3,000-4,100 img/s, eight sharing an H200 25,600), so the workflow can pack
`compute.runs_per_gpu` training jobs onto one GPU:

- on a workstation, each training job holds one `gpu_slots` resource; `snakemake
  --resources gpu_slots=N` lets N of them run at once;
- on SLURM, the training rules join the job group `gpu_pack`; `--group-components gpu_pack=N`
  submits N runs as one job that asks for one GPU (`gres=gpu:1`, a string resource, which
  Snakemake does not sum over a group as it would `gpu=1`).

Each packed process is limited to its share of the GPU memory, 0.9/N. The share travels as
environment variables, set by the job's entry script before Keras is imported; they are the only
backend-specific part. JAX: XLA_PYTHON_CLIENT_MEM_FRACTION caps the process (no preallocation:
it takes what it needs up to the cap). TensorFlow has no such variable (a cap needs its API
before the first op): TF_FORCE_GPU_ALLOW_GROWTH makes each process take memory as it needs it
instead of the whole card, which packs as well as the models fit. An explicit
compute.gpu_memory_fraction (alnsfw.model.backend) wins over the share computed here. None of
this changes a run's numbers, so it is not part of the rules' params (no reruns).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from functools import cache
from typing import Any

from alnsfw.schema import schema_defaults

GROUP = "gpu_pack"
# Left to the driver, the CUDA context of each process and fragmentation: the N shares together
# take this much of the GPU's memory.
USABLE_FRACTION = 0.9
MODEL_ENV = "../../envs/model.yaml"
MODEL_GPU_ENV = "../../envs/model-gpu.yaml"


@cache
def _schema_compute() -> dict[str, Any]:
    return schema_defaults("compute")


def _with_defaults(compute: Mapping[str, Any]) -> dict[str, Any]:
    """`compute` with the schema's defaults under it: a partial section (tests, a hand-made
    config) reads the same values as a validated one, from the one place that states them."""
    return {**_schema_compute(), **compute}


def runs_per_gpu(compute: Mapping[str, Any]) -> int:
    """How many training jobs share one GPU: 1 without a GPU, else compute.runs_per_gpu."""
    compute = _with_defaults(compute)
    if not compute["gpu"]:
        return 1
    return int(compute["runs_per_gpu"])


def packed(compute: Mapping[str, Any]) -> bool:
    """True when training jobs share a GPU (compute.gpu and runs_per_gpu > 1)."""
    return runs_per_gpu(compute) > 1


def memory_fraction(compute: Mapping[str, Any]) -> float | None:
    """Share of the GPU memory one packed job may use; None when not packed (backend default)."""
    if not packed(compute):
        return None
    return round(USABLE_FRACTION / runs_per_gpu(compute), 4)


def gpu_share_env(compute: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables that limit one packed job to its share, for compute.backend."""
    fraction = memory_fraction(compute)
    if fraction is None or compute.get("gpu_memory_fraction") is not None:  # schema default: null
        return {}
    backend = _with_defaults(compute)["backend"]
    if backend == "jax":
        return {
            "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
            "XLA_PYTHON_CLIENT_MEM_FRACTION": str(fraction),
        }
    return {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}  # tensorflow, the other of backend.BACKENDS


def apply_gpu_share(
    compute: Mapping[str, Any], environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """Set gpu_share_env in the environment (before Keras is imported); returns what was set.

    A variable the user already set wins, so a hand-tuned XLA_PYTHON_CLIENT_MEM_FRACTION stays.
    """
    environ = os.environ if environ is None else environ
    applied = {}
    for key, value in gpu_share_env(compute).items():
        if key not in environ:
            environ[key] = value
            applied[key] = value
    return applied


def training_resources(compute: Mapping[str, Any]) -> dict[str, int | str]:
    """The GPU part of a training rule's resources.

    Not packed: `gpu=1` with compute.gpu (the SLURM plugin's --gpus=1), else nothing. Packed:
    `gpu_slots=1` (local scheduling) and `gres="gpu:1"`, which a group job takes once.
    """
    if not _with_defaults(compute)["gpu"]:
        return {"gpu": 0, "gpu_slots": 0}
    if not packed(compute):
        return {"gpu": 1, "gpu_slots": 1}
    return {"gpu": 0, "gpu_slots": 1, "gres": "gpu:1"}


def training_group(compute: Mapping[str, Any]) -> str | None:
    """Job group of the training rules: GROUP when packed, else none."""
    return GROUP if packed(compute) else None


def model_env_file(compute: Mapping[str, Any]) -> str:
    """Conda env (relative to workflow/rules/) of the training rules: the CUDA build with a GPU."""
    return MODEL_GPU_ENV if _with_defaults(compute)["gpu"] else MODEL_ENV


def check_group_components(compute: Mapping[str, Any], group_components: Mapping[str, int]) -> None:
    """Refuse `--group-components gpu_pack=M` that disagrees with compute.runs_per_gpu = N.

    M runs in one SLURM job share its one GPU, each limited to 1/N of its memory: M > N would
    overcommit the memory, M < N waste it.
    """
    m = group_components.get(GROUP)
    if m is None:
        return
    n = runs_per_gpu(compute)
    if not packed(compute):
        raise ValueError(
            f"--group-components {GROUP}={m} packs training jobs, but compute.runs_per_gpu is {n} "
            f"(or compute.gpu is false): set compute.runs_per_gpu: {m} and compute.gpu: true, "
            f"or drop --group-components {GROUP}"
        )
    if m != n:
        raise ValueError(
            f"--group-components {GROUP}={m} but compute.runs_per_gpu is {n}: both must be the "
            f"number of runs that share one GPU (docs/gpu.md, Packing)"
        )
