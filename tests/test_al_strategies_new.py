"""BALD, core-set, BADGE and the per-video cap on hand-made inputs with known answers."""

import numpy as np
import pytest

from alnsfw.al.strategies import (
    PoolView,
    get_strategy,
    gradient_embedding,
    kmeans_pp_seeding,
    mutual_information,
    rank_by_score,
    register,
    select,
)


def view(n, k, **fields):
    return PoolView(n=n, batch_size=k, **fields)


def picked(name, v, seed=0):
    ranking = get_strategy(name).rank(v, np.random.default_rng(seed))
    assert sorted(ranking.order.tolist()) == list(range(v.n))  # always a full permutation
    return select(ranking, v).tolist(), ranking


# ---------------------------------------------------------------------------------------------
# BALD


def test_mutual_information_on_constructed_samples():
    half = [0.5, 0.5]
    mc = np.array(
        [
            # A: every sample says 50/50: unsure, but the samples agree -> MI 0
            [half, half, half, half],
            # B: samples certain and contradicting each other -> MI ln 2 (the maximum)
            [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]],
            # C: confident and agreeing -> MI 0
            [[0.9, 0.1]] * 4,
            # D: half the samples 0.9/0.1, half 0.1/0.9 -> ln 2 - H(0.9, 0.1)
            [[0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.1, 0.9]],
        ]
    ).transpose(1, 0, 2)  # [T=4, n=4, k=2]
    h09 = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))
    mi = mutual_information(mc)
    assert mi == pytest.approx([0.0, np.log(2), 0.0, np.log(2) - h09], abs=1e-12)
    chosen, ranking = picked("bald", view(4, 2, mc_probabilities=mc))
    # B, then D; A and C tie at 0 and keep their order. Entropy of the mean would rank A with B.
    assert ranking.order.tolist() == [1, 3, 0, 2] and chosen == [1, 3]


def test_bald_mirror_images_tie_exactly():
    a = np.array([[[0.7, 0.3]], [[0.2, 0.8]]])  # [T=2, n=1, k=2]
    mc = np.concatenate([a, a[:, :, ::-1]], axis=1)  # item 1 = item 0 with classes swapped
    mi = mutual_information(mc)
    assert mi[0] == mi[1] and mi[0] > 0


def test_bald_refuses_bad_shapes():
    with pytest.raises(ValueError, match="T, n, k"):
        mutual_information(np.ones((3, 2)))


# ---------------------------------------------------------------------------------------------
# Core-set (greedy k-center)


def test_k_center_picks_the_farthest_points():
    labelled = np.array([[0.0, 0.0]])
    pool = np.array([[1.0, 0.0], [2.0, 0.0], [10.0, 0.0], [9.5, 0.0], [5.0, 0.0]])
    v = view(5, 2, embeddings=pool, labelled_embeddings=labelled)
    chosen, ranking = picked("coreset", v)
    # 10 is farthest from the labelled 0; then 5 is farthest from {0, 10} (distance 5).
    assert chosen == [2, 4]
    assert ranking.scores[[2, 4]] == pytest.approx([10.0, 5.0])
    # the rest by their final distance to the nearest centre: 2 (2), 1 (1), 9.5 (0.5)
    assert ranking.order.tolist() == [2, 4, 1, 0, 3]


def test_k_center_uses_the_labelled_set_as_centres():
    pool = np.array([[1.0], [4.0], [10.0]])
    near_ten = view(3, 1, embeddings=pool, labelled_embeddings=np.array([[9.0], [0.0]]))
    assert picked("coreset", near_ten)[0] == [1]  # 4 is 4 from the centre 0 and 5 from 9


def test_k_center_ties_go_to_the_earlier_position():
    pool = np.array([[-3.0], [3.0], [1.0]])
    assert picked("coreset", view(3, 1, embeddings=pool, labelled_embeddings=np.zeros((1, 1))))[
        0
    ] == [0]


# ---------------------------------------------------------------------------------------------
# BADGE


def test_gradient_embedding_is_residual_times_embedding():
    p = np.array([[0.8, 0.2], [0.3, 0.7]])
    h = np.array([[1.0, 2.0], [3.0, -1.0]])
    g = gradient_embedding(p, h)
    # item 0 predicts class 0: residual (0.8 - 1, 0.2); item 1 predicts 1: (0.3, 0.7 - 1)
    assert g == pytest.approx(np.array([[-0.2, -0.4, 0.2, 0.4], [0.9, -0.3, -0.9, 0.3]]))


def test_badge_factored_distances_equal_explicit_gradient_embeddings():
    rng = np.random.default_rng(3)
    emb = np.maximum(rng.normal(size=(60, 8)), 0)
    p = rng.dirichlet([1, 1, 1], size=60)  # three classes: the factoring holds for any k
    v = view(60, 12, probabilities=p, embeddings=emb)
    g = gradient_embedding(p, emb).astype(np.float64)
    gn = np.einsum("ij,ij->i", g, g)

    def explicit(pos):
        return gn + gn[pos] - 2.0 * (g @ g[pos])

    picks, scores, final = kmeans_pp_seeding(gn, explicit, v, np.random.default_rng(7))
    ranking = get_strategy("badge").rank(v, np.random.default_rng(7))
    assert ranking.order[:12].tolist() == picks
    assert ranking.scores[picks] == pytest.approx(scores, rel=1e-4, abs=1e-4)


