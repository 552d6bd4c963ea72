"""Query strategies: pure functions from what the model says about the pool to a ranking.

A strategy declares what it needs (`NEEDS`: class probabilities, Monte-Carlo dropout samples,
embeddings of the unlabelled and of the labelled items, video ids); the loop computes exactly
that and nothing more (no forward pass for `random`, no embeddings for `entropy`), and hands it
over as one `PoolView`. The strategy returns a `Ranking` of the unlabelled positions, most
informative first.

Two kinds, one interface:
- score strategies (random, least_confidence, entropy, margin, bald) score every item; the order
  is by score, descending, ties broken by position (earlier first);
- batch strategies (coreset, badge) pick the batch greedily, because an item's value depends on
  what is already in the batch; their order is the pick order, then the rest by their final score.

`select` applies `al.max_per_video` to any ranking: walk it and skip items of a video that
already has `max_per_video` items in this batch, so the next best items of other videos fill it.
Greedy strategies apply the cap while they pick (a capped video's items cannot become centres),
so the cap changes which items they choose, not only which of their choices survive. When the
remaining pool cannot fill a batch under the cap (the last cycles, few videos left), the batch is
filled with the best skipped items: the pool must still be exhausted, as the paper's loop does.

Everything random comes from the `rng` argument (the run's strategy generator, saved in every
checkpoint), and every tie is broken by position, so a ranking is a function of its inputs and
the generator's state: same config and seed, same queries; a resumed run queries what an
uninterrupted one does.

Adding a strategy is one function plus `@register("name", needs=...)`; its name is then valid
in `al.strategies` (checked before any job by alnsfw.config.check_registry_names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# What a strategy may ask the loop for (the fields of PoolView).
PROBABILITIES = "probabilities"  # [n, k] class probabilities of the unlabelled items
MC_PROBABILITIES = "mc_probabilities"  # [T, n, k], T = al.mc_samples, dropout active
EMBEDDINGS = "embeddings"  # [n, d] penultimate embedding of the unlabelled items
LABELLED_EMBEDDINGS = "labelled_embeddings"  # [m, d] the same for the labelled set
VIDEO_IDS = "video_ids"  # [n] int, one id per video (only compared for equality)
NEEDS = frozenset({PROBABILITIES, MC_PROBABILITIES, EMBEDDINGS, LABELLED_EMBEDDINGS, VIDEO_IDS})


class Ranking(NamedTuple):
    """Positions into the unlabelled items, most informative first, and every item's score."""

    order: np.ndarray  # int64 [n]: a permutation of positions, most informative first
    scores: np.ndarray  # float64 [n]: score of each position (not reordered)


