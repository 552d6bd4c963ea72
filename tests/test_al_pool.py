"""Pool state, initial labelled set and cycle arithmetic."""

import json

import numpy as np
import pytest

from alnsfw.al.pool import PoolState, cycle_sizes, initial_labelled_mask
from alnsfw.al.seeding import RunSeeds, derive_seed


def test_initial_set_keeps_each_class_share():
    labels = np.array([1] * 100 + [0] * 37)
    mask = initial_labelled_mask(labels, 0.2, np.random.default_rng(0))
    assert mask[labels == 1].sum() == 20
    assert mask[labels == 0].sum() == 7  # round(7.4)


def test_initial_set_rounds_half_up_and_keeps_one_per_class():
    labels = np.array([1] * 5 + [0] * 2)
    assert initial_labelled_mask(labels, 0.5, np.random.default_rng(0))[:5].sum() == 3  # 2.5
    mask = initial_labelled_mask(labels, 0.01, np.random.default_rng(0))
    assert mask[:5].sum() == 1 and mask[5:].sum() == 1


def test_initial_set_single_class_and_full_fraction():
    assert initial_labelled_mask(np.ones(10), 0.2, np.random.default_rng(0)).sum() == 2
    assert initial_labelled_mask(np.array([0, 1, 1]), 1.0, np.random.default_rng(0)).all()


def test_initial_set_depends_on_the_seed_only():
    labels = np.array([1, 0] * 50)
    a = initial_labelled_mask(labels, 0.2, np.random.default_rng(5))
    b = initial_labelled_mask(labels, 0.2, np.random.default_rng(5))
    c = initial_labelled_mask(labels, 0.2, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_cycle_sizes_even_and_partial():
    assert cycle_sizes(70, 14, 8) == [14, 22, 30, 38, 46, 54, 62, 70]
    sizes = cycle_sizes(73, 14, 8)
    assert len(sizes) == 1 + int(np.ceil((73 - 14) / 8)) == 9
    assert sizes[-1] == 73 and sizes[-1] - sizes[-2] == 3
    assert cycle_sizes(10, 10, 8) == [10]


def test_pool_state_round_trip_through_json():
    pool = PoolState(np.array([2, 5, 7, 9]), np.array([True, False, False, False]))
    pool.reveal(0, np.array([9, 5]), np.array([0.7, 0.6]))
    again = PoolState.from_dict(json.loads(json.dumps(pool.to_dict())))
    assert again.labelled_rows.tolist() == [2, 5, 9]
    assert again.unlabelled_rows.tolist() == [7]
    assert again.queries[0].rows == [9, 5] and again.queries[0].scores == [0.7, 0.6]
    assert again.pct_labelled() == 75.0 and not again.exhausted


def test_reveal_refuses_foreign_labelled_or_repeated_rows():
    pool = PoolState(np.array([2, 5, 7]), np.array([True, False, False]))
    with pytest.raises(ValueError):
        pool.reveal(0, np.array([3]), np.array([0.0]))  # not in the pool
    with pytest.raises(ValueError):
        pool.reveal(0, np.array([99]), np.array([0.0]))  # beyond the last pool row
    with pytest.raises(ValueError):
        pool.reveal(0, np.array([2]), np.array([0.0]))  # already labelled
    with pytest.raises(ValueError):
        pool.reveal(0, np.array([5, 5]), np.array([0.0, 0.0]))


def test_pool_rows_must_be_sorted_and_unique():
    with pytest.raises(ValueError):
        PoolState(np.array([3, 1]), np.array([False, False]))


def test_seed_derivation_is_fixed_and_shared_where_it_should_be():
    a = RunSeeds.for_run(0, 1, "random")
    b = RunSeeds.for_run(0, 1, "entropy")
    assert (a.initial, a.learner) == (b.initial, b.learner)  # paired across strategies
    assert a.strategy != b.strategy
    assert RunSeeds.for_run(1, 1, "random").initial != a.initial
    assert RunSeeds.for_run(0, 2, "random").initial != a.initial
    # pinned: changing the derivation changes every result, so it must be deliberate
    assert derive_seed(0, 0, "initial") == 162733402
    assert derive_seed(3, 2, "strategy:random") == 1591833413
