"""The labelling campaign (alnsfw.campaign) with a scripted Label Studio and a fake learner.

Seconds in all: the smoke dataset's keyframes (real videos, so task images are re-read at full
resolution) and logistic regression on mean colours. The real server is tests/test_campaign_ls.py.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
from campaign_fakes import ScriptedLabelStudio, fake_factory
from conftest import validated_config

from alnsfw.al.loop import TIMING_COLUMNS, LoopSettings, Split, run_active_learning
from alnsfw.al.pool import initial_labelled_mask
from alnsfw.al.seeding import RunSeeds
from alnsfw.campaign.client import FileClient
from alnsfw.campaign.core import Campaign, CampaignError, draw_by_video, wilson
from alnsfw.campaign.labels import LabelLog, resolve
from alnsfw.campaign.tasks import KeyframeIndex


def campaign_config(tmp_path, al=None, **campaign):
    cfg = validated_config(
        {
            "al": {"query_size": 5, "initial_fraction": 0.2, **(al or {})},
            "training": {"max_epochs": 3, "patience": 1, "augment": "none"},
            "campaign": {
                "dir": str(tmp_path / "campaign"),
                "image_dir": str(tmp_path / "served" / "images"),
                "audit_size": 8,
                "val_size": 6,
                "initial_size": 6,
                "strategy": "least_confidence",
                "audit_unit": "keyframe",
                "min_pool_labels": 1,
                **campaign,
            },
        }
    )
    cfg["training"]["learning_rate"] = 0.5  # the fake's step size
    return cfg


def truth_of(smoke_data):
    with h5py.File(smoke_data.keyframes, "r") as h5:
        return h5["label"][:].astype(np.int64)


def new_campaign(cfg, smoke_data, client, build=fake_factory):
    """A Campaign object as a fresh `alnsfw campaign` process would make it."""
    return Campaign(cfg, smoke_data.keyframes, client, build)


def plan_of(cfg):
    return json.loads((Path(cfg["campaign"]["dir"]) / "campaign.json").read_text())


@pytest.mark.parametrize(
    "strategy, al",
    [("least_confidence", {}), ("random", {}), ("coreset", {}), ("entropy", {"max_per_video": 1})],
)
def test_scripted_campaign_equals_simulation(smoke_data, tmp_path, strategy, al):
    """True-label annotator == simulated run: same queries, same metrics, every cycle."""
    cfg = campaign_config(tmp_path, al=al, strategy=strategy)
    truth = truth_of(smoke_data)
    seeds = RunSeeds.for_run(0, 0, strategy)
    ls = ScriptedLabelStudio()

    def sim_initial(pool):
        frac = cfg["al"]["initial_fraction"]
        rng = np.random.default_rng(seeds.initial)
        return pool[initial_labelled_mask(truth[pool], frac, rng)]

    start = new_campaign(cfg, smoke_data, ls).start(initial_rows=sim_initial)
    assert start.batch_pushed == 8 + 6 + len(plan_of(cfg)["initial"])
    for _ in range(40):
        ls.answer_all(truth)
        report = new_campaign(cfg, smoke_data, ls).round()
        assert report.trained
        if report.message.startswith("the whole pool is labelled"):
            break
    else:
        pytest.fail("campaign did not finish")
    plan = plan_of(cfg)
    split = Split(
        pool=np.asarray(plan["pool"]), val=np.asarray(plan["val"]), test=np.asarray(plan["audit"])
    )
    sim = run_active_learning(
        fake_factory(cfg, smoke_data.keyframes, None, None, seeds.learner),
        split,
        truth,
        strategy,
        LoopSettings.from_config(cfg),
        seeds,
        videos=KeyframeIndex.read(smoke_data.keyframes).video_ids(),
    )
    got = pd.read_csv(tmp_path / "campaign" / "cycles.csv").drop(columns=TIMING_COLUMNS)
    want = sim.cycles.drop(columns=TIMING_COLUMNS)
    assert len(got) == len(want) >= 3
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    state = json.loads(
        sorted((tmp_path / "campaign" / "checkpoint").glob("state-*.json"))[-1].read_text()
    )
    got_q = [(q["cycle"], q["rows"]) for q in state["loop"]["pool"]["queries"]]
    want_q = [(c, g["row"].tolist()) for c, g in sim.queries.groupby("cycle", sort=True)]
    assert got_q == want_q
    rounds = pd.read_csv(tmp_path / "campaign" / "rounds.csv")
    assert rounds["round"].tolist() == list(range(1, len(got) + 1))
    # the audit interval is scipy's Wilson interval of the audit accuracy
    last = rounds.iloc[-1]
    k = round(last["audit_accuracy"] * 8)
    assert (last["audit_ci_low"], last["audit_ci_high"]) == pytest.approx(wilson(k, 8))


def test_task_images_are_full_resolution_frames(smoke_data, tmp_path):
    """Task images are the keyframe's own video frame at the video's size, not the 32 px copy."""
    cfg = campaign_config(tmp_path)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    index = KeyframeIndex.read(smoke_data.keyframes)
    task = next(iter(ls.tasks.values()))
    data = task["data"]
    row = data["alnsfw_row"]
    assert data["image"].startswith("/data/local-files/?d=images/")
    image = cv2.imread(str(tmp_path / "served" / data["image"].split("d=")[1]))
    cap = cv2.VideoCapture(str(index.source[row]))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    frame = frames[int(index.video_frame[row])]
    assert image.shape == frame.shape and image.shape[0] > 32
    # the keyframe's own frame (JPEG only between them), not a neighbour nor a resized copy
    dist = [np.abs(image.astype(int) - f.astype(int)).mean() for f in frames]
    assert int(np.argmin(dist)) == int(index.video_frame[row]) and min(dist) < 16
    assert data["frame"] == index.video_frame[row] and data["video"] == index.video[row]
    assert data["time_s"] == pytest.approx(data["frame"] / cap.get(cv2.CAP_PROP_FPS), abs=1e-3)
    assert sorted(p.suffix for p in (tmp_path / "served" / "images").iterdir()) == [".jpg"] * len(
        ls.tasks
    )
    by_rank = sorted(ls.tasks.values(), key=lambda t: t["data"]["al_rank"])
    first = [t["data"]["purpose"] for t in by_rank[:7]]
    # interleaved: the first labels already hold pool, validation and audit items
    assert {"initial", "validation", "audit"} <= set(first), first
    audit_rows = [t["data"]["alnsfw_row"] for t in by_rank if t["data"]["purpose"] == "audit"]
    assert audit_rows != sorted(audit_rows)  # random order: a partial audit is a sample


def test_round_pushes_prediction_and_rank(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path, stop_min_per_class=1)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.batch_pushed == 5 and report.open_unlabelled == 5
    queried = [t for t in ls.tasks.values() if t["data"]["purpose"] == "query"]
    assert sorted(t["data"]["al_rank"] for t in queried) == list(range(5))
    for t in queried:
        (pred,) = t["predictions"]
        assert pred["model_version"] == "round-1" and 0.5 <= pred["score"] <= 1.0
        assert pred["result"][0]["value"]["choices"][0] in ("porn", "non_porn")
    text = report.text()
    for needle in ("round 1", "labelled:", "audit accuracy:", "95% Wilson CI", "open batch: 5"):
        assert needle in text
    from alnsfw.al.stopping import StoppingSettings

    rules = StoppingSettings.from_config(cfg).rules
    assert [v.rule for v in report.verdicts] == list(rules) and len(rules) >= 1
    assert "stop suggestion: " in text and all(f"    {r}: " in text for r in rules)


def test_skip_majority_tie_edit_delete(smoke_data, tmp_path):
    """Two annotators, a skip, a tie, an edit and a deletion after a pull: the log records each,
    the derived labels follow, skipped items are not queried again."""
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    plan = plan_of(cfg)
    init = plan["initial"]
    ls.answer_all(truth, who=1)
    ls.annotate(init[0], 1 - truth[init[0]], who=2)  # disagree -> tie, unlabelled
    ls.annotate(init[1], truth[init[1]], who=2)  # agree
    ls.annotate(init[2], None, who=1)  # annotator 1 changes mind: skip (only vote: skipped)
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.ties == 1 and report.skipped == 1
    # the tie goes back to Label Studio's queue for one more annotator (2 votes + 1)
    assert ls.requeued == {ls.task_of(init[0])["id"]: 3}
    assert report.agreement == pytest.approx(0.5)
    log = LabelLog(tmp_path / "campaign" / "labels.jsonl")
    labels = resolve(log.votes()).labels
    assert init[0] not in labels and init[2] not in labels and labels[init[1]] == truth[init[1]]
    state = json.loads(
        sorted((tmp_path / "campaign" / "checkpoint").glob("state-*.json"))[-1].read_text()
    )
    queried = {r for q in state["loop"]["pool"]["queries"] for r in q["rows"]}
    assert not queried & {init[0], init[2]}  # in flight (tie) or skipped: never candidates
    n_events = len(log.events)
    # edit after the pull: annotator 2 now agrees; annotator 1's label of init[3] is deleted
    ls.annotate(init[0], truth[init[0]], who=2)
    ls.delete(init[3], who=1)
    new_campaign(cfg, smoke_data, ls).round()
    log = LabelLog(tmp_path / "campaign" / "labels.jsonl")
    kinds = [e["event"] for e in log.events[n_events:]]
    assert sorted(kinds) == ["delete", "label"]
    assert [e["seq"] for e in log.events] == list(range(len(log.events)))
    labels = resolve(log.votes()).labels
    assert labels[init[0]] == truth[init[0]] and init[3] not in labels


def test_repeated_pull_counts_nothing_twice(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    first = new_campaign(cfg, smoke_data, ls).round()
    assert first.new_events == 20 and first.trained
    again = new_campaign(cfg, smoke_data, ls).round()
    assert again.new_events == 0 and not again.trained
    assert "no label changed since round 1" in again.message
    assert len(LabelLog(tmp_path / "campaign" / "labels.jsonl").events) == 20
    assert len(ls.tasks) == 25  # nothing pushed twice


def _rename_control(task):
    task["annotations"][0]["result"][0]["from_name"] = "lbl"


def _two_choices(task):
    task["annotations"][0]["result"][0]["value"]["choices"] = ["porn", "non_porn"]


@pytest.mark.parametrize(
    "spoil, needle",
    [
        (lambda t: t["data"].update(alnsfw_row=10**6), "unknown item"),
        (
            lambda t: t["annotations"][0]["result"][0]["value"].update(choices=["cat"]),
            "choice 'cat' is none of ['non_porn', 'porn']",
        ),
        (lambda t: t["annotations"][0].update(result=[]), "empty result"),
        (_two_choices, "several choices"),
        (_rename_control, "its choice is on control ['lbl'], not 'label' (a renamed control?)"),
    ],
)
def test_bad_labels_are_set_aside_and_the_rest_applies(smoke_data, tmp_path, spoil, needle):
    """One bad annotation is reported (task, annotator's email, reason, what to do) and set
    aside; every other label of the pull applies, and the problems log keeps it once."""
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    bad = list(ls.tasks.values())[3]
    spoil(bad)
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.trained and report.new_events == 19
    text = report.text()
    assert "set aside: 1 annotation(s)" in text and needle in text, text
    line = next(x for x in text.splitlines() if f"task {bad['id']}" in x)
    if "unknown item" not in needle:
        assert "by ann1@example.com" in line and "user 1" not in line, line
        assert "(or Skip)" not in line and "Update" in line or "campaign.labelstudio" in line
    logged = (tmp_path / "campaign" / "problems.jsonl").read_text().splitlines()
    assert len(logged) == 1 and json.loads(logged[0])["task_id"] == bad["id"]
    again = new_campaign(cfg, smoke_data, ls).round()  # the same problem: logged once
    assert again.new_events == 0 and "set aside: 1" in again.text()
    assert len((tmp_path / "campaign" / "problems.jsonl").read_text().splitlines()) == 1


def test_set_aside_edit_keeps_the_logged_label(smoke_data, tmp_path):
    """A label pulled before, then edited into an empty result: the log keeps the old label
    (no delete event) until the annotator fixes it."""
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    new_campaign(cfg, smoke_data, ls).round()
    row = plan_of(cfg)["initial"][0]
    ls.task_of(row)["annotations"][0]["result"] = []
    new_campaign(cfg, smoke_data, ls).round()
    log = LabelLog(tmp_path / "campaign" / "labels.jsonl")
    assert [e["event"] for e in log.events if e["row"] == row] == ["label"]
    assert resolve(log.votes()).labels[row] == truth[row]


def test_deleted_task_is_reported_and_its_row_released(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    row = plan_of(cfg)["initial"][0]
    tid = ls.task_of(row)["id"]
    del ls.tasks[tid]
    campaign = new_campaign(cfg, smoke_data, ls)
    report = campaign.round()
    assert campaign.pulled is not None and campaign.pulled.missing == {tid}
    assert f"deleted in Label Studio: 1 task(s) [{tid}]" in report.text()
    sent = json.loads((tmp_path / "campaign" / "tasks.json").read_text())
    assert row not in sent["sent_rows"] and str(tid) not in sent["task_rows"]


def test_foreign_tasks_are_counted_not_fatal_and_another_project_is(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    for k in range(3):  # a team's own tasks in the same project, labelled
        ls.tasks[9000 + k] = {
            "id": 9000 + k,
            "project": ls.project_id,
            "data": {"image": "x.jpg"},
            "annotations": [{"id": 99000 + k, "completed_by": 1, "result": []}],
        }
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.trained and report.new_events == 20
    assert "ignored: 3 task(s) of the project not made by this campaign" in report.text()
    list(ls.tasks.values())[0]["project"] = 99  # an export of another project: refused whole
    with pytest.raises(CampaignError, match="belongs to Label Studio project 99"):
        new_campaign(cfg, smoke_data, ls).round()


@pytest.mark.parametrize("failure, needle", [("down", "not reachable"), ("401", "401")])
def test_server_down_or_token_refused_then_resume(smoke_data, tmp_path, failure, needle):
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    ls.fail = failure
    with pytest.raises(CampaignError, match=needle):
        new_campaign(cfg, smoke_data, ls).round()
    assert not (tmp_path / "campaign" / "labels.jsonl").exists()
    ls.fail = None
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.trained and report.new_events == 20


def test_killed_round_resumes_with_nothing_lost(smoke_data, tmp_path):
    """A kill in training, then a server that fails after the round committed: rerunning gives
    the same campaign as an uninterrupted one, and no task is sent twice."""
    truth = truth_of(smoke_data)

    def run(folder, crash):
        cfg = campaign_config(folder)
        ls = ScriptedLabelStudio()
        new_campaign(cfg, smoke_data, ls).start()
        for n in range(3):
            ls.answer_all(truth)
            if crash and n == 1:

                def crashing(*args):
                    learner = fake_factory(*args)

                    def fit(*a, **k):
                        raise KeyboardInterrupt("killed")

                    learner.fit = fit
                    return learner

                with pytest.raises(KeyboardInterrupt):
                    new_campaign(cfg, smoke_data, ls, crashing).round()
                ls.fail_push = True
                with pytest.raises(CampaignError, match="rerun `alnsfw campaign round`"):
                    new_campaign(cfg, smoke_data, ls).round()
                ls.fail_push = False
            new_campaign(cfg, smoke_data, ls).round()
        cycles = pd.read_csv(folder / "campaign" / "cycles.csv").drop(columns=TIMING_COLUMNS)
        rows = sorted(t["data"]["alnsfw_row"] for t in ls.tasks.values())
        return cycles, rows, ls

    want, want_rows, _ = run(tmp_path / "a", crash=False)
    got, got_rows, ls = run(tmp_path / "b", crash=True)
    pd.testing.assert_frame_equal(got, want)
    assert got_rows == want_rows and len(set(got_rows)) == len(got_rows)


def test_file_route_task_json_and_export(smoke_data, tmp_path):
    """No server: round-0000.json is a task import; an LS JSON export is taken as is."""
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    new_campaign(cfg, smoke_data, FileClient(tmp_path / "campaign" / "tasks")).start()
    tasks = json.loads((tmp_path / "campaign" / "tasks" / "round-0000.json").read_text())
    assert len(tasks) == 20 and all("image" in t["data"] for t in tasks)
    # what Label Studio exports after import + labelling: ids, project, annotations
    export = []
    for i, task in enumerate(tasks):
        row = task["data"]["alnsfw_row"]
        export.append(
            {
                "id": 500 + i,
                "project": 3,
                "data": copy.deepcopy(task["data"]),
                "annotations": [
                    {
                        "id": 900 + i,
                        "completed_by": 1,
                        "was_cancelled": False,
                        "result": [
                            {
                                "from_name": "label",
                                "to_name": "image",
                                "type": "choices",
                                "value": {"choices": ["porn" if truth[row] else "non_porn"]},
                            }
                        ],
                        "updated_at": "2026-12-02T10:00:00Z",
                    }
                ],
            }
        )
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    client = FileClient(tmp_path / "campaign" / "tasks", path)
    report = new_campaign(cfg, smoke_data, client).round()
    assert report.trained and report.new_events == 20 and report.batch_pushed == 5
    assert len(json.loads((tmp_path / "campaign" / "tasks" / "round-0001.json").read_text())) == 5
    # the same export again: nothing new
    again = new_campaign(cfg, smoke_data, FileClient(tmp_path / "campaign" / "tasks", path)).round()
    assert again.new_events == 0 and not again.trained
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(CampaignError, match="not a Label Studio JSON export"):
        new_campaign(cfg, smoke_data, FileClient(tmp_path / "campaign" / "tasks", bad)).round()


def test_start_refuses_twice_and_round_without_start(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    ls = ScriptedLabelStudio()
    with pytest.raises(CampaignError, match="alnsfw campaign start"):
        new_campaign(cfg, smoke_data, ls).round()
    new_campaign(cfg, smoke_data, ls).start()
    with pytest.raises(CampaignError, match="already exists"):
        new_campaign(cfg, smoke_data, ls).start()
    report = new_campaign(cfg, smoke_data, ls).round()
    assert not report.trained and "not enough labels" in report.message


def test_draw_by_video_spreads_over_videos():
    videos = np.array([0] * 50 + [1] * 3 + [2] * 3)
    rows = draw_by_video(np.arange(56), videos, 9, np.random.default_rng(0))
    assert len(rows) == 9 and len(set(rows)) == 9
    assert np.bincount(videos[rows], minlength=3).tolist() == [3, 3, 3]
    again = draw_by_video(np.arange(56), videos, 9, np.random.default_rng(0))
    assert rows.tolist() == again.tolist()


def test_changed_settings_or_keyframes_are_refused_not_restarted(smoke_data, tmp_path):
    """A round after a config change stops (keeping every checkpoint) instead of starting over."""
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    new_campaign(cfg, smoke_data, ls).round()
    ls.answer_all(truth)
    changed = copy.deepcopy(cfg)
    changed["al"]["query_size"] = 7
    with pytest.raises(CampaignError, match="settings changed since the last round"):
        new_campaign(changed, smoke_data, ls).round()
    assert len(list((tmp_path / "campaign" / "checkpoint").glob("state-*.json"))) == 1
    other = tmp_path / "other.h5"
    shutil.copyfile(smoke_data.keyframes, other)
    with h5py.File(other, "a") as h5:
        h5.attrs["touched"] = 1
    with pytest.raises(CampaignError, match="not the keyframes file this campaign started on"):
        Campaign(cfg, other, ls, fake_factory).round()
    assert new_campaign(cfg, smoke_data, ls).round().trained


def test_status_reads_files_only(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    done = new_campaign(cfg, smoke_data, ls).round()
    ls.fail = "down"  # status never talks to the server
    status = new_campaign(cfg, smoke_data, None).status()
    assert status.round == 1 and status.status_only and "no pull, no training" in status.text()
    assert status.audit_accuracy == done.audit_accuracy and status.n_labelled == done.n_labelled
    assert status.open_unlabelled == done.open_unlabelled == 5
