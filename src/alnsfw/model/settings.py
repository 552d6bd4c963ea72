"""The model stage's settings, resolved once from the validated config (no Keras import).

Why: the feature-cache mode used to be re-derived from `training.augment` and
`compute.feature_cache` in eight places, and defaults were repeated as `.get(key, default)` in the
model code (one of them hid a lost `compute.preload_mb`). Here the mode is one object and the
`model`, `training` and `compute` sections become typed, frozen settings whose missing keys come
from the schema (alnsfw.schema.schema_defaults), the only place that states a default.

=======  =====================  ===============================  ==========================
mode     config                 training batches                 predict (val, pool, test)
=======  =====================  ===============================  ==========================
naive    feature_cache: false   full model on images             full model on images
online   cache, augment online  full model, augmented images     top model on cached features
bank     cache, augment bank    top model, one random view/epoch top model on cached features
none     cache, augment none    top model on cached features     top model on cached features
=======  =====================  ===============================  ==========================

(naive trains with online augmentation unless `training.augment: none`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alnsfw.outputs import BANK, FEATURES
from alnsfw.schema import ConfigError, config_section

MODES = ("naive", "online", "bank", "none")

#: `compute` keys that change where and how fast a job runs, not its numbers: the rule files leave
#: them out of a job's params (changing one reruns nothing) and the job scripts add them back from
#: the workflow's config (`with_runtime`), so the user's value still reaches the job.
# runs_per_gpu: packing; missing_gpu: what a job does when the backend sees no GPU;
# batch_runs, keyframe_jobs: how many runs or videos one job holds.
RUNTIME_KEYS = (
    "batch_runs",
    "gpu",
    "gpu_memory_fraction",
    "keyframe_jobs",
    "missing_gpu",
    "preload_mb",
    "runs_per_gpu",
)


def result_compute(compute: dict[str, Any]) -> dict[str, Any]:
    """The `compute` keys that may change a job's numbers (for a rule's params)."""
    return {k: v for k, v in compute.items() if k not in RUNTIME_KEYS}


def with_runtime(cfg: dict[str, Any], workflow_config: dict[str, Any]) -> dict[str, Any]:
    """`cfg` (a job's params) with the RUNTIME_KEYS of the workflow's `compute` added back."""
    compute = workflow_config.get("compute") or {}
    runtime = {k: compute[k] for k in RUNTIME_KEYS if k in compute}
    return {**cfg, "compute": {**(cfg.get("compute") or {}), **runtime}}


@dataclass(frozen=True)
class CacheMode:
    """Which tensors train and score the model; see the table in the module docstring."""

    name: str  # naive | online | bank | none
    augment: str  # training.augment: online | bank | none

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> CacheMode:
        """The mode of `cfg`; the one place that refuses `bank` without the feature cache."""
        augment = str(config_section(cfg, "training")["augment"])
        if config_section(cfg, "compute")["feature_cache"]:
            return cls(augment, augment)
        if augment == "bank":
            raise ConfigError(
                "training.augment = 'bank' needs compute.feature_cache: true (the bank holds "
                "augmented views already passed through the cached trunk). Set "
                "compute.feature_cache: true, or training.augment to 'online' or 'none'."
            )
        return cls("naive", augment)

    @property
    def uses_cache(self) -> bool:
        """Scores (and for bank/none trains) from the feature cache file."""
        return self.name != "naive"

    @property
    def uses_bank(self) -> bool:
        """Trains on the augmentation bank file."""
        return self.name == "bank"

    @property
    def trains_top(self) -> bool:
        """Trains the top model on cached tensors (else the full model on images)."""
        return self.name in ("bank", "none")

    @property
    def reads_images(self) -> bool:
        """Reads keyframe images during training."""
        return not self.trains_top

    @property
    def augments_images(self) -> bool:
        """The full model holds the augmentation layers (online augmentation of images)."""
        return self.augment == "online"

    def feature_files(self, tag: str) -> dict[str, str]:
        """The cache files a training job reads, by input name (empty for naive)."""
        files = {"features": FEATURES.format(tag=tag)} if self.uses_cache else {}
        if self.uses_bank:
            files["bank"] = BANK.format(tag=tag)
        return files


@dataclass(frozen=True)
class TrainingSettings:
    """`training.*`: the optimiser, batches, epochs and augmentation of the learner."""

    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    augment: str
    bank_views: int
    augmentation: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrainingSettings:
        """From `cfg["training"]` (schema defaults for missing keys)."""
        t = config_section(cfg, "training")
        return cls(
            learning_rate=float(t["learning_rate"]),
            batch_size=int(t["batch_size"]),
            max_epochs=int(t["max_epochs"]),
            patience=int(t["patience"]),
            augment=str(t["augment"]),
            bank_views=int(t["bank_views"]),
            augmentation=dict(t["augmentation"]),
        )


@dataclass(frozen=True)
class ComputeSettings:
    """`compute.*`: where and how the model runs (backend, device, threads, batch, memory)."""

    backend: str
    gpu: bool
    gpu_memory_fraction: float | None
    missing_gpu: str
    threads: int
    feature_cache: bool
    feature_dtype: str
    jit_compile: bool
    predict_batch_size: int
    preload_mb: float

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ComputeSettings:
        """From `cfg["compute"]` (schema defaults for missing keys)."""
        c = config_section(cfg, "compute")
        fraction = c.get("gpu_memory_fraction")  # schema default null: schema_defaults omits it
        return cls(
            backend=str(c["backend"]),
            gpu=bool(c["gpu"]),
            gpu_memory_fraction=None if fraction is None else float(fraction),
            missing_gpu=str(c["missing_gpu"]),
            threads=int(c["threads"]),
            feature_cache=bool(c["feature_cache"]),
            feature_dtype=str(c["feature_dtype"]),
            jit_compile=bool(c["jit_compile"]),
            predict_batch_size=int(c["predict_batch_size"]),
            preload_mb=float(c["preload_mb"]),
        )


@dataclass(frozen=True)
class ModelSettings:
    """`model.*`: the trunk, its weights, input size, trainable split and head."""

    trunk: str  # resnet50v2 | open_nsfw (alnsfw.model.open_nsfw)
    weights: str
    weights_seed: int
    input_size: int
    trainable_from: str
    bn_momentum: float | str  # a number or "auto"
    head_batchnorm: bool
    head_dense: tuple[int, ...]
    head_dropout: float

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> ModelSettings:
        """From `cfg["model"]` (schema defaults for missing keys)."""
        m = config_section(cfg, "model")
        head = m["head"]
        momentum = m["bn_momentum"]
        return cls(
            trunk=str(m["trunk"]),
            weights=str(m["weights"]),
            weights_seed=int(m["weights_seed"]),
            input_size=int(m["input_size"]),
            trainable_from=str(m["trainable_from"]),
            bn_momentum=momentum if momentum == "auto" else float(momentum),
            head_batchnorm=bool(head["batchnorm"]),
            head_dense=tuple(int(u) for u in head["dense"]),
            head_dropout=float(head["dropout"]),
        )


def xla_cache_environment(directory: str | Path) -> dict[str, str]:
    """The environment that gives JAX's XLA an on-disk compilation cache in `directory`.

    Why every program goes in (min compile time 0): JAX's default keeps only programs that
    compiled for over a second, and none of a small model's steps do (the learner's JAX checks:
    67 CPU-s with the default, 54 with 0; 2.3 MB of cache). The workflow sets this for its jobs
    (workflow/rules/common.smk, unless the user set a variable), and the JAX tests for theirs.
    """
    return {
        "JAX_COMPILATION_CACHE_DIR": str(directory),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
