"""Everything that depends on Keras' backend (TensorFlow or JAX), in one place.

The rest of the model code uses Keras APIs only, so one code runs on any backend: many GPU
machines ship JAX but no TensorFlow. What cannot be said in Keras lives here:

- choosing the backend (`compute.backend`): Keras reads `KERAS_BACKEND` once, when it is first
  imported, so `select_backend` must run before that in every job process, and verifies it;
- threads, determinism flags, GPU memory growth/share, and the device list a job logs;
- whether a model's steps are compiled with XLA (JAX always; TensorFlow only when asked);
- how an epoch's batches reach Keras' train step (`EpochTrainer`: in one graph on TensorFlow).

Importing this module does not import Keras.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from alnsfw.schema import ConfigError

log = logging.getLogger(__name__)

# Keras 3 also runs on PyTorch, and the model code uses Keras APIs only, but PyTorch is neither
# locked nor in any env nor tested here, so it is not offered (docs/gpu.md).
BACKENDS = ("tensorflow", "jax")


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


# Imported by TensorFlow 2.21 and Keras 3.15 while they load, used by neither in a model job:
# TF Lite's JAX bridge (tensorflow/lite/python/util.py, `from jax import jit`, 0.4 s) and Keras'
# plotting helpers (keras/src/visualization, `import matplotlib.pyplot`, 0.5 s). Both imports
# sit in `try: ... except ImportError`, made for installs without them.
SKIPPED_AT_TF_IMPORT = ("jax", "matplotlib")


@contextlib.contextmanager
def hidden_modules(*names: str) -> Iterator[None]:
    """Inside the block, `import name` raises ImportError for each of `names` not yet imported
    (`sys.modules[name] = None`); after it, they import as usual. For libraries that import an
    optional module we never use, inside `try: ... except ImportError`."""
    hidden = [name for name in names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and Keras, which it loads) quietly and without optional extras.

    Quietly: with the process's stderr (file descriptor 2) closed for the import. TensorFlow
    2.21 logs "oneDNN custom operations are on" and "All log messages before
    absl::InitializeLog() is called ..." through absl while its library loads, before
    TF_CPP_MIN_LOG_LEVEL applies: four lines per job on a user's terminal that say nothing about
    the run (setting TF_ENABLE_ONEDNN_OPTS does not stop them). Only the import is silenced; an
    import error still raises, with its traceback, once stderr is back. A user who set
    TF_CPP_MIN_LOG_LEVEL below 3 asked for TensorFlow's messages and gets them.

    Without extras: the modules of SKIPPED_AT_TF_IMPORT that are not imported yet are hidden
    for the import (`sys.modules[name] = None` makes `import name` raise ImportError, which
    TensorFlow and Keras catch), then unhidden, so a later `import jax` or `import matplotlib`
    in this process works as usual. That is 0.9 s of the 4.5 s every model job spends
    importing TensorFlow (docs/speed.md); only Keras' plotting helpers stay off in the process.
    """
    if "tensorflow" in sys.modules:
        return
    quiet = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")) >= 3
    if quiet:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        if quiet:
            os.dup2(devnull, 2)
        with hidden_modules(*SKIPPED_AT_TF_IMPORT):
            import tensorflow  # noqa: F401
    finally:
        if quiet:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def select_from_config(cfg: dict[str, Any]) -> None:
    """`select_backend` with the `compute` section of `cfg` (schema defaults for missing keys)."""
    from alnsfw.model.settings import ComputeSettings

    c = ComputeSettings.from_config(cfg)
    select_backend(c.backend, c.threads, c.gpu, c.gpu_memory_fraction)


def model_job_config(smk: Any, **sections: Any) -> dict[str, Any]:  # noqa: ANN401
    """The config of a trunk job (cache, bank, pretraining) from its rule's `snakemake` object.

    `sections` (model, training, ...) plus `compute` from the rule's params with the rule's
    threads, and the runtime keys of the submitting config (GPU, memory: `with_runtime`). Selects
    the Keras backend, so call it before anything imports Keras.
    """
    from alnsfw.model.settings import with_runtime

    compute = {**smk.params.compute, "threads": smk.threads}
    cfg = with_runtime({**sections, "compute": compute}, smk.config)
    select_from_config(cfg)
    return cfg


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
    return [name]


def enable_determinism(seed: int) -> None:
    """Seed Python, NumPy and Keras, and ask the backend for deterministic kernels.

    Determinism is what makes a resumed run equal to an uninterrupted one. On CPU it is exact on
    TensorFlow and JAX; on GPU, JAX gets `--xla_gpu_deterministic_ops` (select_backend) and
    TensorFlow op determinism (some speed; a few ops may refuse to run and TF then raises).
    """
    import keras

    name = keras.backend.backend()
    if name == "tensorflow":
        keras.utils.set_random_seed(int(seed))
    else:
        # Keras also seeds TensorFlow whenever it is installed, importing it: 3 s and its log
        # lines in every JAX job, which never runs a TensorFlow op.
        with hidden_modules("tensorflow"):
            keras.utils.set_random_seed(int(seed))
    if name == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def compile_options(jit: bool) -> dict[str, Any]:
    """`model.compile` options for the backend: XLA on JAX always (its only fast path),
    on TensorFlow only when `jit` (measured slower on 2 CPU cores)."""
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


