"""The active-learning loop: train, test, query, reveal, until the training pool is labelled.

As in baal's ActiveLearningLoop, the loop knows nothing about the network: it talks to a
`LoopModel` (fit / predict_proba / reset / save / load, plus embed / mc_dropout_proba for the
strategies that declare them) and to a strategy (PoolView -> ranking). The same loop therefore
drives the full ResNet50V2, the feature-cache path, and the NumPy fake of the tests.

Three steps, one function each: `start_or_resume` (the cycle-0 state, or the last checkpoint's),
`run_cycle` (train, test, record, query), `assemble_result` (the four tables);
`run_active_learning` strings them together and checkpoints after every cycle.

The seam between asking and answering: `run_cycle` is `train_and_test` (train on the labels
received so far, test, the cycles.csv row), `propose_query` (score the candidates, choose the
batch; nothing is labelled yet) and `receive_labels` (the annotator's answers arrive). The
simulation's annotator knows every label, so `run_cycle` calls the three in a row; a campaign
(alnsfw.campaign) calls the first two, sends the batch to people, and passes what they labelled
to `receive_labels` in its next round: one loop, two sources of labels.

Cycle c (0-based): train on the labelled set (early stopping on the validation rows, which are
never in the pool), test on the fold's test rows, predict the validation rows (for the video rule,
and as the stop and audit set of the stopping rules: a stopping.csv line), record a cycles.csv
row, then score the unlabelled pool (only what the strategy declared it needs) and reveal the
`query_size` items it selects (fewer when fewer are left; at most `al.max_per_video` per video
when that is set).
The cycle that trains on 100% of the pool is the last one, and has nothing left to query.

After every cycle a checkpoint is saved (alnsfw.al.checkpoint); on start the loop resumes after
the last saved cycle. Everything random is drawn from generators that are seeded per run and saved
in the checkpoint, so a resumed run writes the same cycles.csv as an uninterrupted one, except
the *_seconds timing columns, which measure wall time and differ between any two runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import numpy as np
import pandas as pd

from alnsfw.al.checkpoint import CheckpointStore
from alnsfw.al.cost import COST_COLUMNS, Cost, CostModel, keyframe_tasks, unit_tasks
from alnsfw.al.pool import PoolState, cycle_sizes, initial_labelled_mask
from alnsfw.al.pseudo import PSEUDO_COLUMNS, PseudoLabels
from alnsfw.al.pseudo import choose as choose_pseudo
from alnsfw.al.seeding import RunSeeds
from alnsfw.al.stopping import CycleRecord, cohen_kappa, mean_uncertainty, wilson_interval
from alnsfw.al.strategies import (
    EMBEDDINGS,
    LABELLED_EMBEDDINGS,
    MC_PROBABILITIES,
    PROBABILITIES,
    VIDEO_IDS,
    PoolView,
    Strategy,
    get_strategy,
    select,
)
from alnsfw.al.units import (
    UNIT_SCORES,
    UNITS,
    check_units_split,
    rank_units,
    take_units,
    unit_ids,
    unit_scores,
)
from alnsfw.metrics import BINARY_METRIC_COLUMNS, binary_metrics, predicted_labels
from alnsfw.video_eval import VIDEO_METRIC_COLUMNS, VideoIndex, video_columns

log = logging.getLogger(__name__)

CYCLE_COLUMNS = [
    "cycle",
    "n_labelled",
    "pct_labelled",
    "n_labelled_porn",
    "n_labelled_nonporn",
    "n_test",
    *BINARY_METRIC_COLUMNS,
    *VIDEO_METRIC_COLUMNS,
    "val_loss",
    "epochs",
    "train_seconds",
    "score_seconds",
    "select_seconds",
    "test_seconds",
    # human cost (alnsfw.al.cost) and pseudo-labels (alnsfw.al.pseudo), appended so the
    # columns above keep their positions
    *COST_COLUMNS,
    *PSEUDO_COLUMNS,
]
TIMING_COLUMNS = ["train_seconds", "score_seconds", "select_seconds", "test_seconds"]
QUERY_COLUMNS = ["cycle", "row", "score", "rank", "label"]
PREDICTION_COLUMNS = ["row", "label", "prob_porn", "pred"]
# stopping.csv: what the stopping rules read (alnsfw.al.stopping), one line per cycle. The stop
# set and the audit set are both the validation split; stop_predictions packs its predicted
# classes as a string of 0/1, in the order of the split's `val` rows.
STOP_COLUMNS = [
    "cycle",
    "n_labelled",
    "labelled_share",
    "stop_n",
    "stop_kappa",
    "stop_uncertainty",
    "audit_correct",
    "audit_accuracy",
    "audit_ci_low",
    "audit_ci_high",
    "stop_predictions",
]
STOP_KEY = "stopping"  # where a cycle's row keeps its stopping.csv line (checkpointed with it)


class LoopModel(Protocol):
    """What the loop needs from a model (alnsfw.model.learner.Learner and the tests' fake).

    Named apart from that class: this is the interface, `Learner` is one network behind it.
    """

    def fit(
        self,
        train_rows: np.ndarray,
        val_rows: np.ndarray,
        max_epochs: int,
        patience: int,
        *,
        train_labels: np.ndarray,
        val_labels: np.ndarray,
    ) -> dict[str, Any]:
        """Train on rows with the labels the annotator gave (the learner reads none itself);
        returns at least {"epochs": int, "val_loss": float, "history": [...]}."""
        ...

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities [n, 2] of keyframe rows; column 1 = P(porn)."""
        ...

    def reset(self) -> None:
        """Return to the initial weights."""
        ...

    def save(self, directory: str) -> None:
        """Write weights, optimizer and RNG state into `directory`."""
        ...

    def load(self, directory: str) -> None:
        """Inverse of save."""
        ...


@dataclass(frozen=True)
class Split:
    """Keyframe rows of one fold and seed: training pool, validation (early stopping), test."""

    pool: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Split:
        """From the split json (results/splits/fold{fold}/seed{seed}.json)."""
        split = cls(
            pool=np.asarray(data["pool"], dtype=np.int64),
            val=np.asarray(data["val"], dtype=np.int64),
            test=np.asarray(data["test"], dtype=np.int64),
        )
        split.check()
        return split

    def check(self) -> None:
        """Refuse overlapping parts: a test or validation row in the pool would leak labels."""
        for a, b in (("pool", "val"), ("pool", "test"), ("val", "test")):
            shared = np.intersect1d(getattr(self, a), getattr(self, b))
            if len(shared):
                raise ValueError(f"split: {len(shared)} rows are in both {a} and {b}")
        if len(self.pool) == 0 or len(self.test) == 0:
            raise ValueError("split: the pool and the test set must not be empty")


@dataclass(frozen=True)
class LoopSettings:
    """The config values the loop uses (al.* and training.max_epochs / patience)."""

    initial_fraction: float
    query_size: int
    warm_start: bool
    max_epochs: int
    patience: int
    mc_samples: int | None = None  # al.mc_samples: dropout passes of strategies that sample
    max_per_video: int | None = None  # al.max_per_video: cap per video and query (None: off)
    unit: str = "keyframe"  # al.unit: what one task labels (alnsfw.al.units)
    unit_score: str = "mean"  # al.unit_score: a unit's score from its keyframes' scores
    shot_keyframes: int = 4  # al.shot_keyframes: consecutive keyframes per shot unit
    pseudo_labels: PseudoLabels | None = None  # al.pseudo_labels (None: off)
    cost: CostModel = field(default_factory=CostModel)  # al.cost

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"al.unit must be one of {list(UNITS)}, got {self.unit!r}")
        if self.unit_score not in UNIT_SCORES:
            raise ValueError(
                f"al.unit_score must be one of {list(UNIT_SCORES)}, got {self.unit_score!r}"
            )
        if self.unit != "keyframe" and self.max_per_video is not None:
            raise ValueError(
                "al.max_per_video caps the keyframes of one video in a keyframe query; with "
                f"al.unit: {self.unit} a task takes whole units: set al.max_per_video: null"
            )

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LoopSettings:
        """From a config with `al` and `training` sections."""
        al, training = config["al"], config["training"]
        return cls(
            initial_fraction=float(al["initial_fraction"]),
            query_size=int(al["query_size"]),
            warm_start=bool(al["warm_start"]),
            max_epochs=int(training["max_epochs"]),
            patience=int(training["patience"]),
            # absent from the params of the runs that do not sample (workflow: al_settings), so
            # changing it reruns only those that do
            mc_samples=int(al["mc_samples"]) if "mc_samples" in al else None,
            max_per_video=None if al["max_per_video"] is None else int(al["max_per_video"]),
            # absent from configs older than these keys (and from the tests' small configs):
            # the paper's loop
            unit=str(al.get("unit", "keyframe")),
            unit_score=str(al.get("unit_score", "mean")),
            shot_keyframes=int(al.get("shot_keyframes", 4)),
            pseudo_labels=PseudoLabels.from_config(al.get("pseudo_labels")),
            cost=CostModel.from_config(al.get("cost")),
        )


