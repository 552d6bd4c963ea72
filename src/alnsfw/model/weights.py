"""The weights a run trained, saved by layer name so that rule export_model can rebuild its network.

Every run (active learning at its final cycle, full supervision) writes `final_weights.h5`: the
weights of the layers it trained (from `model.trainable_from` on, and the head), ~1/5 of the
network at 224 px, with the SHA-256 fingerprint of the frozen trunk, which is rebuilt from the
config rather than stored. It lives in `model` because the learner writes the file at training
time; alnsfw.predict.export reads it back. It imports no Keras at import time (network.py is
imported inside the functions): export_model imports this module before it sets the job's Keras
backend, which is fixed at Keras' first import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from alnsfw.io import atomic_path

FORMAT = "alnsfw-model/1"
"""Format tag of the weights file and of the exported model's JSON."""


def _trained_layers(net: Any) -> list[tuple[str, Any]]:  # noqa: ANN401
    """(group, layer) of every layer a run can change: base from first_trainable on, the head."""
    layers = [("base", layer) for layer in net.base.layers[net.first_trainable :]]
    layers += [("head", layer) for layer in net.head.layers]
    return [(group, layer) for group, layer in layers if layer.weights]


def save_trainable_weights(net: Any, path: str | Path) -> None:  # noqa: ANN401
    """Write the trained layers' weights (and the trunk fingerprint) to `path`, atomically."""
    from alnsfw.model.network import trunk_fingerprint

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for group, layer in _trained_layers(net):
            g = f.create_group(f"{group}/{layer.name}")
            for i, value in enumerate(layer.get_weights()):
                g.create_dataset(f"{i:03d}", data=np.asarray(value))
        f.attrs["format"] = FORMAT
        f.attrs["trunk_fingerprint"] = trunk_fingerprint(net)


def load_trainable_weights(net: Any, path: str | Path) -> None:  # noqa: ANN401
    """Inverse of save_trainable_weights; refuses a file made with another trunk or layout."""
    from alnsfw.model.network import trunk_fingerprint

    with h5py.File(path, "r") as f:
        if f.attrs.get("trunk_fingerprint") != trunk_fingerprint(net):
            raise ValueError(
                f"{path} was trained on another frozen trunk than the one this config builds "
                "(model.weights / model.weights_seed changed?): rerun the run, then export."
            )
        expected = {f"{group}/{layer.name}" for group, layer in _trained_layers(net)}
        stored = {f"{g}/{name}" for g in f for name in f[g]}
        if expected != stored:
            raise ValueError(
                f"{path} holds the layers {sorted(stored ^ expected)} that this config's network "
                "does not have, or lacks them (model.trainable_from or model.head changed?)."
            )
        for group, layer in _trained_layers(net):
            g = f[f"{group}/{layer.name}"]
            layer.set_weights([g[k][()] for k in sorted(g)])
