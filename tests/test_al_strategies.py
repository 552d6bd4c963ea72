"""Query strategies on hand-made probabilities: what they pick, and how ties are broken."""

import numpy as np
import pytest

from alnsfw.al import strategies
from alnsfw.al.strategies import (
    STRATEGIES,
    PoolView,
    Ranking,
    get_strategy,
    rank_by_score,
    register,
)

RNG = np.random.default_rng(0)
BINARY = np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5], [0.2, 0.8]])


def rank(name, probabilities, rng=RNG):
    probabilities = np.asarray(probabilities, dtype=float)
    view = PoolView(
        n=len(probabilities), batch_size=len(probabilities), probabilities=probabilities
    )
    return get_strategy(name).rank(view, rng)


def test_registry_has_the_strategies_and_their_needs():
    assert {"random", "least_confidence", "entropy", "margin", "bald", "coreset", "badge"} <= set(
        STRATEGIES
    )
    assert get_strategy("random").needs == set()
    assert get_strategy("entropy").needs == {"probabilities"}
    assert get_strategy("bald").needs == {"mc_probabilities"}
    assert get_strategy("coreset").needs == {"embeddings", "labelled_embeddings"}
    assert get_strategy("badge").needs == {"probabilities", "embeddings"}


def test_unknown_strategy_names_the_valid_ones():
    with pytest.raises(KeyError, match="least_confidence"):
        get_strategy("nope")


@pytest.mark.parametrize("name", ["least_confidence", "entropy", "margin"])
def test_binary_uncertainty_order(name):
    # For two classes all three agree: closest to 0.5 first.
    assert rank(name, BINARY).order.tolist() == [2, 1, 3, 0]


def test_least_confidence_scores():
    assert rank("least_confidence", BINARY).scores == pytest.approx([0.1, 0.4, 0.5, 0.2])


def test_entropy_scores_and_zero_probabilities():
    scores = rank("entropy", [[1.0, 0.0], [0.5, 0.5]]).scores
    assert scores == pytest.approx([0.0, np.log(2)])
    assert np.all(np.isfinite(scores))


def test_margin_scores():
    assert rank("margin", BINARY).scores == pytest.approx([0.2, 0.8, 1.0, 0.4])


def test_three_classes_separate_the_strategies():
    a = [0.4, 0.4, 0.2]  # least confidence 0.60, entropy 1.055, margin 0.00
    b = [0.45, 0.275, 0.275]  # least confidence 0.55, entropy 1.069, margin 0.175
    c = [0.8, 0.1, 0.1]
    probabilities = [c, b, a]
    assert rank("least_confidence", probabilities).order.tolist() == [2, 1, 0]
    assert rank("entropy", probabilities).order.tolist() == [1, 2, 0]
    assert rank("margin", probabilities).order.tolist() == [2, 1, 0]


@pytest.mark.parametrize("name", ["least_confidence", "entropy", "margin"])
def test_ties_go_to_the_earlier_position(name):
    # Mirror images score bit-identically, so the tie rule decides: earlier position first.
    probabilities = [[0.9, 0.1], [0.3, 0.7], [0.7, 0.3], [0.1, 0.9], [0.3, 0.7]]
    assert rank(name, probabilities).order.tolist() == [1, 2, 4, 0, 3]


def test_rank_by_score_is_stable_on_ties():
    assert rank_by_score(np.array([1.0, 2.0, 1.0, 2.0, 0.0])).order.tolist() == [1, 3, 0, 2, 4]


def test_random_is_a_seeded_permutation_and_needs_no_model():
    def random(seed):
        return get_strategy("random").rank(
            PoolView(n=50, batch_size=5), np.random.default_rng(seed)
        )

    a, b, c = random(3), random(3), random(4)
    assert sorted(a.order.tolist()) == list(range(50))
    assert a.order.tolist() == b.order.tolist()
    assert a.order.tolist() != c.order.tolist()
    # scores are the random keys, ranked descending
    assert np.all(np.diff(a.scores[a.order]) <= 0)


def test_ranking_does_not_touch_its_input():
    probabilities = BINARY.copy()
    rank("entropy", probabilities)
    assert np.array_equal(probabilities, BINARY)


def test_bad_shape_is_refused():
    with pytest.raises(ValueError):
        rank("entropy", np.array([0.2, 0.8]))


def test_adding_a_strategy_is_one_function(monkeypatch):
    monkeypatch.setattr(strategies, "STRATEGIES", dict(STRATEGIES))

    @register("most_porn")
    def most_porn(view, rng):
        return rank_by_score(view.probabilities[:, 1])

    assert isinstance(rank("most_porn", BINARY), Ranking)
    assert rank("most_porn", BINARY).order.tolist() == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="already registered"):
        register("most_porn")(most_porn)
