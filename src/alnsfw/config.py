"""Checks of the config that a JSON schema cannot express (files that must exist, cross-key rules).

Snakemake's `validate` already rejected wrong types and unknown keys and filled in defaults; this
runs right after it, still before any job, so a bad setup fails with the key and the fix named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key and what to do."""


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError for settings that would only fail later, inside a job."""
    data = config["data"]
    root = Path(data["root"])
    if data["source"] == "npdi" and not (root / "Database").is_dir():
        raise ConfigError(
            f"data.root = '{root}' holds no NPDI copy (no folder '{root / 'Database'}'). "
            "Download the Pornography-800 dataset from its authors, unpack it so that "
            "Database/vPorn, Database/vNonPornEasy and Database/vNonPornDifficulty exist, and "
            "set data.root to that folder (e.g. --config data='{root: /path/to/NPDI}' or in "
            "your preset)."
        )
    labels = data["frame_labels"]
    if labels not in ("auto", "none") and data["source"] == "npdi" and not Path(labels).is_file():
        raise ConfigError(
            f"data.frame_labels = '{labels}' is not a file. Give a CSV with columns "
            "video,frame,label, or 'auto' / 'none'."
        )
    weights = config["model"]["weights"]
    if weights not in ("imagenet", "none", "he_normal") and not Path(weights).is_file():
        raise ConfigError(
            f"model.weights = '{weights}' is neither 'imagenet', 'none', 'he_normal' nor an "
            "existing weights file. Give the path of a Keras ResNet50V2 weights file (e.g. "
            "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5)."
        )
    n_folds = config["splits"]["n_folds"]
    bad = [f for f in config["splits"]["folds"] if f >= n_folds]
    if bad:
        raise ConfigError(f"splits.folds has {bad}, but splits.n_folds is {n_folds}.")
