"""Stopping rules: when may a team that labels for real stop, from what it has in hand?

The paper's "full-supervision accuracy with 60% of the labels" is only usable as a rule that a
team without a full-supervision run can apply. Each rule here is a small pure function of the
per-cycle `CycleRecord`s (what the loop or a labelling campaign recorded so far) that returns a
`Verdict`: whether it fired, and at which cycle first. Rules are registered by name like the
strategies (`@register`), chosen and configured under the config section `stopping`, and
`evaluate_rules` gives every enabled rule's verdict. The simulation does not stop when a rule
fires: it runs to 100% as the paper does, and the rules are evaluated on its record, so each rule
is measured against full supervision.

Rules (defaults from alnsfw/schema/config.schema.yaml, section `stopping`):

- `stabilizing_predictions` (Bloodgood & Vijay-Shanker, CoNLL 2009): Cohen's kappa between the
  predicted classes of consecutive cycles on a fixed, unlabelled stop set is one "window"; fires
  at the first cycle where the mean kappa of the last `windows` windows is >= `threshold`
  (their defaults: 3 and 0.99). Needs no labels.
- `overall_uncertainty` (Zhu, Wang & Hovy 2008): fires when the mean uncertainty of the unlabelled
  data, 1 - max_c p_c (0 = certain, 0.5 = a coin toss), is <= `threshold`. Chosen over change of F
  and max-confidence for two classes: (1) with two classes least confidence, margin and entropy
  are all monotone in max_c p_c, so "uncertainty" means one thing whatever the query strategy
  uses, and the threshold reads as a probability (mean confidence >= 1 - threshold); with more
  classes they disagree and the choice would be arbitrary. (2) Change of F is an F1 of the
  positive class between consecutive predictions on the same stop set as kappa: for two classes
  it is a second reading of the same agreement, blind to agreement on the non-porn class (whose
  "difficult" videos are this dataset's point). (3) Max-confidence (the single most uncertain
  item must be confident) never fires on a pool of near-duplicate keyframes of an ambiguous video.
  `pool_uncertainty` carries the value; the simulation measures it on the stop set (see below).
- `audit_plateau`: the audit accuracy (a held-out labelled estimate) no longer rises by more than
  its confidence interval: fires at the first cycle i >= `rounds` where none of the last `rounds`
  estimates exceeds the upper end of the 95% Wilson interval of the estimate `rounds` cycles back.
- `budget`: fires at the first cycle whose labelled share reaches `max_share` or whose labelled
  count reaches `max_labels` (either may be null = unused; both null: the rule never fires).

What the records hold in the simulation (alnsfw.al.loop): the stop set is the fold's validation
split, a fixed held-out sample of the pool's distribution that is never queried nor trained on,
and whose predictions the loop already computes (for the video-level columns and the audit);
its labels are only read by the audit. `pool_uncertainty` is the stop set's mean uncertainty
rather than the shrinking pool's: the pool's reading depends on which items the strategy left
behind (uncertainty sampling takes the uncertain ones first) and is empty at 100%, while the
stop set's is a property of the model alone, comparable across cycles and strategies, and costs
no extra pass. A campaign (Label Studio) fills the same fields from its own stop and audit sets.

Audit intervals use scipy's Wilson interval (`wilson_interval`), as the campaign does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from alnsfw.schema import ConfigError, config_section


@dataclass(frozen=True)
class CycleRecord:
    """What the rules read about one cycle (one trained model and the labels it was trained on)."""

    cycle: int  # 0 = model trained on the initial set
    n_labelled: int  # labelled training items after this cycle's labels arrived
    labelled_share: float  # n_labelled / pool size, 0..1
    stop_predictions: np.ndarray | None  # class 0/1 on a FIXED unlabelled stop set, same order
    pool_uncertainty: float | None  # mean 1 - max_c p_c of the unlabelled data (see module)
    audit_accuracy: float | None  # held-out labelled estimate (campaign: audit; simulation: val)
    audit_ci: tuple[float, float] | None  # its 95% Wilson interval (wilson_interval)


@dataclass(frozen=True)
class Verdict:
    """One rule's answer on the records so far."""

    rule: str  # registry name
    fired: bool
    cycle: int | None  # first cycle at which it fired (None if never)
    labelled_share: float | None  # that cycle's labelled share (None if never)
    detail: str  # one human line, e.g. "mean kappa 0.994 over the last 3 windows >= 0.99"