def badge_pool():
    """Two tight clusters of unsure items in orthogonal directions, and one confident item.

    Items 0-3: cluster X (p = 0.5, |h| = 30: gradient norm 21.2, the largest); 4-9: cluster Y
    (p = 0.51, |h| = 20: gradient norm 13.9); 10: confident (p = 0.999, gradient ~ 0). The four
    most uncertain items are all in X.
    """
    rng = np.random.default_rng(0)
    x = np.array([30.0, 0.0, 0.0]) + rng.normal(0, 1e-3, (4, 3))
    y = np.array([0.0, 20.0, 0.0]) + rng.normal(0, 1e-3, (6, 3))
    z = np.array([[0.0, 0.0, 9.0]])
    p = np.array([[0.5, 0.5]] * 4 + [[0.51, 0.49]] * 6 + [[0.999, 0.001]])
    return np.vstack([x, y, z]), p


def test_badge_picks_diverse_high_gradient_points():
    emb, p = badge_pool()
    v = view(11, 2, probabilities=p, embeddings=emb)
    second = []
    for seed in range(100):
        chosen, _ = picked("badge", v, seed)
        assert chosen[0] in range(4)  # the largest gradient (cluster X) is the first centre
        assert chosen[1] not in range(4)  # never a near-duplicate of it (D^2 ~ 1e-6)
        second.append(chosen[1])
    # D^2 sampling: a point of Y has D^2 = |g_X|^2 + |g_Y|^2 = 450 + 192, the confident one
    # about |g_X|^2 = 450, so Y comes second with probability 6 * 642 / (6 * 642 + 450) = 0.90.
    assert np.mean(np.isin(second, range(4, 10))) >= 0.8
    entropy_top2 = get_strategy("entropy").rank(view(11, 2, probabilities=p), None).order[:2]
    assert set(entropy_top2.tolist()) <= set(range(4))  # what BADGE avoids: two near-duplicates


def test_badge_is_seeded():
    emb = np.random.default_rng(1).normal(size=(40, 5))
    p = np.random.default_rng(2).dirichlet([1, 1], size=40)
    v = view(40, 10, probabilities=p, embeddings=emb)
    assert picked("badge", v, 5)[0] == picked("badge", v, 5)[0]
    assert any(picked("badge", v, 5)[0] != picked("badge", v, s)[0] for s in range(6, 12))


# ---------------------------------------------------------------------------------------------
# The per-video cap


def test_cap_takes_the_next_best_items_of_other_videos():
    ranking = rank_by_score(np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0]))
    videos = np.array([0, 0, 0, 1, 1, 2])
    assert select(ranking, view(6, 3, video_ids=videos, max_per_video=1)).tolist() == [0, 3, 5]
    assert select(ranking, view(6, 5, video_ids=videos, max_per_video=2)).tolist() == [
        0,
        1,
        3,
        4,
        5,
    ]
    assert select(ranking, view(6, 3)).tolist() == [0, 1, 2]  # off: the paper's behaviour


def test_cap_still_fills_the_batch_when_too_few_videos_are_left():
    ranking = rank_by_score(np.array([6.0, 5.0, 4.0, 3.0]))
    v = view(4, 3, video_ids=np.array([0, 0, 1, 0]), max_per_video=1)
    assert select(ranking, v).tolist() == [0, 2, 1]  # two videos, then the best skipped item


@pytest.mark.parametrize("name", ["coreset", "badge"])
def test_greedy_strategies_respect_the_cap_while_picking(name):
    # Items 0 and 1 (video 0) are the two farthest/largest; with the cap at 1 the second pick
    # must come from another video, and the batch is still full.
    emb = np.array([[10.0, 0.0], [0.0, 10.0], [1.0, 1.0], [2.0, 0.0], [0.0, 3.0]])
    p = np.full((5, 2), 0.5)
    fields = {"embeddings": emb, "labelled_embeddings": np.zeros((1, 2)), "probabilities": p}
    videos = np.array([0, 0, 1, 1, 2])
    free, _ = picked(name, view(5, 3, **fields))
    capped, _ = picked(name, view(5, 3, video_ids=videos, max_per_video=1, **fields))
    assert {0, 1} <= set(free)
    assert len(capped) == 3 and len(set(capped)) == 3
    assert np.bincount(videos[capped]).max() == 1
    lifted, _ = picked(name, view(5, 5, video_ids=videos, max_per_video=1, **fields))
    assert sorted(lifted) == list(range(5))  # the cap is lifted to fill the batch


# ---------------------------------------------------------------------------------------------
# Registry


def test_a_strategy_declares_only_known_needs():
    with pytest.raises(ValueError, match="known"):
        register("x", needs=("gradients",))


def test_an_undeclared_need_is_named():
    with pytest.raises(ValueError, match="declare it"):
        view(3, 1).require("embeddings")
