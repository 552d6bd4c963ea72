"""Stopping rules on hand-made records: known answers for kappa, windows, plateau and budget."""

from __future__ import annotations

import numpy as np
import pytest

from alnsfw.al.stopping import (
    RULES,
    CycleRecord,
    StoppingSettings,
    check_stopping_config,
    cohen_kappa,
    evaluate_rules,
    kappa_windows,
    mean_uncertainty,
    register,
    wilson_interval,
)
from alnsfw.schema import ConfigError


def settings(**overrides) -> StoppingSettings:
    """The schema's defaults with some fields replaced."""
    base = StoppingSettings.from_config({})
    values = {**base.__dict__, **overrides}
    return StoppingSettings(**values)


def record(cycle, preds=None, uncertainty=None, audit=None, n_pool=100, step=10, ci=0.0):
    n = 20 + step * cycle
    return CycleRecord(
        cycle=cycle,
        n_labelled=n,
        labelled_share=n / n_pool,
        stop_predictions=None if preds is None else np.asarray(preds),
        pool_uncertainty=uncertainty,
        audit_accuracy=audit,
        audit_ci=None if audit is None else (audit - ci, audit + ci),
    )


def verdict(records, rule, **overrides):
    (v,) = evaluate_rules(records, settings(rules=(rule,), **overrides))
    assert v.rule == rule
    return v


def test_kappa_known_answers():
    a = np.array([0, 1, 0, 1, 1, 0])
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa(a, 1 - a) == -1.0  # balanced and every item flipped
    assert cohen_kappa(np.zeros(5), np.zeros(5)) == 1.0  # 0/0 by the formula: nothing changed
    # half agree, chance agreement 0.5 (both half and half): (0.5 - 0.5) / 0.5
    assert cohen_kappa(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0])) == 0.0
    # 3 of 4 agree, chance 0.5 * 0.75 + 0.5 * 0.25 = 0.5: (0.75 - 0.5) / 0.5
    assert cohen_kappa(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same items"):
        cohen_kappa(a, a[:-1])


def test_kappa_windows_compare_consecutive_cycles():
    a, b = [0, 1, 0, 1], [1, 0, 1, 0]
    ks = kappa_windows([record(0, a), record(1, a), record(2, b), record(3, None)])
    assert np.isnan(ks[0]) and ks[1] == 1.0 and ks[2] == -1.0 and np.isnan(ks[3])


def test_stabilizing_fires_after_k_stable_windows():
    a, b = [0, 1, 0, 1, 1, 0, 0, 1], [1, 1, 0, 1, 1, 0, 0, 1]
    # windows: a->b changes, then b stays: kappas nan, kappa(a, b), 1, 1, 1
    recs = [record(0, a), record(1, b), record(2, b), record(3, b), record(4, b)]
    v = verdict(recs, "stabilizing_predictions")
    assert v.fired and v.cycle == 4 and v.labelled_share == pytest.approx(0.6)
    assert "0.99" in v.detail
    # one fewer record: the last 3 windows include the change, mean < 0.99
    v = verdict(recs[:4], "stabilizing_predictions")
    assert not v.fired and v.cycle is None and "never fired" in v.detail
    # k = 1: fires at the first identical pair
    assert verdict(recs, "stabilizing_predictions", kappa_windows=1).cycle == 2
    # a lower threshold accepts the changed window in the mean
    low = verdict(recs[:4], "stabilizing_predictions", kappa_threshold=0.5)
    assert low.fired and low.cycle == 3


def test_stabilizing_needs_k_plus_one_cycles_and_predictions():
    a = [0, 1, 1, 0]
    v = verdict([record(0, a), record(1, a), record(2, a)], "stabilizing_predictions")
    assert not v.fired and "need 4" in v.detail
    v = verdict([record(c) for c in range(6)], "stabilizing_predictions")
    assert not v.fired and "no stop-set predictions" in v.detail


def test_overall_uncertainty_first_cycle_at_or_below_threshold():
    recs = [record(0, uncertainty=0.2), record(1, uncertainty=0.05), record(2, uncertainty=0.01)]
    v = verdict(recs, "overall_uncertainty", uncertainty_threshold=0.05)
    assert v.fired and v.cycle == 1
    v = verdict(recs, "overall_uncertainty", uncertainty_threshold=0.001)
    assert not v.fired and "0.0100" in v.detail


def test_mean_uncertainty_is_one_minus_max_probability():
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.0, 1.0]])
    assert mean_uncertainty(p) == pytest.approx((0.5 + 0.1 + 0.0) / 3)


