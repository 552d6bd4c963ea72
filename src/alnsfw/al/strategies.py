"""Query strategies: pure functions from class probabilities of the unlabelled pool to a ranking.

Each strategy scores every item (higher = more informative) and returns the items ordered by
score, descending, ties broken by position in the input (earlier first). The tie rule makes a
ranking a function of its inputs alone, so two runs with the same model query the same items even
when many probabilities are equal (e.g. a saturated softmax).

A strategy takes `(probabilities [n, k], rng)`; only `random` uses the generator, and only
strategies registered with `needs_model=True` get real probabilities (the loop skips scoring the
pool for the others and passes an [n, 0] array, of which only the length matters).

Adding a strategy is one function plus `@register("name")`; its name is then valid in
`al.strategies`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class Ranking(NamedTuple):
    """Positions into the scored array, most informative first, and every item's score."""

    order: np.ndarray  # int64 [n]: positions, most informative first
    scores: np.ndarray  # float64 [n]: score of each position (not reordered)


StrategyFn = Callable[[np.ndarray, np.random.Generator], Ranking]


@dataclass(frozen=True)
class Strategy:
    """A registered strategy; `needs_model` says whether it reads the probabilities."""

    name: str
    rank: StrategyFn
    needs_model: bool


STRATEGIES: dict[str, Strategy] = {}


def register(name: str, needs_model: bool = True) -> Callable[[StrategyFn], StrategyFn]:
    """Decorator that adds a ranking function to STRATEGIES under `name`."""

    def add(fn: StrategyFn) -> StrategyFn:
        if name in STRATEGIES:
            raise ValueError(f"strategy '{name}' is already registered")
        STRATEGIES[name] = Strategy(name=name, rank=fn, needs_model=needs_model)
        return fn

    return add


def get_strategy(name: str) -> Strategy:
    """The registered strategy `name`; the error lists the valid names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(
            f"unknown strategy '{name}' (al.strategies); registered: {sorted(STRATEGIES)}"
        ) from None


def rank_by_score(scores: np.ndarray) -> Ranking:
    """Order by score descending, then by position ascending (the deterministic tie rule)."""
    scores = np.asarray(scores, dtype=np.float64)
    # lexsort sorts by the last key first: -score, then position.
    order = np.lexsort((np.arange(len(scores)), -scores))
    return Ranking(order=order.astype(np.int64), scores=scores)


def _sorted_rows(probabilities: np.ndarray) -> np.ndarray:
    """Each row's probabilities in ascending order, as float64.

    Scores computed on sorted rows do not depend on class order, so p and its mirror image get
    bit-identical scores and therefore tie exactly.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(f"probabilities must be [n, k>=2], got {probabilities.shape}")
    return np.sort(probabilities, axis=1)


@register("random", needs_model=False)
def random_ranking(probabilities: np.ndarray, rng: np.random.Generator) -> Ranking:
    """Uniform random order: a random key per item, ranked like any score.

    Drawing keys (rather than a permutation) gives queries.csv a score column for random too.
    """
    return rank_by_score(rng.random(len(probabilities)))


@register("least_confidence")
def least_confidence_ranking(probabilities: np.ndarray, rng: np.random.Generator) -> Ranking:
    """Score 1 - max_c p_c: the item whose most likely class is least likely first."""
    del rng
    return rank_by_score(1.0 - _sorted_rows(probabilities)[:, -1])


@register("entropy")
def entropy_ranking(probabilities: np.ndarray, rng: np.random.Generator) -> Ranking:
    """Score the Shannon entropy -sum_c p_c ln p_c (0 ln 0 = 0): the most uncertain first."""
    del rng
    p = _sorted_rows(probabilities)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return rank_by_score(-terms.sum(axis=1))


@register("margin")
def margin_ranking(probabilities: np.ndarray, rng: np.random.Generator) -> Ranking:
    """Score 1 - (p_top1 - p_top2): the smallest gap between the two likeliest classes first."""
    del rng
    p = _sorted_rows(probabilities)
    return rank_by_score(1.0 - (p[:, -1] - p[:, -2]))