@dataclass(frozen=True)
class StoppingSettings:
    """Typed view of config["stopping"]; defaults come from the schema (one place)."""

    rules: tuple[str, ...]  # enabled rules, in the order verdicts are reported
    kappa_windows: int  # stabilizing_predictions.windows (k)
    kappa_threshold: float  # stabilizing_predictions.threshold
    uncertainty_threshold: float  # overall_uncertainty.threshold
    audit_rounds: int  # audit_plateau.rounds (k)
    budget_share: float | None  # budget.max_share, 0..1
    budget_labels: int | None  # budget.max_labels

    def __post_init__(self) -> None:
        unknown = [name for name in self.rules if name not in RULES]
        if unknown:
            raise ValueError(
                f"stopping.rules has unknown {unknown}; registered rules: {sorted(RULES)}"
            )
        if self.kappa_windows < 1 or self.audit_rounds < 1:
            raise ValueError("stopping: windows and rounds must be >= 1")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StoppingSettings:
        """From a config with (or without) a `stopping` section; missing keys take the schema's
        defaults, so a campaign config that never validated against the schema works too."""
        section = config_section(config, "stopping")
        stab = section["stabilizing_predictions"]
        budget = section["budget"]  # a null default is absent from schema_defaults
        return cls(
            rules=tuple(section["rules"]),
            kappa_windows=int(stab["windows"]),
            kappa_threshold=float(stab["threshold"]),
            uncertainty_threshold=float(section["overall_uncertainty"]["threshold"]),
            audit_rounds=int(section["audit_plateau"]["rounds"]),
            budget_share=_optional(budget.get("max_share"), float),
            budget_labels=_optional(budget.get("max_labels"), int),
        )


def _optional(value: Any, kind: type) -> Any:  # noqa: ANN401
    return None if value is None else kind(value)


RuleFn = Callable[[Sequence[CycleRecord], StoppingSettings], Verdict]
RULES: dict[str, RuleFn] = {}


def register(name: str) -> Callable[[RuleFn], RuleFn]:
    """Decorator that adds a rule to RULES under `name` (then valid in `stopping.rules`)."""

    def add(fn: RuleFn) -> RuleFn:
        if name in RULES:
            raise ValueError(f"stopping rule '{name}' is already registered")
        RULES[name] = fn
        return fn

    return add