def test_audit_plateau_fires_when_no_estimate_beats_the_old_upper_bound():
    accs = [0.70, 0.80, 0.85, 0.86, 0.865, 0.86, 0.87]
    recs = [record(c, audit=a, ci=0.03) for c, a in enumerate(accs)]
    # k=3: at cycle 3 the base is cycle 0 (upper 0.73): 0.86 > 0.73; cycle 4: base 0.80 (0.83)
    # < 0.86; cycle 5: base 0.85 (0.88) >= max(0.86, 0.865, 0.86): fires
    v = verdict(recs, "audit_plateau")
    assert v.fired and v.cycle == 5 and "cycle 2" in v.detail
    v = verdict(recs, "audit_plateau", audit_rounds=1)
    assert v.fired and v.cycle == 3  # 0.86 <= 0.85 + 0.03
    rising = [record(c, audit=0.5 + 0.1 * c, ci=0.01) for c in range(5)]
    assert not verdict(rising, "audit_plateau").fired


def test_wilson_interval_matches_scipy_and_contains_the_estimate():
    low, high = wilson_interval(90, 100)
    assert low < 0.9 < high
    assert (low, high) == pytest.approx((0.8256, 0.9448), abs=1e-4)  # Wilson 1927 by hand


def test_budget_share_or_labels():
    recs = [record(c) for c in range(9)]  # shares 0.2 .. 1.0
    v = verdict(recs, "budget", budget_share=0.6)
    assert v.fired and v.cycle == 4 and v.labelled_share == pytest.approx(0.6)
    v = verdict(recs, "budget", budget_share=None, budget_labels=35)
    assert v.fired and v.cycle == 2
    v = verdict(recs, "budget", budget_share=None, budget_labels=None)
    assert not v.fired and "no budget" in v.detail


def test_evaluate_rules_in_config_order_and_records_in_cycle_order():
    recs = [record(c, [0, 1], uncertainty=0.0, audit=0.9) for c in range(5)]
    names = [v.rule for v in evaluate_rules(recs, StoppingSettings.from_config({}))]
    assert names == ["stabilizing_predictions", "overall_uncertainty", "audit_plateau", "budget"]
    with pytest.raises(ValueError, match="increasing cycle order"):
        evaluate_rules(recs[::-1], StoppingSettings.from_config({}))


def test_settings_from_config_and_unknown_rule_names():
    s = StoppingSettings.from_config(
        {"stopping": {"rules": ["budget"], "budget": {"max_share": 0.5}}}
    )
    assert s.rules == ("budget",) and s.budget_share == 0.5 and s.kappa_threshold == 0.99
    with pytest.raises(ValueError, match="registered rules"):
        StoppingSettings.from_config({"stopping": {"rules": ["budgte"]}})
    with pytest.raises(ConfigError, match="stopping.rules"):
        check_stopping_config({"stopping": {"rules": ["x"]}})
    check_stopping_config({"stopping": {"rules": ["budget"]}})


def test_a_registered_rule_is_valid_at_once():
    @register("test_always")
    def always(records, settings):
        from alnsfw.al.stopping import Verdict

        return Verdict("test_always", True, records[0].cycle, records[0].labelled_share, "yes")

    try:
        (v,) = evaluate_rules([record(0)], settings(rules=("test_always",)))
        assert v.fired and v.cycle == 0
        with pytest.raises(ValueError, match="already registered"):
            register("test_always")(always)
    finally:
        del RULES["test_always"]
