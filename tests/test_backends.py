"""The model's guarantees on the JAX backend too: cache == naive, determinism, kill-and-resume.

Keras fixes its backend when it is first imported, and this test process runs on TensorFlow, so
the checks run in a fresh pytest process with KERAS_BACKEND=jax: the same tests as on TensorFlow
(tests/test_model_learner.py reads its backend from the environment), not a copy of them. The
smoke workflow on JAX is in tests/test_workflow_smoke.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from alnsfw.model.settings import xla_cache_environment

pytestmark = pytest.mark.xdist_group("jax_learner")  # tests/conftest.py

ROOT = Path(__file__).resolve().parents[1]

# One test per guarantee, the cheapest variant of each (the full file takes ~3x longer on JAX,
# which compiles every new batch shape with XLA).
JAX_CHECKS = [
    "test_top_model_on_cache_equals_full_model",  # cached == full model, float32 and float16
    "test_naive_and_cached_paths_train_identically",  # cached == naive training
    "test_same_seed_same_results and bank",  # determinism (and another seed differs)
    "test_save_load_continues_identically and online",  # resume == uninterrupted
    "test_streaming_from_hdf5_equals_in_memory",  # prefetch thread changes nothing
]


def test_learner_guarantees_hold_on_jax(tmp_path):
    pytest.importorskip("jax")
    # XLA's persistent cache: learners of the same shape compile once, not once per test.
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    env |= xla_cache_environment(tmp_path / "xla-cache")  # as the workflow sets it
    selection = " or ".join(f"({check})" for check in JAX_CHECKS)
    command = [sys.executable, "-m", "pytest", "tests/test_model_learner.py", "-q", "-n", "0"]
    command += ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", "-k", selection]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert f"{len(JAX_CHECKS)} passed" in done.stdout, done.stdout[-2000:]  # none deselected


def test_backend_is_fixed_at_first_import():
    """A config asking for another backend than the process's Keras fails with the fix named."""
    import keras

    from alnsfw.model.backend import select_backend
    from alnsfw.schema import ConfigError

    current = keras.backend.backend()
    other = "jax" if current != "jax" else "tensorflow"
    select_backend(current)  # the same backend: fine
    with pytest.raises(ConfigError, match=f"already imported .* '{current}' backend"):
        select_backend(other)
    with pytest.raises(ConfigError, match="choose one of tensorflow, jax"):
        select_backend("theano")


def test_devices_are_logged_and_a_missing_gpu_is_an_error(caplog):
    """compute.gpu: true on a machine whose backend sees no GPU stops with what to do."""
    import keras

    from alnsfw.model.backend import list_devices, prepare
    from alnsfw.schema import ConfigError

    current = keras.backend.backend()
    assert any(d.startswith("cpu") for d in list_devices())
    with caplog.at_level("INFO", logger="alnsfw.model.backend"):
        prepare({"compute": {"backend": current}}, seed=0)
    assert f"Keras backend {current} sees devices: cpu" in caplog.text
    if any(d.startswith(("gpu", "cuda")) for d in list_devices()):
        pytest.skip("this machine has a GPU")  # tests never depend on one
    with pytest.raises(ConfigError, match=f"compute.gpu: true, but the {current} backend sees no"):
        prepare({"compute": {"backend": current, "gpu": True}}, seed=0)
    caplog.clear()
    with caplog.at_level("WARNING", logger="alnsfw.model.backend"):
        prepare({"compute": {"backend": current, "gpu": True, "missing_gpu": "warn"}}, seed=0)
    assert "sees no GPU" in caplog.text and "compute.missing_gpu: warn" in caplog.text


def test_tensorflow_import_skips_jax_and_pyplot_then_allows_them():
    """import_tensorflow_quietly hides jax and matplotlib during TensorFlow's import only."""
    code = (
        "import sys\n"
        "from alnsfw.model.backend import import_tensorflow_quietly\n"
        "import_tensorflow_quietly()\n"
        "assert 'keras' in sys.modules and 'tensorflow' in sys.modules\n"
        "print(sorted(m for m in ('jax', 'matplotlib') if m in sys.modules))\n"
        "import matplotlib.pyplot, jax\n"
        "print('later imports work')\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["[]", "later imports work"]


def test_jax_jobs_never_import_tensorflow():
    """Seeding a JAX job (Keras' set_random_seed seeds TensorFlow too, when installed) leaves
    TensorFlow unimported: no 3 s import and no TensorFlow log lines in a JAX job."""
    pytest.importorskip("jax")
    code = (
        "import sys\n"
        "from alnsfw.model.backend import select_backend, enable_determinism\n"
        "select_backend('jax')\n"
        "enable_determinism(3)\n"
        "import keras\n"
        "print(keras.backend.backend(), 'tensorflow' in sys.modules)\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("KERAS_BACKEND", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["jax", "False"]
