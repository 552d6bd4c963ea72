"""The engine behind a model file: ONNX Runtime for `.onnx`, Keras for `.keras`.

Both give one method, `predict_on_batch(x) -> [n, 2]` probabilities for a float32 batch of
HxWx3 RGB 0-255 images, so scoring code does not know which it has. ONNX Runtime is what the
light install (`alnsfw[predict]`) has: importing this module, and loading an `.onnx` file,
imports neither TensorFlow nor Keras (tests/test_deploy.py runs it with both blocked).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = (".onnx", ".keras")


class OnnxModel:
    """An exported `.onnx` classifier in an onnxruntime InferenceSession (CPU)."""

    # any batch size runs as is: padding one image to a batch of 32 would cost 32 forward passes
    fixed_batch = False

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        threads = threads or int(os.environ.get("ALNSFW_THREADS", "0") or 0)
        if threads:
            # ONNX Runtime otherwise takes every core of the machine, shared or not.
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        """[n, 2] class probabilities of a batch (any real dtype; cast to float32)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        return np.asarray(self.session.run(None, {self.input_name: x})[0])


class KerasModel:
    """An exported `.keras` classifier (TensorFlow or the configured Keras backend)."""

    # pad short batches to one shape: each new shape makes the backend trace the model again
    fixed_batch = True

    def __init__(self, path: str | Path) -> None:
        import keras  # only here: the light install has no Keras

        self.model = keras.saving.load_model(path, compile=False)

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        """[n, 2] class probabilities of a batch."""
        return np.asarray(self.model.predict_on_batch(np.asarray(x, dtype=np.float32)))


def load_engine(path: str | Path, threads: int | None = None) -> Any:  # noqa: ANN401
    """OnnxModel for `.onnx`, KerasModel for `.keras`; a clear error for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix == ".onnx":
        try:
            return OnnxModel(path, threads)
        except ImportError as err:
            raise ImportError(
                f"{path}: scoring an .onnx model needs onnxruntime: pip install 'alnsfw[predict]'"
            ) from err
    if suffix == ".keras":
        try:
            return KerasModel(path)
        except ImportError as err:
            raise ImportError(
                f"{path}: a .keras model needs TensorFlow and Keras (pip install "
                "'alnsfw[workflow]'); the light install scores the .onnx file beside it"
            ) from err
    raise ValueError(f"model file {path}: use the .onnx or .keras file that export_model wrote")