@dataclass(frozen=True)
class PoolView:
    """The unlabelled pool as a strategy sees it: only the fields its strategy declared are set.

    `batch_size` is the number of items this query will take (batch strategies pick that many);
    `max_per_video` the cap (None: off), with `video_ids` set whenever the cap is on.
    """

    n: int
    batch_size: int
    probabilities: np.ndarray | None = None
    mc_probabilities: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    labelled_embeddings: np.ndarray | None = None
    video_ids: np.ndarray | None = None
    max_per_video: int | None = None

    def require(self, name: str) -> np.ndarray:
        """Field `name`, or an error saying the strategy forgot to declare it."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"PoolView.{name} is not set: declare it in the strategy's needs")
        return value


StrategyFn = Callable[[PoolView, np.random.Generator], Ranking]


@dataclass(frozen=True)
class Strategy:
    """A registered strategy and the PoolView fields it reads."""

    name: str
    rank: StrategyFn
    needs: frozenset[str]


STRATEGIES: dict[str, Strategy] = {}


def register(
    name: str, needs: Iterable[str] = (PROBABILITIES,)
) -> Callable[[StrategyFn], StrategyFn]:
    """Decorator that adds a ranking function to STRATEGIES under `name`, with its needs."""
    needs = frozenset(needs)
    unknown = needs - NEEDS
    if unknown:
        raise ValueError(f"strategy '{name}' needs {sorted(unknown)}; known: {sorted(NEEDS)}")

    def add(fn: StrategyFn) -> StrategyFn:
        if name in STRATEGIES:
            raise ValueError(f"strategy '{name}' is already registered")
        STRATEGIES[name] = Strategy(name=name, rank=fn, needs=needs)
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


# --------------------------------------------------------------------------------------------
# The video cap


def select(ranking: Ranking, view: PoolView) -> np.ndarray:
    """The positions the query takes: the top `batch_size` of the ranking, under the video cap.

    Without a cap this is `ranking.order[:batch_size]`. With `max_per_video = m`, items are
    taken in ranking order, skipping any whose video already has m items in the batch; if that
    leaves the batch short (too few videos left), the best skipped items fill it, in order.
    """
    k = min(view.batch_size, view.n)
    if view.max_per_video is None:
        return ranking.order[:k]
    videos = view.require(VIDEO_IDS)
    taken: dict[int, int] = {}
    chosen, skipped = [], []
    for pos in ranking.order:
        video = int(videos[pos])
        if taken.get(video, 0) < view.max_per_video:
            taken[video] = taken.get(video, 0) + 1
            chosen.append(int(pos))
            if len(chosen) == k:
                break
        else:
            skipped.append(int(pos))
    chosen.extend(skipped[: k - len(chosen)])
    return np.asarray(chosen, dtype=np.int64)


class _VideoCap:
    """The cap as a greedy picker sees it: which items may still be picked.

    `eligible` is False for picked items and for every item of a video that reached the cap.
    When nothing eligible is left but unpicked items remain, the cap is lifted for the rest of
    the batch (the fill rule of `select`).
    """

    def __init__(self, view: PoolView) -> None:
        self.eligible = np.ones(view.n, dtype=bool)
        self.m = view.max_per_video
        self.videos = view.require(VIDEO_IDS) if self.m is not None else None
        self.picked = np.zeros(view.n, dtype=bool)
        self.counts: dict[int, int] = {}

    def pick(self, pos: int) -> None:
        self.picked[pos] = True
        self.eligible[pos] = False
        if self.videos is None:
            return
        video = int(self.videos[pos])
        self.counts[video] = self.counts.get(video, 0) + 1
        if self.counts[video] >= self.m:
            self.eligible &= self.videos != video
        if not self.eligible.any():
            self.eligible = ~self.picked


def _greedy_ranking(
    picks: list[int], final_scores: np.ndarray, pick_scores: list[float]
) -> Ranking:
    """Pick order first, then the other items by their final score (descending, then position).

    Scores: a picked item's score is its value when it was picked; the others keep their final
    score, so queries.csv shows why each item came in.
    """
    scores = np.asarray(final_scores, dtype=np.float64).copy()
    picks_arr = np.asarray(picks, dtype=np.int64)
    scores[picks_arr] = pick_scores
    rest = np.ones(len(scores), dtype=bool)
    rest[picks_arr] = False
    rest_pos = np.flatnonzero(rest)
    rest_order = rest_pos[np.lexsort((rest_pos, -scores[rest_pos]))]
    return Ranking(order=np.concatenate([picks_arr, rest_order]).astype(np.int64), scores=scores)


# --------------------------------------------------------------------------------------------
# Score strategies


def _sorted_rows(probabilities: np.ndarray) -> np.ndarray:
    """Each row's probabilities in ascending order, as float64.

    Scores computed on sorted rows do not depend on class order, so p and its mirror image get
    bit-identical scores and therefore tie exactly.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(f"probabilities must be [n, k>=2], got {probabilities.shape}")
    return np.sort(probabilities, axis=1)


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along `axis`, 0 ln 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=axis)


@register("random", needs=())
def random_ranking(view: PoolView, rng: np.random.Generator) -> Ranking:
    """Uniform random order: a random key per item, ranked like any score.

    Drawing keys (rather than a permutation) gives queries.csv a score column for random too.
    """
    return rank_by_score(rng.random(view.n))


@register("least_confidence")
def least_confidence_ranking(view: PoolView, rng: np.random.Generator) -> Ranking:
    """Score 1 - max_c p_c: the item whose most likely class is least likely first."""
    del rng
    return rank_by_score(1.0 - _sorted_rows(view.require(PROBABILITIES))[:, -1])


@register("entropy")
def entropy_ranking(view: PoolView, rng: np.random.Generator) -> Ranking:
    """Score the Shannon entropy -sum_c p_c ln p_c (0 ln 0 = 0): the most uncertain first."""
    del rng
    return rank_by_score(_entropy(_sorted_rows(view.require(PROBABILITIES))))


