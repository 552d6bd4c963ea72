"""Test-set measures on hand-made values (porn = positive class)."""

import itertools

import numpy as np
import pytest

from alnsfw.metrics import binary_metrics, predicted_labels, roc_auc


def proba(p_porn):
    p = np.asarray(p_porn, dtype=float)
    return np.stack([1 - p, p], axis=1)


def test_confusion_and_scores_by_hand():
    labels = [1, 1, 0, 0, 1, 0]
    m = binary_metrics(labels, proba([0.9, 0.4, 0.6, 0.1, 0.8, 0.3]))
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (2, 2, 1, 1)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # positives {0.9, 0.4, 0.8} vs negatives {0.6, 0.1, 0.3}: 8 of 9 pairs ordered right
    assert m["roc_auc"] == pytest.approx(8 / 9)


def test_precision_recall_differ():
    # tp=1, fp=2, fn=0: precision 1/3, recall 1, f1 = 2*1/(2+2+0) = 0.5
    m = binary_metrics([1, 0, 0, 0], proba([0.9, 0.8, 0.7, 0.2]))
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((1 / 3, 1.0, 0.5))


def test_no_positive_prediction_gives_zero_not_nan():
    m = binary_metrics([1, 0, 1], proba([0.1, 0.2, 0.3]))
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["roc_auc"] == pytest.approx(0.5)  # positives 0.1, 0.3 vs negative 0.2


def test_exact_half_goes_to_nonporn():
    assert predicted_labels(proba([0.5, 0.50001])).tolist() == [0, 1]


def test_roc_auc_counts_ties_as_half():
    # pairs: (0.5,0.5)=1/2, (0.5,0.2)=1, (0.7,0.5)=1, (0.7,0.2)=1 -> 3.5/4
    assert roc_auc([1, 0, 1, 0], [0.5, 0.5, 0.7, 0.2]) == pytest.approx(0.875)


def test_roc_auc_single_class_is_nan():
    assert np.isnan(roc_auc([1, 1], [0.2, 0.9]))


def test_roc_auc_matches_pair_count():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 60)
    scores = np.round(rng.random(60), 1)  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(pos, neg)]
    assert roc_auc(labels, scores) == pytest.approx(np.mean(pairs))


def test_shape_is_checked():
    with pytest.raises(ValueError):
        binary_metrics([1, 0], np.array([0.2, 0.8]))