def get_rule(name: str) -> RuleFn:
    """The registered rule `name`; the error lists the valid names."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(
            f"unknown stopping rule '{name}' (stopping.rules); registered: {sorted(RULES)}"
        ) from None


def check_stopping_config(config: Mapping[str, Any]) -> None:
    """Refuse unknown names in `stopping.rules` before any job (asked of the registry itself).

    Part of alnsfw.config.check_config (SciPy and scikit-learn are imported only where used).
    """
    rules = (config.get("stopping") or {}).get("rules", [])
    unknown = [name for name in rules if name not in RULES]
    if unknown:
        raise ConfigError(
            f"stopping.rules has unknown {unknown}; registered stopping rules: {sorted(RULES)}. "
            "Fix the spelling, or add the rule with @register in alnsfw/al/stopping.py."
        )


def evaluate_rules(records: Sequence[CycleRecord], settings: StoppingSettings) -> list[Verdict]:
    """Every enabled rule's verdict on the records so far (first firing cycle), in config order.

    `records` must be in cycle order, one per cycle; a rule that lacks what it reads (e.g. no
    audit yet) does not fire, and its detail says why.
    """
    cycles = [r.cycle for r in records]
    if any(b <= a for a, b in zip(cycles, cycles[1:])):
        raise ValueError(f"stopping: records must be in increasing cycle order, got {cycles}")
    return [get_rule(name)(records, settings) for name in settings.rules]


# --------------------------------------------------------------------------------------------
# Measures the rules (and the loop that records for them) share


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two predicted-class vectors (scikit-learn), 1.0 when they are identical.

    Identical constant vectors (every item one class, both times) have chance agreement 1, so
    kappa is 0/0; nothing changed between the two models, which is what stability means, so
    it counts as 1.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"stop-set predictions of shapes {a.shape} and {b.shape}: the stop set must be the "
            "same items, in the same order, every cycle"
        )
    if len(a) == 0:
        raise ValueError("the stop set is empty")
    if np.array_equal(a, b):
        return 1.0
    from sklearn.metrics import cohen_kappa_score  # here: the Snakefile imports this module

    return float(cohen_kappa_score(a, b))


def mean_uncertainty(probabilities: np.ndarray) -> float:
    """Mean of 1 - max_c p_c over the rows of [n, k] class probabilities (0: all certain)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probabilities must be [n>0, k], got {p.shape}")
    return float(np.mean(1.0 - p.max(axis=1)))


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion correct/n (scipy.stats.binomtest)."""
    from scipy.stats import binomtest  # here: the Snakefile imports this module

    ci = binomtest(int(correct), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def kappa_windows(records: Sequence[CycleRecord]) -> list[float]:
    """Kappa of each record with the one before it (NaN for the first, or where one lacks
    predictions): window i compares cycles i-1 and i."""
    out = [float("nan")]
    for prev, cur in zip(records, records[1:]):
        if prev.stop_predictions is None or cur.stop_predictions is None:
            out.append(float("nan"))
        else:
            out.append(cohen_kappa(prev.stop_predictions, cur.stop_predictions))
    return out


def _fired(rule: str, record: CycleRecord, detail: str) -> Verdict:
    return Verdict(rule, True, record.cycle, record.labelled_share, detail)


def _not_fired(rule: str, detail: str) -> Verdict:
    return Verdict(rule, False, None, None, detail)


# --------------------------------------------------------------------------------------------
# The rules


@register("stabilizing_predictions")
def stabilizing_predictions(records: Sequence[CycleRecord], settings: StoppingSettings) -> Verdict:
    """Mean kappa of the last k windows >= threshold (Bloodgood & Vijay-Shanker 2009)."""
    name, k, threshold = "stabilizing_predictions", settings.kappa_windows, settings.kappa_threshold
    kappas = kappa_windows(records)
    best = float("nan")
    for i in range(k, len(records)):
        mean = float(np.mean(kappas[i - k + 1 : i + 1]))
        if np.isnan(mean):
            continue
        best = mean if np.isnan(best) else max(best, mean)
        if mean >= threshold:
            return _fired(
                name, records[i], f"mean kappa {mean:.4f} over the last {k} windows >= {threshold}"
            )
    if len(records) <= k:
        return _not_fired(name, f"{len(records)} cycles: {k} windows need {k + 1}")
    if np.isnan(best):
        return _not_fired(name, "no stop-set predictions recorded")
    return _not_fired(name, f"never fired: best mean kappa {best:.4f} < {threshold}")


@register("overall_uncertainty")
def overall_uncertainty(records: Sequence[CycleRecord], settings: StoppingSettings) -> Verdict:
    """Mean uncertainty 1 - max p of the unlabelled data <= threshold (Zhu et al. 2008)."""
    name, threshold = "overall_uncertainty", settings.uncertainty_threshold
    values = [r.pool_uncertainty for r in records if r.pool_uncertainty is not None]
    for record in records:
        u = record.pool_uncertainty
        if u is not None and not np.isnan(u) and u <= threshold:
            return _fired(name, record, f"mean uncertainty {u:.4f} <= {threshold}")
    if not values or all(np.isnan(values)):
        return _not_fired(name, "no uncertainty recorded")
    return _not_fired(
        name, f"never fired: lowest mean uncertainty {np.nanmin(values):.4f} > {threshold}"
    )


@register("audit_plateau")
def audit_plateau(records: Sequence[CycleRecord], settings: StoppingSettings) -> Verdict:
    """None of the last k audit estimates exceeds the upper 95% bound of the one k cycles back."""
    name, k = "audit_plateau", settings.audit_rounds
    usable = 0
    for i in range(k, len(records)):
        base = records[i - k]
        recent = [r.audit_accuracy for r in records[i - k + 1 : i + 1]]
        if base.audit_ci is None or any(a is None or np.isnan(a) for a in recent):
            continue
        usable += 1
        high = base.audit_ci[1]
        if max(recent) <= high:
            return _fired(
                name,
                records[i],
                f"audit accuracy {max(recent):.4f} at most over the last {k} cycles <= "
                f"{high:.4f}, the upper 95% bound at cycle {base.cycle}",
            )
    if len(records) <= k:
        return _not_fired(name, f"{len(records)} cycles: a plateau over {k} needs {k + 1}")
    if usable == 0:
        return _not_fired(name, "no audit estimates recorded")
    return _not_fired(
        name,
        f"never fired: the audit accuracy kept rising beyond its interval over every {k} cycles",
    )


@register("budget")
def budget(records: Sequence[CycleRecord], settings: StoppingSettings) -> Verdict:
    """The labelled share reached max_share, or the labelled count reached max_labels."""
    name, share, labels = "budget", settings.budget_share, settings.budget_labels
    if share is None and labels is None:
        return _not_fired(name, "no budget set (stopping.budget.max_share and max_labels null)")
    for record in records:
        # a share from n/N may sit a rounding error below the budget it reached
        if share is not None and record.labelled_share >= share - 1e-12:
            return _fired(name, record, f"labelled share {record.labelled_share:.4f} >= {share}")
        if labels is not None and record.n_labelled >= labels:
            return _fired(name, record, f"{record.n_labelled} labels >= {labels}")
    return _not_fired(name, "never fired: the budget was not reached")