@register("margin")
def margin_ranking(view: PoolView, rng: np.random.Generator) -> Ranking:
    """Score 1 - (p_top1 - p_top2): the smallest gap between the two likeliest classes first."""
    del rng
    p = _sorted_rows(view.require(PROBABILITIES))
    return rank_by_score(1.0 - (p[:, -1] - p[:, -2]))


def mutual_information(mc_probabilities: np.ndarray) -> np.ndarray:
    """BALD's score: H[mean_t p_t] - mean_t H[p_t] for samples [T, n, k] (Gal et al. 2017).

    The mutual information between the label and the model's weights: high where the dropout
    samples disagree with each other, not merely where each is unsure (which entropy measures).
    Each sample's classes are sorted first, so mirror-image items tie exactly.
    """
    p = np.asarray(mc_probabilities, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] < 2 or p.shape[0] < 1:
        raise ValueError(f"MC probabilities must be [T, n, k>=2], got {p.shape}")
    # Sort by the mean's class order per item, so the same permutation applies to every sample.
    order = np.argsort(p.mean(axis=0), axis=1, kind="stable")
    p = np.take_along_axis(p, np.broadcast_to(order, p.shape), axis=2)
    mean = p.mean(axis=0)
    return np.maximum(_entropy(mean) - _entropy(p).mean(axis=0), 0.0)


@register("bald", needs=(MC_PROBABILITIES,))
def bald_ranking(view: PoolView, rng: np.random.Generator) -> Ranking:
    """Highest mutual information first (BALD with Monte-Carlo dropout, `al.mc_samples`)."""
    del rng
    return rank_by_score(mutual_information(view.require(MC_PROBABILITIES)))


# --------------------------------------------------------------------------------------------
# Batch strategies


def _sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