@dataclass
class RunResult:
    """The tables a run writes (cycles.csv, queries.csv, predictions.csv, stopping.csv)."""

    cycles: pd.DataFrame
    queries: pd.DataFrame
    predictions: pd.DataFrame
    stopping: pd.DataFrame


def predictions_table(rows: np.ndarray, labels: np.ndarray, proba: np.ndarray) -> pd.DataFrame:
    """predictions.csv: row, true label, P(porn), predicted class."""
    return pd.DataFrame(
        {
            "row": np.asarray(rows, dtype=np.int64),
            "label": np.asarray(labels, dtype=np.int64),
            "prob_porn": np.asarray(proba, dtype=np.float64)[:, 1],
            "pred": predicted_labels(proba).astype(np.int64),
        },
        columns=PREDICTION_COLUMNS,
    )


def queries_table(pool: PoolState, labels: np.ndarray) -> pd.DataFrame:
    """queries.csv: one line per queried item; rank 0 = most informative of its query."""
    records = [
        (q.cycle, row, score, rank, int(labels[row]))
        for q in pool.queries
        for rank, (row, score) in enumerate(zip(q.rows, q.scores))
    ]
    return pd.DataFrame.from_records(records, columns=QUERY_COLUMNS)


def stop_record(
    cycle: int,
    pool: PoolState,
    val_labels: np.ndarray,
    val_proba: np.ndarray,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """The stopping.csv line of a cycle, from the validation predictions it already made.

    The validation split is the stop set (never queried nor trained on; its labels unused) and
    the audit set (its accuracy and Wilson interval). Kappa with the previous cycle's line is
    kept for readers; the rules recompute it from the packed predictions.
    """
    pred = predicted_labels(val_proba)
    correct = int(np.sum(pred == val_labels))
    low, high = wilson_interval(correct, len(val_labels))
    kappa = float("nan")
    before = None if previous is None else unpack_predictions(previous["stop_predictions"])
    # a campaign's labelled validation items grow between rounds: no agreement is defined
    # between two different stop sets (the campaign's own stop record uses all its validation
    # items, labelled or not); the simulation's stop set never changes
    if before is not None and len(before) == len(pred):
        kappa = cohen_kappa(before, pred)
    return {
        "cycle": cycle,
        "n_labelled": pool.n_labelled,
        "labelled_share": pool.n_labelled / pool.n_pool,
        "stop_n": len(pred),
        "stop_kappa": kappa,
        "stop_uncertainty": mean_uncertainty(val_proba),
        "audit_correct": correct,
        "audit_accuracy": correct / len(val_labels),
        "audit_ci_low": low,
        "audit_ci_high": high,
        "stop_predictions": "".join("1" if p else "0" for p in pred),
    }


def unpack_predictions(packed: str) -> np.ndarray:
    """stopping.csv's stop_predictions (a string of 0/1) as an int8 array."""
    return (np.frombuffer(str(packed).encode("ascii"), dtype=np.uint8) - ord("0")).astype(np.int8)


def cycle_records(stopping: pd.DataFrame) -> list[CycleRecord]:
    """stopping.csv's lines as the records the stopping rules read.

    Read stopping.csv with `dtype={"stop_predictions": str}`: a packed string like "0011"
    would otherwise be parsed as the number 11 (refused here, naming the cycle).
    """
    lengths = stopping["stop_predictions"].map(lambda v: len(v) if isinstance(v, str) else -1)
    bad = stopping.loc[lengths != stopping["stop_n"], "cycle"].tolist()
    if bad:
        raise ValueError(
            f"stopping.csv: stop_predictions of cycle(s) {bad} do not hold stop_n classes; "
            "read the file with dtype={'stop_predictions': str}"
        )
    return [
        CycleRecord(
            cycle=int(r.cycle),
            n_labelled=int(r.n_labelled),
            labelled_share=float(r.labelled_share),
            stop_predictions=unpack_predictions(r.stop_predictions),
            pool_uncertainty=float(r.stop_uncertainty),
            audit_accuracy=float(r.audit_accuracy),
            audit_ci=(float(r.audit_ci_low), float(r.audit_ci_high)),
        )
        for r in stopping.itertuples(index=False)
    ]


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:  # noqa: ANN401
    """fn(*args) and its wall time in seconds."""
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


class RunState:
    """Everything the loop carries between cycles; its to_dict is what a checkpoint stores."""

    def __init__(
        self,
        pool: PoolState,
        rng: np.random.Generator,
        cycles: list[dict[str, Any]],
        predictions: dict[str, list] | None,
        cost: Cost | None = None,
    ) -> None:
        self.pool = pool
        self.rng = rng
        self.cycles = cycles
        self.predictions = predictions
        # what people did for the labels so far (alnsfw.al.cost); None: not counted (a caller
        # that builds the state itself and does not count): the cost columns stay empty
        self.cost = cost

    @property
    def finished(self) -> bool:
        """True once a cycle trained on the whole pool."""
        return bool(self.cycles) and self.cycles[-1]["n_labelled"] == self.pool.n_pool

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_cycle": len(self.cycles),
            "finished": self.finished,
            "pool": self.pool.to_dict(),
            "strategy_rng": self.rng.bit_generator.state,
            "cycles": self.cycles,
            "predictions": self.predictions,
            "cost": None if self.cost is None else self.cost.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        rng = np.random.default_rng()
        rng.bit_generator.state = data["strategy_rng"]
        cycles = [
            {k: (float("nan") if v is None else v) for k, v in row.items()}
            for row in data["cycles"]
        ]
        cost = data.get("cost")
        return cls(
            PoolState.from_dict(data["pool"]),
            rng,
            cycles,
            data["predictions"],
            None if cost is None else Cost.from_dict(cost),
        )


# The name used before the campaign drove the loop from outside (kept for old callers).
_RunState = RunState


def _fresh_state(split: Split, labels: np.ndarray, frac: float, seeds: RunSeeds) -> RunState:
    """Cycle-0 state: the per-class initial set and a fresh strategy generator."""
    mask = initial_labelled_mask(labels[split.pool], frac, np.random.default_rng(seeds.initial))
    pool = PoolState(pool_rows=split.pool, labelled=mask)
    # the initial set is labelled as keyframe tasks whatever al.unit says: every setting starts
    # from the same labels and the same cost, so they differ only by their queries
    cost = keyframe_tasks(pool.n_labelled)
    return RunState(pool, np.random.default_rng(seeds.strategy), [], None, cost)


def start_or_resume(
    model: LoopModel,
    split: Split,
    labels: np.ndarray,
    settings: LoopSettings,
    seeds: RunSeeds,
    checkpoints: CheckpointStore | None,
) -> RunState:
    """The state to continue from: the last checkpoint's (its weights loaded into `model`), or
    cycle 0's (the per-class initial set, `model` as built from `seeds.learner`)."""
    saved = checkpoints.load() if checkpoints is not None else None
    if saved is None:
        return _fresh_state(split, labels, settings.initial_fraction, seeds)
    state = RunState.from_dict(saved.state)
    if not np.array_equal(state.pool.pool_rows, split.pool):
        raise ValueError("checkpoint pool differs from the split's pool")
    model.load(str(saved.learner_dir))
    log.info("resuming after cycle %d from %s", len(state.cycles) - 1, checkpoints.directory)
    return state


def check_model_for(spec: Strategy, model: LoopModel) -> None:
    """Refuse, before any training, a model that lacks what the strategy declared it needs."""
    wanted = []
    if spec.needs & {EMBEDDINGS, LABELLED_EMBEDDINGS}:
        wanted.append("embed")
    if MC_PROBABILITIES in spec.needs:
        wanted.append("mc_dropout_proba")
    missing = [m for m in wanted if not callable(getattr(model, m, None))]
    if missing:
        raise TypeError(
            f"strategy '{spec.name}' needs {', '.join(missing)} from the model, which "
            f"{type(model).__name__} does not provide"
        )


def candidate_rows(pool: PoolState, exclude: np.ndarray | None = None) -> np.ndarray:
    """Unlabelled pool rows a query may choose, ascending: all of them, minus `exclude` (a
    campaign's rows still out for labelling, or just skipped); positions of a ranking index this."""
    unlabelled = pool.unlabelled_rows
    if exclude is None or len(exclude) == 0:
        return unlabelled
    return unlabelled[~np.isin(unlabelled, np.asarray(exclude, dtype=np.int64))]


def pool_view(
    spec: Strategy,
    model: LoopModel,
    pool: PoolState,
    settings: LoopSettings,
    videos: np.ndarray | None,
    rng: np.random.Generator,
    exclude: np.ndarray | None = None,
) -> PoolView:
    """Compute what `spec` declared, for the candidate rows (`candidate_rows`), and nothing else.

    Embeddings and probabilities come from one pass (`embed`); with `labelled_embeddings` that
    pass covers the whole pool and is split by the labelled mask. MC dropout draws its masks
    from a seed taken from the run's strategy generator, so it is resumable like everything else.
    """
    unlabelled = candidate_rows(pool, exclude)
    needs = spec.needs
    fields: dict[str, Any] = {}
    if needs & {EMBEDDINGS, LABELLED_EMBEDDINGS}:
        whole = LABELLED_EMBEDDINGS in needs
        emb, proba = model.embed(pool.pool_rows if whole else unlabelled)  # type: ignore[attr-defined]
        emb, proba = np.asarray(emb), np.asarray(proba)
        if whole:
            fields[LABELLED_EMBEDDINGS] = emb[pool.labelled]
            keep = np.isin(pool.pool_rows, unlabelled)
            emb, proba = emb[keep], proba[keep]
        fields[EMBEDDINGS] = emb
        if PROBABILITIES in needs:
            fields[PROBABILITIES] = proba
    elif PROBABILITIES in needs:
        fields[PROBABILITIES] = np.asarray(model.predict_proba(unlabelled))
    if MC_PROBABILITIES in needs:
        if settings.mc_samples is None:
            raise ValueError(f"strategy '{spec.name}' samples the model: give al.mc_samples")
        seed = int(rng.integers(2**63 - 1))
        fields[MC_PROBABILITIES] = np.asarray(
            model.mc_dropout_proba(unlabelled, settings.mc_samples, seed)  # type: ignore[attr-defined]
        )
    if VIDEO_IDS in needs or settings.max_per_video is not None:
        if videos is None:
            raise ValueError(
                f"strategy '{spec.name}' or al.max_per_video needs the video of every keyframe "
                "row, and none were given"
            )
        fields[VIDEO_IDS] = np.asarray(videos)[unlabelled]
    return PoolView(
        n=len(unlabelled),
        batch_size=settings.query_size,
        max_per_video=settings.max_per_video,
        **fields,
    )


@dataclass(frozen=True)
class Proposal:
    """A query that was chosen but whose labels have not arrived: rows, most informative first."""

    cycle: int
    rows: np.ndarray
    scores: np.ndarray
    score_seconds: float
    select_seconds: float
    # al.unit shot / video: the unit id of each row, and the model's guess pre-filled for each
    # (its predicted class at query time); None for keyframe queries
    units: np.ndarray | None = None
    guesses: np.ndarray | None = None


def cost_columns(cost: Cost | None, model: CostModel) -> dict[str, float]:
    """The human-cost columns of a cycles.csv row; NaN when the cost was not counted."""
    if cost is None:
        return dict.fromkeys(COST_COLUMNS, float("nan"))
    return cost.columns(model)


def pseudo_labels_for(
    model: LoopModel,
    state: RunState,
    labels: np.ndarray,
    settings: LoopSettings,
    cycle: int,
) -> dict[str, Any]:
    """CEAL's pseudo-labels for the training of `cycle` (alnsfw.al.pseudo), from the model as
    it is now (trained in the cycle before): rows, predicted labels and the cycles.csv values.

    Only unlabelled pool rows qualify, so a validation or test row never does. The wrong share
    compares with `labels`; NaN where any of those rows is unknown (-1: a campaign).
    """
    none = {"rows": None, "labels": None, "n": float("nan"), "wrong_share": float("nan")}
    none["threshold"] = float("nan")
    if settings.pseudo_labels is None:
        return none
    threshold = settings.pseudo_labels.threshold_at(cycle)
    candidates = state.pool.unlabelled_rows
    if cycle == 0 or len(candidates) == 0 or threshold <= 0.0:
        empty = np.array([], dtype=np.int64)
        return none | {"rows": empty, "labels": empty, "n": 0, "threshold": threshold}
    proba = np.asarray(model.predict_proba(candidates), dtype=np.float64)
    rows, guessed = choose_pseudo(candidates, proba, threshold)
    truth = np.asarray(labels)[rows]
    wrong = float("nan")
    if len(rows) and not np.any(truth < 0):
        wrong = float(np.mean(guessed != truth))
    return {
        "rows": rows,
        "labels": guessed,
        "n": len(rows),
        "wrong_share": wrong,
        "threshold": threshold,
    }


def train_and_test(
    model: LoopModel,
    state: RunState,
    split: Split,
    labels: np.ndarray,
    settings: LoopSettings,
    video_index: VideoIndex | None = None,
) -> dict[str, Any]:
    """Train on the labelled pool rows, test on `split.test`: the cycles.csv row of this cycle.

    `labels` only has to be right on the labelled pool rows, `split.val` and `split.test` (a
    campaign marks the rest -1). Stores the test predictions in `state`; appends nothing.
    """
    pool = state.pool
    cycle = len(state.cycles)
    pseudo = pseudo_labels_for(model, state, labels, settings, cycle)  # before any reset
    if not settings.warm_start:
        model.reset()
    train_rows = pool.labelled_rows
    fit_rows, fit_labels = train_rows, labels[train_rows]
    if pseudo["rows"] is not None and len(pseudo["rows"]):
        fit_rows = np.concatenate([train_rows, pseudo["rows"]])
        fit_labels = np.concatenate([fit_labels, pseudo["labels"].astype(fit_labels.dtype)])
        order = np.argsort(fit_rows, kind="stable")
        fit_rows, fit_labels = fit_rows[order], fit_labels[order]
    fit, train_s = _timed(
        partial(model.fit, train_labels=fit_labels, val_labels=labels[split.val]),
        fit_rows,
        split.val,
        settings.max_epochs,
        settings.patience,
    )
    proba, test_s = _timed(model.predict_proba, split.test)
    proba = np.asarray(proba, dtype=np.float64)
    val_proba = np.asarray(model.predict_proba(split.val), dtype=np.float64)
    previous = state.cycles[-1][STOP_KEY] if state.cycles else None
    n_porn = int(np.sum(labels[train_rows] == 1))
    state.predictions = {
        "prob_porn": proba[:, 1].tolist(),
        "pred": predicted_labels(proba).astype(int).tolist(),
    }
    return {
        "cycle": cycle,
        "n_labelled": pool.n_labelled,
        "pct_labelled": pool.pct_labelled(),
        "n_labelled_porn": n_porn,
        "n_labelled_nonporn": pool.n_labelled - n_porn,
        "n_test": len(split.test),
        **binary_metrics(labels[split.test], proba),
        **video_columns(video_index, model, split.val, split.test, proba, val_proba=val_proba),
        "val_loss": float(fit["val_loss"]),
        "epochs": int(fit["epochs"]),
        "train_seconds": train_s,
        "score_seconds": 0.0,
        "select_seconds": 0.0,
        "test_seconds": test_s,
        **cost_columns(state.cost, settings.cost),
        "n_pseudo": pseudo["n"],
        "pseudo_wrong_share": pseudo["wrong_share"],
        "pseudo_threshold": pseudo["threshold"],
        STOP_KEY: stop_record(cycle, pool, labels[split.val], val_proba, previous),
    }


def propose_query(
    model: LoopModel,
    state: RunState,
    spec: Strategy,
    settings: LoopSettings,
    cycle: int,
    videos: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
) -> Proposal:
    """Score the candidates (unlabelled, not in `exclude`) and choose the next batch.

    Draws from `state.rng` but labels nothing: the query is in flight until `receive_labels`.
    """
    if settings.unit != "keyframe":
        return _propose_units(model, state, spec, settings, cycle, videos, exclude)
    view, score_s = _timed(pool_view, spec, model, state.pool, settings, videos, state.rng, exclude)
    start = time.perf_counter()
    ranking = spec.rank(view, state.rng)
    chosen = select(ranking, view)
    select_s = time.perf_counter() - start
    return Proposal(
        cycle=int(cycle),
        rows=candidate_rows(state.pool, exclude)[chosen],
        scores=np.asarray(ranking.scores)[chosen],
        score_seconds=score_s,
        select_seconds=select_s,
    )


def _propose_units(
    model: LoopModel,
    state: RunState,
    spec: Strategy,
    settings: LoopSettings,
    cycle: int,
    videos: np.ndarray | None,
    exclude: np.ndarray | None,
) -> Proposal:
    """A query of whole units (al.unit shot / video; alnsfw.al.units says how they rank).

    Rows come grouped by unit in rank order; each row's score is its unit's. The model's
    guesses for the chosen rows are the labels a task shows pre-filled.
    """
    if videos is None:
        raise ValueError(f"al.unit: {settings.unit} needs the video of every keyframe row")
    rows = candidate_rows(state.pool, exclude)
    row_units = unit_ids(videos, settings.unit, settings.shot_keyframes)[rows]
    start = time.perf_counter()
    if spec.needs:
        view, score_s = _timed(
            pool_view, spec, model, state.pool, settings, videos, state.rng, exclude
        )
        start = time.perf_counter()
        ids, scores = unit_scores(row_units, spec.rank(view, state.rng).scores, settings.unit_score)
    else:  # needs nothing from the model (random): rank the units themselves
        score_s = 0.0
        ids = np.unique(row_units)
        scores = spec.rank(PoolView(n=len(ids), batch_size=len(ids)), state.rng).scores
    order = rank_units(scores)
    chosen, unit_rank = take_units(order, ids, row_units, settings.query_size)
    select_s = time.perf_counter() - start
    chosen_rows = rows[chosen]
    guesses = predicted_labels(np.asarray(model.predict_proba(chosen_rows), dtype=np.float64))
    return Proposal(
        cycle=int(cycle),
        rows=chosen_rows,
        scores=np.asarray(scores, dtype=np.float64)[order][unit_rank],
        score_seconds=score_s,
        select_seconds=select_s,
        units=row_units[chosen],
        guesses=guesses.astype(np.int64),
    )


def query_cost(proposal: Proposal, labels: np.ndarray, rows: np.ndarray | None = None) -> Cost:
    """What answering `rows` of the proposal (all by default) cost a person (alnsfw.al.cost):
    keyframe tasks, or unit tasks whose corrections compare the guesses with `labels`."""
    keep = np.ones(len(proposal.rows), dtype=bool)
    if rows is not None:
        keep = np.isin(proposal.rows, np.asarray(rows, dtype=np.int64))
    if proposal.units is None or proposal.guesses is None:
        return keyframe_tasks(int(keep.sum()))
    truth = np.asarray(labels)[proposal.rows[keep]]
    return unit_tasks(proposal.units[keep], proposal.guesses[keep], truth)


def receive_labels(state: RunState, proposal: Proposal, rows: np.ndarray | None = None) -> None:
    """The annotator answered `rows` of the proposal (all of them by default): mark them
    labelled and record them as that cycle's query, in the proposal's order."""
    keep = np.ones(len(proposal.rows), dtype=bool)
    if rows is not None:
        keep = np.isin(proposal.rows, np.asarray(rows, dtype=np.int64))
    state.pool.reveal(proposal.cycle, proposal.rows[keep], proposal.scores[keep])


def run_cycle(
    model: LoopModel,
    state: RunState,
    split: Split,
    labels: np.ndarray,
    spec: Strategy,
    settings: LoopSettings,
    videos: np.ndarray | None = None,
    video_index: VideoIndex | None = None,
) -> dict[str, Any]:
    """One simulated cycle: train and test, query (unless the pool is exhausted), and reveal the
    query at once (the simulated annotator knows every label). Appends the row to `state`."""
    row = train_and_test(model, state, split, labels, settings, video_index)
    if not state.pool.exhausted:
        proposal = propose_query(model, state, spec, settings, row["cycle"], videos)
        row["score_seconds"] = proposal.score_seconds
        row["select_seconds"] = proposal.select_seconds
        receive_labels(state, proposal)
        if state.cost is not None:
            state.cost = state.cost + query_cost(proposal, labels)
    state.cycles.append(row)
    return row


def assemble_result(state: RunState, split: Split, labels: np.ndarray) -> RunResult:
    """cycles.csv, queries.csv, the last cycle's predictions.csv and stopping.csv of a run."""
    predictions = pd.DataFrame(
        {
            "row": split.test,
            "label": labels[split.test].astype(np.int64),
            "prob_porn": np.asarray(state.predictions["prob_porn"], dtype=np.float64),
            "pred": np.asarray(state.predictions["pred"], dtype=np.int64),
        },
        columns=PREDICTION_COLUMNS,
    )
    return RunResult(
        cycles=pd.DataFrame(state.cycles, columns=CYCLE_COLUMNS),
        queries=queries_table(state.pool, labels),
        predictions=predictions,
        stopping=pd.DataFrame([row[STOP_KEY] for row in state.cycles], columns=STOP_COLUMNS),
    )


def run_active_learning(
    model: LoopModel,
    split: Split,
    labels: np.ndarray,
    strategy: str,
    settings: LoopSettings,
    seeds: RunSeeds,
    checkpoints: CheckpointStore | None = None,
    videos: np.ndarray | None = None,
    video_index: VideoIndex | None = None,
) -> RunResult:
    """Run (or resume) one active-learning run and return its tables.

    `labels` are the per-frame labels of all keyframe rows (the simulated annotator and the test
    truth); `videos` an integer video id per keyframe row, needed by `al.max_per_video` and by
    strategies that declare video ids. `model` must be freshly built from `seeds.learner`: on
    resume its saved state is loaded over it; on a fresh start it is used as built. With
    `video_index`, every cycle also records video-level metrics (alnsfw.video_eval); without,
    those columns are empty.
    """
    spec = get_strategy(strategy)
    check_model_for(spec, model)
    split.check()
    labels = np.asarray(labels)
    if settings.unit != "keyframe":
        if videos is None:
            raise ValueError(f"al.unit: {settings.unit} needs the video of every keyframe row")
        check_units_split(
            unit_ids(videos, settings.unit, settings.shot_keyframes), split.pool, split.test
        )
    state = start_or_resume(model, split, labels, settings, seeds, checkpoints)
    pool = state.pool
    n_cycles = len(state.cycles)
    if not state.finished:
        n_cycles += len(cycle_sizes(pool.n_pool, pool.n_labelled, settings.query_size))
    log.info(
        "strategy %s: pool %d, initial/now labelled %d, query size %d, %d cycles",
        strategy,
        pool.n_pool,
        pool.n_labelled,
        settings.query_size,
        n_cycles,
    )
    while not state.finished:
        started = time.perf_counter()
        row = run_cycle(model, state, split, labels, spec, settings, videos, video_index)
        if checkpoints is not None:
            checkpoints.save(row["cycle"], state.to_dict(), model.save)
        log.info(
            "cycle %d/%d: %5.1f%% labelled (%d/%d), accuracy %.4f, %.1f s",
            row["cycle"],
            n_cycles - 1,
            row["pct_labelled"],
            row["n_labelled"],
            pool.n_pool,
            row["accuracy"],
            time.perf_counter() - started,
        )
    return assemble_result(state, split, labels)
