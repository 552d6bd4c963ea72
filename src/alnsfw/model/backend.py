"""Everything that depends on Keras' backend (TensorFlow, JAX or PyTorch), in one place.

The rest of the model code uses Keras APIs only, so one code runs on any backend: many GPU
machines ship JAX or PyTorch but no TensorFlow. What cannot be said in Keras lives here:

- choosing the backend (`compute.backend`): Keras reads `KERAS_BACKEND` once, when it is first
  imported, so `select_backend` must run before that in every job process, and verifies it;
- threads, determinism flags, GPU memory growth/share, and the device list a job logs;
- whether a model's steps are compiled with XLA (JAX always; TensorFlow only when asked).

Importing this module does not import Keras.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from alnsfw.schema import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("tensorflow", "jax", "torch")


def _keras_backend_in_use() -> str | None:
    """The backend of an already imported Keras, or None if Keras is not imported yet."""
    if "keras" not in sys.modules:
        return None
    return str(sys.modules["keras"].backend.backend())


def select_backend(
    name: str,
    threads: int = 1,
    gpu: bool = False,
    gpu_memory_fraction: float | None = None,
) -> None:
    """Make Keras use backend `name` in this process, with `threads` CPU threads.

    Sets `KERAS_BACKEND` and the environment the backend reads when it starts (XLA flags,
    memory preallocation, visible devices), so call it before anything imports Keras: the rule
    scripts do, first thing. If Keras is already imported with another backend, raises: a
    process cannot switch, and silently running on the wrong one would change the numbers.
    `gpu: false` hides GPUs from the backend (CPU results do not depend on the machine).
    """
    if name not in BACKENDS:
        raise ConfigError(f"compute.backend = '{name}': choose one of {', '.join(BACKENDS)}.")
    current = _keras_backend_in_use()
    if current is not None:
        if current != name:
            raise ConfigError(
                f"compute.backend = '{name}', but Keras was already imported in this process "
                f"with the '{current}' backend. The backend is fixed at Keras' first import: "
                "run the job in a fresh process (the workflow does), or set "
                f"KERAS_BACKEND={name} before importing Keras."
            )
        return
    os.environ["KERAS_BACKEND"] = name
    n = str(max(1, int(threads)))
    os.environ["OMP_NUM_THREADS"] = n
    if name == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if int(n) == 1 and "intra_op_parallelism_threads" not in flags:
            # XLA's CPU backend has no thread-count knob beyond one; n > 1 uses the cores the
            # process may run on (its CPU affinity).
            flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        if gpu and "xla_gpu_deterministic_ops" not in flags:
            flags += " --xla_gpu_deterministic_ops=true"
        os.environ["XLA_FLAGS"] = flags.strip()
        if not gpu:
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
        else:
            os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
            if gpu_memory_fraction is not None:
                os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{gpu_memory_fraction:.3f}"
    elif not gpu:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    if name == "tensorflow":
        # 3: TensorFlow's C++ side prints nothing below FATAL. Level 2 still let through the
        # E0000 "NodeDef mentions attribute use_unbounded_threadpool" lines that every fit on
        # tf.data printed to the terminal (harmless: Keras' graph names an attribute this TF
        # build ignores). Real failures still raise Python exceptions and reach the job's log.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import_tensorflow_quietly()


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr (file descriptor 2) closed for the import.

    TensorFlow 2.21 logs "oneDNN custom operations are on" and "All log messages before
    absl::InitializeLog() is called ..." through absl while its library loads, before
    TF_CPP_MIN_LOG_LEVEL applies: four lines per job on a user's terminal that say nothing about
    the run (setting TF_ENABLE_ONEDNN_OPTS does not stop them). Only the import is silenced; an
    import error still raises, with its traceback, once stderr is back. A user who set
    TF_CPP_MIN_LOG_LEVEL below 3 asked for TensorFlow's messages and gets them.
    """
    if "tensorflow" in sys.modules or int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")) < 3:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def select_from_config(cfg: dict[str, Any]) -> None:
    """`select_backend` with the `compute` section of `cfg` (schema defaults for missing keys)."""
    from alnsfw.model.settings import ComputeSettings

    c = ComputeSettings.from_config(cfg)
    select_backend(c.backend, c.threads, c.gpu, c.gpu_memory_fraction)