def _min_sq_distances(x: np.ndarray, centres: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Squared Euclidean distance of each row of `x` to its nearest row of `centres`.

    |a|^2 + |b|^2 - 2 a.b in chunks of centres (one matrix product each: memory stays at
    n x chunk), clipped at 0 against rounding.
    """
    best = np.full(len(x), np.inf)
    if len(centres) == 0:
        return best
    xn = _sq_norms(x)
    for a in range(0, len(centres), chunk):
        c = centres[a : a + chunk]
        d = xn[:, None] + _sq_norms(c)[None, :] - 2.0 * (x @ c.T)
        np.minimum(best, d.min(axis=1), out=best)
    return np.maximum(best, 0.0)


def k_center_greedy(
    x: np.ndarray, centres: np.ndarray, view: PoolView
) -> tuple[list[int], list[float], np.ndarray]:
    """Greedy k-center (Sener & Savarese 2018): repeatedly pick the item farthest from all centres.

    Starts from `centres` (the labelled set); each pick becomes a centre. Returns the picks,
    each pick's distance at the time it was picked, and every item's final distance to its
    nearest centre. Ties go to the earlier position (argmax returns the first maximum).
    """
    x = np.asarray(x, dtype=np.float32)
    dist = _min_sq_distances(x, np.asarray(centres, dtype=np.float32))
    xn = _sq_norms(x)
    cap = _VideoCap(view)
    picks, pick_scores = [], []
    for _ in range(min(view.batch_size, view.n)):
        # A picked item's distance is set to -inf below, so without a cap no mask is needed.
        candidates = dist if cap.m is None else np.where(cap.eligible, dist, -np.inf)
        pos = int(np.argmax(candidates))
        picks.append(pos)
        pick_scores.append(float(np.sqrt(max(dist[pos], 0.0))))
        cap.pick(pos)
        new = x @ x[pos]  # squared distances to the new centre, in place: n x d read once
        new *= -2.0
        new += xn
        new += xn[pos]
        np.minimum(dist, new, out=dist)
        dist[pos] = -np.inf
    return picks, pick_scores, np.sqrt(np.maximum(dist, 0.0))


@register("coreset", needs=(EMBEDDINGS, LABELLED_EMBEDDINGS))
def coreset_ranking(view: PoolView, rng: np.random.Generator) -> Ranking:
    """Core-set by greedy k-center on the penultimate embedding, labelled set as the centres.

    Score: Euclidean distance to the nearest centre (for a pick, at the time it was picked).
    """
    del rng
    picks, pick_scores, final = k_center_greedy(
        view.require(EMBEDDINGS), view.require(LABELLED_EMBEDDINGS), view
    )
    return _greedy_ranking(picks, final, pick_scores)


def gradient_embedding(probabilities: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """BADGE's embedding: the loss gradient w.r.t. the last layer's weights at the predicted label.

    For softmax and cross-entropy with the predicted class y^ as the label, the gradient for
    weight (c, j) is (p_c - [c = y^]) h_j: the outer product of (p - onehot(y^)) and the
    penultimate embedding h, flattened to k*d values. Its norm is large where the model is
    unsure (p far from one-hot) and the embedding is large.
    """
    p = np.asarray(probabilities, dtype=np.float32)
    h = np.asarray(embeddings, dtype=np.float32)
    residual = p.copy()
    residual[np.arange(len(p)), p.argmax(axis=1)] -= 1.0
    return (residual[:, :, None] * h[:, None, :]).reshape(len(p), -1)


def kmeans_pp_seeding(
    sq_norms: np.ndarray,
    sq_distances_to: Callable[[int], np.ndarray],
    view: PoolView,
    rng: np.random.Generator,
) -> tuple[list[int], list[float], np.ndarray]:
    """k-means++ seeding (Arthur & Vassilvitskii 2007) as BADGE uses it: k diverse, large points.

    The first centre is the item of largest norm (as in BADGE's code); each next one is drawn
    with probability proportional to its squared distance to the nearest centre so far, so far
    and large gradients are likely and a near-duplicate of a centre almost never comes in.
    `sq_distances_to(pos)` gives every item's squared distance to item `pos`. Returns the picks,
    each pick's distance when picked (the first: its norm) and every item's final distance.
    """
    cap = _VideoCap(view)
    dist = np.full(view.n, np.inf)
    picks, pick_scores = [], []
    for i in range(min(view.batch_size, view.n)):
        if i == 0:
            pos = int(np.argmax(np.where(cap.eligible, sq_norms, -np.inf)))
            score = float(np.sqrt(sq_norms[pos]))
        else:
            weights = np.where(cap.eligible, dist, 0.0)
            cdf = np.cumsum(weights)
            if cdf[-1] > 0.0:
                pos = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
                pos = min(pos, view.n - 1)
                while not cap.eligible[pos]:  # rounding at the top end of the cdf
                    pos -= 1
            else:  # every eligible item coincides with a centre: take the first of them
                pos = int(np.argmax(cap.eligible))
            score = float(np.sqrt(dist[pos]))
        picks.append(pos)
        pick_scores.append(score)
        cap.pick(pos)
        np.minimum(dist, np.maximum(sq_distances_to(pos), 0.0), out=dist)
    return picks, pick_scores, np.sqrt(dist)


@register("badge", needs=(PROBABILITIES, EMBEDDINGS))
def badge_ranking(view: PoolView, rng: np.random.Generator) -> Ranking:
    """BADGE (Ash et al. 2020): k-means++ seeding on the last layer's gradient embeddings.

    Score: distance of the gradient embedding to the nearest centre chosen before it.
    """
    p = np.asarray(view.require(PROBABILITIES), dtype=np.float32)
    h = np.asarray(view.require(EMBEDDINGS), dtype=np.float32)
    # g = r (x) h with r = p - onehot(argmax p) (see gradient_embedding), so
    # <g_i, g_j> = <r_i, r_j> <h_i, h_j>: distances without forming the k*d vectors, reading
    # the n x d embeddings once per pick instead of n x k*d.
    r = p.copy()
    r[np.arange(len(p)), p.argmax(axis=1)] -= 1.0
    rn, hn = _sq_norms(r), _sq_norms(h)
    gn = rn * hn

    def sq_distances_to(pos: int) -> np.ndarray:
        return gn + gn[pos] - 2.0 * (r @ r[pos]) * (h @ h[pos])

    picks, pick_scores, final = kmeans_pp_seeding(gn, sq_distances_to, view, rng)
    return _greedy_ranking(picks, final, pick_scores)
