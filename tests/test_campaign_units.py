"""Issue 30 in the campaign: `al.unit: shot | video` makes a query task of a unit's keyframes
(Label Studio's Repeater, one choice per keyframe), parsed into one label per keyframe and
costed as one decision plus one per keyframe changed from the pre-filled guess. Scripted Label
Studio, fake learner; the browser test (tests/test_campaign_browser.py) opens a real one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from campaign_fakes import ScriptedLabelStudio
from test_campaign import campaign_config, new_campaign, plan_of, truth_of

from alnsfw.al.cost import Cost, answered_task, unit_tasks
from alnsfw.al.units import unit_ids
from alnsfw.campaign.core import unit_groups
from alnsfw.campaign.labels import (
    UNIT_LABEL_CONFIG,
    LabelLog,
    LabelScheme,
    label_config,
    parse_tasks,
)
from alnsfw.campaign.mlbackend import unit_prediction
from alnsfw.campaign.tasks import KeyframeIndex

CAP = 3  # keyframes per task: small, so that the smoke videos' units are split


def _unit_campaign(tmp_path, smoke_data, unit="video"):
    cfg = campaign_config(tmp_path, al={"unit": unit, "shot_keyframes": 2}, unit_max_keyframes=CAP)
    ls = ScriptedLabelStudio()
    return cfg, ls


def _round_one(cfg, smoke_data, ls):
    """start, every start task answered with the truth, one round."""
    truth = truth_of(smoke_data)
    new_campaign(cfg, smoke_data, ls).start()
    start_ids = set(ls.tasks)
    ls.answer_all(truth)
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.trained, report.message
    return truth, start_ids, report


@pytest.mark.parametrize("unit", ["video", "shot"])
def test_a_unit_query_labels_exactly_its_units_keyframes(smoke_data, tmp_path, unit):
    cfg, ls = _unit_campaign(tmp_path, smoke_data, unit)
    truth, start_ids, _ = _round_one(cfg, smoke_data, ls)
    plan = plan_of(cfg)
    # the start block stays keyframe tasks: one-image units of the Repeater config
    assert all(len(ls.tasks[t]["data"]["alnsfw_rows"]) == 1 for t in start_ids)
    videos = KeyframeIndex.read(smoke_data.keyframes).video
    units = unit_ids(videos, unit, 2)
    queries = [t for t in ls.tasks.values() if t["id"] not in start_ids]
    assert queries and all(t["data"]["purpose"] == "query" for t in queries)
    held_out = set(plan["audit"]) | set(plan["val"])
    pool = set(plan["pool"])
    start_rows = {r for t in start_ids for r in ls.tasks[t]["data"]["alnsfw_rows"]}
    by_unit: dict[int, set[int]] = {}
    for task in queries:
        rows = task["data"]["alnsfw_rows"]
        assert 1 <= len(rows) <= CAP and rows == sorted(rows)
        assert len({units[r] for r in rows}) == 1, "a task holds one unit's keyframes"
        assert set(rows) <= pool and not set(rows) & held_out, "never audit or validation"
        assert [im["url"] for im in task["data"]["images"]] and len(task["data"]["images"]) == len(
            rows
        )
        by_unit.setdefault(int(units[rows[0]]), set()).update(rows)
    for u, rows in by_unit.items():
        # all of the unit's pool keyframes not labelled (nor sent) before: no more, no fewer
        expected = {r for r in np.flatnonzero(units == u) if r in pool} - start_rows
        assert rows == expected, (u, sorted(rows), sorted(expected))
    # the checkpointed query is what went out, grouped by unit
    tasks_json = json.loads((Path(cfg["campaign"]["dir"]) / "tasks.json").read_text())
    sent_units = {tuple(v) for v in tasks_json["task_units"].values()}
    assert sent_units == {
        tuple(t["data"]["alnsfw_rows"]) for t in queries if len(t["data"]["alnsfw_rows"]) > 1
    }

    # a person answers one unit task: every guess kept but one, which they change
    task = max(queries, key=lambda t: len(t["data"]["alnsfw_rows"]))
    rows = task["data"]["alnsfw_rows"]
    guesses = [
        {"non_porn": 0, "porn": 1}[r["value"]["choices"][0]]
        for r in task["predictions"][-1]["result"]
    ]
    assert len(guesses) == len(rows) >= 2
    answer = list(guesses)
    answer[1] = 1 - answer[1]
    ls.annotate_unit(task["id"], answer, who=2)
    camp = new_campaign(cfg, smoke_data, ls)
    camp.round()
    labels, _ = camp._labels(int(plan["n_rows"]))
    assert [int(labels[r]) for r in rows] == answer, "one label per keyframe, as chosen"
    decisions, images = camp.status().people["ann2@example.com"]
    assert (decisions, images) == (2, len(rows)), "1 task + 1 changed keyframe; all shown"


def test_parse_a_unit_annotation(tmp_path):
    """One annotation -> a label per keyframe; a keyframe without a choice is set aside alone
    and named; a skip skips every keyframe; cost counts the changed keyframe."""
    scheme = LabelScheme.for_label_config(LabelScheme.from_config({}, unit=True), UNIT_LABEL_CONFIG)
    assert scheme.repeated and scheme.control(2) == ("label_2", "image_2")
    rows = [10, 11, 12]
    guess = scheme.results([1, 0, None])  # the model had no guess on the third

    def task(tid, result, cancelled=False):
        return {
            "id": tid,
            "project": 7,
            "data": {"alnsfw_campaign": "c", "alnsfw_row": rows[0], "alnsfw_rows": rows},
            "annotations": [
                {
                    "id": tid * 10,
                    "completed_by": 1,
                    "result": result,
                    "was_cancelled": cancelled,
                    "prediction": {"result": guess},
                    "updated_at": f"2026-12-0{tid}T10:00:00Z",
                }
            ],
        }

    full = scheme.results([1, 1, 0])  # keyframe 2 changed, keyframe 3 chosen with no guess
    partial = [r for r in full if r["from_name"] != "label_1"]
    pull = parse_tasks(
        [task(1, full), task(2, partial), task(3, [], cancelled=True)],
        "c",
        {},
        set(rows),
        7,
        scheme,
    )
    got = {(a.task_id, a.row): a.label for a in pull.annotations}
    assert {k: v for k, v in got.items() if k[0] == 1} == {(1, 10): 1, (1, 11): 1, (1, 12): 0}
    assert {k: v for k, v in got.items() if k[0] == 2} == {(2, 10): 1, (2, 12): 0}
    assert {k: v for k, v in got.items() if k[0] == 3} == {
        (3, 10): None,
        (3, 11): None,
        (3, 12): None,
    }
    [problem] = pull.problems
    assert problem.task_id == 2 and problem.row == 11 and "keyframe 2" in problem.reason
    assert pull.held == {(20, 11)}

    log = LabelLog(tmp_path / "labels.jsonl")
    log.append(log.diff([a for a in pull.annotations if a.task_id == 1], {1}))
    # 1 task + 2 corrections (keyframe 2 changed, keyframe 3 had no guess); 3 images
    assert log.costs() == {"user 1": Cost(tasks=1, corrections=2, keyframes_shown=3)}
    assert log.human_cost() == {"user 1": (3, 3)}
    # the same pulled twice: nothing new (the log keys a unit annotation by keyframe)
    assert log.diff([a for a in pull.annotations if a.task_id == 1], {1}) == []


def test_cost_rules_known_answers():
    assert answered_task([None], [1]) == Cost(1, 0, 1)  # a keyframe task: one decision
    assert answered_task([1, 0, 1], [1, 0, 1]) == Cost(1, 0, 3)
    assert answered_task([1, 0, None], [0, 0, 1]) == Cost(1, 2, 3)
    assert answered_task([1, 0], [None, None]) == Cost(1, 0, 2)  # a skip
    # the simulation's rule on the same answers
    assert unit_tasks(np.zeros(3), np.array([1, 0, 1]), np.array([0, 0, 1])) == answered_task(
        [1, 0, 1], [0, 0, 1]
    )


def test_unit_groups_split_long_units_evenly():
    rows = np.array([9, 7, 8, 1, 2, 3, 4, 5, 6, 20])
    units = np.array([2, 2, 2, 5, 5, 5, 5, 5, 5, 1])
    assert unit_groups(rows, units, 4) == [[7, 8, 9], [1, 2, 3], [4, 5, 6], [20]]
    assert unit_groups(rows, units, 12) == [[7, 8, 9], [1, 2, 3, 4, 5, 6], [20]]


def test_unit_config_and_predict():
    config = label_config("hover", unit=True)
    assert '<Repeater on="$images"' in config and "blur(28px)" in config
    scheme = LabelScheme.from_config({}, unit=True)
    got = unit_prediction([0.9, None, 0.2], "round-3", scheme)
    assert [(r["from_name"], r["value"]["choices"]) for r in got["result"]] == [
        ("label_0", ["porn"]),
        ("label_2", ["non_porn"]),
    ]
    assert got["score"] == pytest.approx(0.85) and got["model_version"] == "round-3"
    with pytest.raises(ValueError, match="unit labelling config"):
        LabelScheme().results([0, 1])
