"""Seeds of a run, derived from (seed, fold[, strategy]) so that runs share what they should.

A run is (fold, seed, strategy). Everything random in it draws from a seed derived here with
NumPy's SeedSequence from the integers [seed, fold, crc32(purpose)] (crc32 because Python's
hash() of a string changes between processes):

- `initial`: the initial labelled set. Depends on (fold, seed) only, so every strategy of a fold
  and seed starts from the same labelled items (a paired comparison).
- `learner`: the network's initial weights, shuffling and augmentation. Also (fold, seed) only,
  so cycle 0 is the same model for every strategy and the baseline starts from the same weights.
- `strategy:<name>`: the strategy's own generator (random sampling's draws).

The derivation is fixed; changing it changes every result, so it is versioned by this docstring.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

import numpy as np


def derive_seed(seed: int, fold: int, purpose: str) -> int:
    """A 32-bit seed for `purpose` in the run (fold, seed), stable across processes and machines."""
    entropy = [int(seed), int(fold), zlib.crc32(purpose.encode("utf-8"))]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True)
class RunSeeds:
    """The derived seeds of one run."""

    initial: int
    learner: int
    strategy: int

    @classmethod
    def for_run(cls, seed: int, fold: int, strategy: str) -> RunSeeds:
        """Seeds of run (fold, seed, strategy); `strategy` is "full" for the baseline."""
        return cls(
            initial=derive_seed(seed, fold, "initial"),
            learner=derive_seed(seed, fold, "learner"),
            strategy=derive_seed(seed, fold, f"strategy:{strategy}"),
        )


def seed_python_numpy(seed: int) -> None:
    """Seed Python's and NumPy's global generators (for any code that still uses them).

    The loop itself only uses explicit generators; this guards library code that does not.
    TensorFlow and Keras are seeded with the same `learner` seed where the network is built
    (alnsfw.model.learner.build_learner), so this module stays free of TensorFlow.
    """
    random.seed(seed)
    np.random.seed(seed)