def prepare(cfg: dict[str, Any], seed: int, threads: int | None = None) -> None:
    """Set up a model job: backend (verified), threads, seeds, determinism, devices.

    Call before building any model. `threads` overrides `compute.threads` (pretraining has its
    own). Logs the devices the backend sees; with `compute.gpu: true` and no GPU visible, raises
    a ConfigError that says what to install.
    """
    from alnsfw.model.settings import ComputeSettings

    c = ComputeSettings.from_config(cfg)
    n = c.threads if threads is None else max(1, int(threads))
    select_backend(c.backend, n, c.gpu, c.gpu_memory_fraction)
    _configure_threads(c.backend, n)
    if c.gpu and c.backend == "tensorflow":
        _tf_memory(c.gpu_memory_fraction)
    devices = list_devices()
    log.info("Keras backend %s sees devices: %s", c.backend, ", ".join(devices) or "none")
    if c.gpu and not any(d.lower().startswith(("gpu", "cuda")) for d in devices):
        message = (
            f"compute.gpu: true, but the {c.backend} backend sees no GPU (devices: "
            f"{', '.join(devices)}). Install the backend's GPU build (pip install '.[gpu]' for "
            "TensorFlow, or jax[cuda12] for JAX; see docs/gpu.md) and check nvidia-smi, or set "
            "compute.gpu: false."
        )
        if c.missing_gpu != "warn":
            raise ConfigError(message)
        # A test cluster's fake GPUs (GRES on /dev/null) exercise the scheduler path only.
        log.warning("%s Running on the CPU (compute.missing_gpu: warn).", message)
    enable_determinism(seed)


def _configure_threads(name: str, n: int) -> None:
    """Intra-op parallelism n, inter-op 1 (several multi-threaded ops side by side would use
    up to n*n threads). Must run before the backend executes its first op."""
    if name == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError as err:  # TF already initialised: keep whatever it has
            current = tf.config.threading.get_intra_op_parallelism_threads()
            if current != n:
                log.warning("could not set TF threads to %d (already %d): %s", n, current, err)
    elif name == "torch":
        import torch

        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set in this process
            pass
    # jax: threads are fixed by XLA_FLAGS in select_backend, before JAX starts.


def _tf_memory(fraction: float | None) -> None:
    """TensorFlow on GPU: take memory as needed (growth) instead of all of it at start.

    TensorFlow has no per-process share of "the card" before it starts, so a
    `compute.gpu_memory_fraction` is enforced on JAX only; growth keeps packed TF jobs from
    reserving the whole card each.
    """
    import tensorflow as tf

    if fraction is not None:
        log.warning("compute.gpu_memory_fraction applies to JAX; TensorFlow uses memory growth")
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)


def list_devices() -> list[str]:
    """The devices the active backend sees, e.g. ['cpu:0'] or ['gpu:0 (NVIDIA H100)']."""
    import keras

    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        return [
            f"{d.device_type.lower()}:{i}"
            for i, d in enumerate(tf.config.list_physical_devices())
            if d.device_type in ("CPU", "GPU")
        ]
    if name == "jax":
        import jax

        return [f"{d.platform}:{d.id} ({d.device_kind})" for d in jax.devices()]
    if name == "torch":
        import torch

        out = ["cpu:0"]
        out += [
            f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())
        ]
        return out
    return [name]


def enable_determinism(seed: int) -> None:
    """Seed Python, NumPy and Keras, and ask the backend for deterministic kernels.

    Determinism is what makes a resumed run equal to an uninterrupted one. On CPU it is exact on
    TensorFlow and JAX; on GPU, JAX gets `--xla_gpu_deterministic_ops` (select_backend) and
    TensorFlow op determinism (some speed; a few ops may refuse to run and TF then raises).
    """
    import keras

    keras.utils.set_random_seed(int(seed))
    name = keras.backend.backend()
    if name == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif name == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def compile_options(jit: bool) -> dict[str, Any]:
    """`model.compile` options for the backend: XLA on JAX always (its only fast path),
    on TensorFlow only when `jit` (measured slower on 2 CPU cores), never on PyTorch."""
    import keras

    name = keras.backend.backend()
    if name == "jax":
        return {"jit_compile": True}
    if name == "tensorflow":
        return {"jit_compile": bool(jit)}
    return {"jit_compile": False}


def force_jit(model: Any, jit: bool) -> None:  # noqa: ANN401
    """Compile `model`'s train/predict steps with XLA when `compile_options` says so, even where
    Keras would refuse: its augmentation layers say "no XLA" (true of TensorFlow's kernels only;
    they jit fine on JAX), and TF op determinism turns off `jit_compile` for the whole model."""
    model._jit_compile = compile_options(jit)["jit_compile"]  # noqa: SLF001


def backend_name() -> str:
    """The backend Keras runs on in this process (imports Keras)."""
    import keras

    return str(keras.backend.backend())