def runs_in_graph(model: Any) -> bool:  # noqa: ANN401
    """Whether `model`'s epochs and predictions run as one tf.function (EpochTrainer,
    TablePredictor): on TensorFlow without XLA. JAX and XLA keep Keras' per-batch calls."""
    import keras

    return keras.backend.backend() == "tensorflow" and not model.jit_compile


def graph_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` as one TensorFlow graph (tf.function, no XLA) on TensorFlow; unchanged on JAX.

    For Keras layers called outside a model (the bank's augmentation): eager calls pay each
    layer's Python and per-op dispatch on every batch. The ops are the same, seeded random ops
    included, so the results are the same.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return fn
    import tensorflow as tf

    return tf.function(fn, jit_compile=False)


class ResidentTables:
    """The in-memory arrays (feature cache, bank) that in-graph epochs and predictions read, each
    held once as a tensor.

    One per learner, shared by its EpochTrainer and TablePredictor: without a bank both read the
    feature cache, which would otherwise be copied into two tensors. Arrays over `limit_mb` (a
    paper-size cache) stay in NumPy and are batched in Python: no second copy of them at all.
    """

    LIMIT_MB = 512

    def __init__(self, limit_mb: float = LIMIT_MB) -> None:
        self.limit_mb = float(limit_mb)
        self._held: list[tuple[np.ndarray, Any]] = []  # (array, its tensor)

    def fits(self, table: np.ndarray | None) -> bool:
        """Whether `table` is held as a tensor (else its batches are made in Python)."""
        return table is not None and table.nbytes <= self.limit_mb * 2**20

    def tensor(self, table: np.ndarray) -> Any:  # noqa: ANN401
        """`table` as a tensor, made on first use; the same array always gives the same one."""
        for array, tensor in self._held:
            if array is table:
                return tensor
        import tensorflow as tf

        tensor = tf.constant(table)
        self._held.append((table, tensor))
        return tensor


class EpochTrainer:
    """Keras' own `train_step` over an epoch's batches; the epoch's mean loss and accuracy.

    Why not `train_on_batch` per batch: on TensorFlow every call resets and reads the metric
    trackers and enters a tf.function, about 1 ms of a 4 ms batch of the demo's head, and each
    batch is gathered and converted to a tensor in Python (docs/speed.md). Here, on TensorFlow
    without XLA, an epoch's batches run in one tf.function, a while loop over the model's
    `train_step` (what Keras' `steps_per_execution` does inside `fit`), and the trackers are
    reset once per epoch and read once. `epoch_on_table` also gathers the batches inside that
    loop from an array held as a tensor (the feature cache or bank, when in memory and small
    enough: ResidentTables); `epoch` takes batches made in Python, in chunks of up to
    `chunk_mb`. Same batches, same order, same step: the weights are bit-identical to the
    per-batch loop (tests/test_model_learner.py checks both). JAX and XLA keep `train_on_batch`,
    averaging its per-batch logs by batch size, as the trackers do.
    """

    def __init__(
        self,
        model: Any,  # noqa: ANN401
        batch_size: int,
        chunk_mb: float = 64.0,
        tables: ResidentTables | None = None,
    ) -> None:
        self.model, self.batch_size = model, int(batch_size)
        self.chunk_bytes = int(chunk_mb * 2**20)
        self.in_graph = runs_in_graph(model)
        self.tables = tables if tables is not None else ResidentTables()
        self._graph: Any = None
        self._table_graph: tuple[np.ndarray, Any] | None = None  # (array, its graph)

    def holds(self, table: np.ndarray | None) -> bool:
        """Whether `epoch_on_table` takes this array (else make batches for `epoch`)."""
        return self.in_graph and self.tables.fits(table)

    def epoch(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
        """Train on `batches` (float32 inputs, one-hot targets), in order; (loss, accuracy)."""
        if not self.in_graph:
            sums = np.zeros(3)
            for x, y in batches:
                logs = self.model.train_on_batch(x, y, return_dict=True)
                sums += (len(y), float(logs["loss"]) * len(y), float(logs["accuracy"]) * len(y))
            return float(sums[1] / sums[0]), float(sums[2] / sums[0])
        self.model.reset_metrics()
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        size = 0
        for x, y in batches:
            xs.append(x)
            ys.append(y)
            size += x.nbytes
            if size >= self.chunk_bytes:
                self._run(xs, ys)
                xs, ys, size = [], [], 0
        if xs:
            self._run(xs, ys)
        return self._result()

    def epoch_on_table(
        self, table: np.ndarray, index: np.ndarray, targets: np.ndarray
    ) -> tuple[float, float]:
        """Train on inputs `table[index[i]]` (index: rows, or [n, 2] (row, view) pairs into a
        bank), cast to float32 as NumPy would, with one-hot `targets[i]`, in order, in batches.
        Only for a table that `holds` accepts."""
        if self._table_graph is None or self._table_graph[0] is not table:
            self._table_graph = (table, self._make_table_graph(table, index))
        self.model.reset_metrics()
        self._table_graph[1](
            self.tables.tensor(table), index.astype(np.int64), targets.astype(np.float32)
        )
        return self._result()

    def _result(self) -> tuple[float, float]:
        logs = self.model.get_metrics_result()
        return float(logs["loss"]), float(logs["accuracy"])

    def _run(self, xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        x = xs[0] if len(xs) == 1 else np.concatenate(xs)
        y = ys[0] if len(ys) == 1 else np.concatenate(ys)
        if self._graph is None:
            self._graph = self._make_graph(x.shape[1:], y.shape[1:])
        self._graph(x, y)

    def _make_graph(self, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> Any:  # noqa: ANN401
        import tensorflow as tf

        model, batch = self.model, self.batch_size

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, *x_shape], tf.float32),
                tf.TensorSpec([None, *y_shape], tf.float32),
            ]
        )
        def run(x: Any, y: Any) -> None:  # noqa: ANN401
            for start in tf.range(0, tf.shape(x)[0], batch):
                model.train_step((x[start : start + batch], y[start : start + batch], None))

        return run

    def _make_table_graph(self, table: np.ndarray, index: np.ndarray) -> Any:  # noqa: ANN401
        import tensorflow as tf

        model, batch, pairs = self.model, self.batch_size, index.ndim == 2

        @tf.function(
            input_signature=[
                tf.TensorSpec(table.shape, tf.as_dtype(table.dtype)),
                tf.TensorSpec([None, *index.shape[1:]], tf.int64),
                tf.TensorSpec([None, model.output_shape[-1]], tf.float32),
            ]
        )
        def run(table: Any, index: Any, y: Any) -> None:  # noqa: ANN401
            for start in tf.range(0, tf.shape(index)[0], batch):
                rows = index[start : start + batch]
                x = tf.gather_nd(table, rows) if pairs else tf.gather(table, rows)
                model.train_step((tf.cast(x, tf.float32), y[start : start + batch], None))

        return run


class TablePredictor:
    """`predict_on_batch` over rows of an in-memory array, the batches made inside one graph.

    The prediction counterpart of `EpochTrainer.epoch_on_table` (same reasons, same limits):
    on TensorFlow without XLA, rows are gathered, cast to float32 and zero-padded to whole
    batches of `batch_size` inside one tf.function that calls the model in inference mode per
    batch, as `predict_on_batch` does; the probabilities are bit-identical to the per-batch
    calls (tests/test_model_learner.py).
    """

    def __init__(
        self,
        model: Any,  # noqa: ANN401
        batch_size: int,
        tables: ResidentTables | None = None,
    ) -> None:
        self.model, self.batch_size = model, int(batch_size)
        self.in_graph = runs_in_graph(model)
        self.tables = tables if tables is not None else ResidentTables()
        self._graph: tuple[np.ndarray, Any] | None = None  # (array, its graph)

    def holds(self, table: np.ndarray | None) -> bool:
        """Whether `predict` takes this array (else predict batch by batch)."""
        return self.in_graph and self.tables.fits(table)

    def predict(self, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The model's outputs for `table[rows]`, as float32 [len(rows), outputs]."""
        if len(rows) == 0:
            return np.zeros((0, self.model.output_shape[-1]), np.float32)
        if self._graph is None or self._graph[0] is not table:
            self._graph = (table, self._make_graph(table))
        tensor = self.tables.tensor(table)
        return np.asarray(self._graph[1](tensor, np.asarray(rows, dtype=np.int64)))

    def _make_graph(self, table: np.ndarray) -> Any:  # noqa: ANN401
        import tensorflow as tf

        model, batch = self.model, self.batch_size
        pad = [[0, 0]] * (table.ndim - 1)

        @tf.function(
            input_signature=[
                tf.TensorSpec(table.shape, tf.as_dtype(table.dtype)),
                tf.TensorSpec([None], tf.int64),
            ]
        )
        def run(table: Any, rows: Any) -> Any:  # noqa: ANN401
            n = tf.shape(rows)[0]
            out = tf.TensorArray(tf.float32, size=(n + batch - 1) // batch, infer_shape=False)
            for i in tf.range((n + batch - 1) // batch):
                x = tf.cast(tf.gather(table, rows[i * batch : (i + 1) * batch]), tf.float32)
                x = tf.pad(x, [[0, batch - tf.shape(x)[0]], *pad])
                out = out.write(i, tf.cast(model(x, training=False), tf.float32))
            return out.concat()[:n]

        return run
