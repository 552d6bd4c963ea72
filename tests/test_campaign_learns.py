"""Issue 28, "a campaign that learns": one config loader, the folder's own keyframes, the model
checked before anyone labels, an audit of held-out videos, a first round after about a dozen
labels, honest stop suggestions, a rerunnable start, readers that never delete, deleted tasks.
Each test failed on the campaign before these changes. Scripted Label Studio, fake learner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from campaign_fakes import ScriptedLabelStudio
from test_campaign import campaign_config, new_campaign, plan_of, truth_of

from alnsfw.campaign.core import CampaignError, interleave
from alnsfw.campaign.data import DataPrepError, check_keyframes_belong
from alnsfw.campaign.tasks import KeyframeIndex
from alnsfw.config import load_config

REPO = Path(__file__).resolve().parents[1]


def test_one_config_loader_for_workflow_and_campaign(tmp_path):
    """config.yaml, then the preset, then --config overrides; the schema's defaults and checks."""
    folder = tmp_path / "videos"
    folder.mkdir()
    config = load_config(
        [REPO / "presets/campaign-demo.yaml"],
        [f"data={{root: {folder}}}", "campaign={seed: 3}"],
        base=REPO / "config.yaml",
    )
    assert config["model"]["input_size"] == 64 and config["compute"]["feature_cache"]
    assert config["training"]["augment"] == "bank"  # the simulation's, from config.yaml
    assert config["campaign"]["seed"] == 3 and config["campaign"]["strategy"] == "least_confidence"
    assert config["campaign"]["audit_unit"] == "video"  # a schema default
    with pytest.raises(ValueError, match="campaign-demo.yaml"):
        load_config(
            [REPO / "presets/campaign-demo.yaml"],
            ["campaign={audit_unit: shot}"],
            base=REPO / "config.yaml",
        )
    with pytest.raises(ValueError, match="is not a folder"):  # check_config, before any job
        load_config([REPO / "presets/campaign-demo.yaml"], [], base=REPO / "config.yaml")


def test_keyframes_of_another_folder_are_refused(smoke_data, tmp_path):
    """The simulation's keyframes are not a folder's: named, with what to do."""
    folder = tmp_path / "videos"
    folder.mkdir()
    cfg = campaign_config(tmp_path)
    cfg["data"].update(source="folder", root=str(folder))
    with pytest.raises(DataPrepError, match="was not made from data.root"):
        check_keyframes_belong(smoke_data.keyframes, cfg)
    sources = set(KeyframeIndex.read(smoke_data.keyframes).source)
    cfg["data"]["root"] = str(Path(next(iter(sources))).parents[2])  # NPDI root: all of them
    check_keyframes_belong(smoke_data.keyframes, cfg)


def test_a_bad_model_setting_fails_start_before_any_task(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    ls = ScriptedLabelStudio()

    def broken(*args):
        raise ValueError("model.trainable_from = 'no_such_layer' is not a layer of ResNet50V2")

    with pytest.raises(CampaignError, match="no_such_layer"):
        new_campaign(cfg, smoke_data, ls, broken).start()
    assert not ls.tasks and not (tmp_path / "campaign" / "campaign.json").exists()


def test_audit_holds_out_whole_videos(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path, audit_unit="video")
    new_campaign(cfg, smoke_data, ScriptedLabelStudio()).start()
    plan = plan_of(cfg)
    video = KeyframeIndex.read(smoke_data.keyframes).video
    audit_videos = set(video[plan["audit"]])
    others = set(video[plan["pool"]]) | set(video[plan["val"]])
    assert len(plan["audit"]) >= 8 and not audit_videos & others
    assert plan["audit_unit"] == "video"


def test_audit_videos_from_a_list(smoke_data, tmp_path):
    index = KeyframeIndex.read(smoke_data.keyframes)
    names = sorted(set(index.video))[:2]
    listed = tmp_path / "held-out.txt"
    listed.write_text("\n".join(names) + "\n")
    cfg = campaign_config(tmp_path, audit_videos=str(listed))
    new_campaign(cfg, smoke_data, ScriptedLabelStudio()).start()
    plan = plan_of(cfg)
    assert sorted(set(index.video[plan["audit"]])) == names
    assert np.sum(np.isin(index.video, names)) == len(plan["audit"])
    listed.write_text("no_such_video\n")
    cfg2 = campaign_config(tmp_path / "b", audit_videos=str(listed))
    with pytest.raises(CampaignError, match="no_such_video"):
        new_campaign(cfg2, smoke_data, ScriptedLabelStudio()).start()


def test_interleave_keeps_every_prefix_in_proportion():
    pool, val, audit = list(range(12)), list(range(100, 106)), list(range(200, 206))
    merged = interleave([pool, val, audit])
    assert sorted(merged) == sorted(pool + val + audit)
    for n in range(4, len(merged) + 1):
        head = merged[:n]
        assert abs(sum(x < 100 for x in head) - n / 2) <= 1
    assert [x for x in merged if x < 100] == pool  # each group's own order kept


def test_first_round_trains_after_a_dozen_labels(smoke_data, tmp_path):
    """Label Studio serves tasks in send order: the first 12 give a trained round."""
    cfg = campaign_config(tmp_path, min_pool_labels=6)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    by_rank = sorted(ls.tasks.values(), key=lambda t: t["data"]["al_rank"])
    for task in by_rank[:12]:
        row = task["data"]["alnsfw_row"]
        ls.annotate(row, int(truth[row]))
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.trained, report.message


def test_no_stop_suggestion_before_both_classes(smoke_data, tmp_path):
    """Labels of one class only: the model predicts one class, and no rule may fire on it."""
    cfg = campaign_config(tmp_path, stop_min_per_class=2, min_pool_labels=1)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    for task in list(ls.tasks.values()):
        ls.annotate(task["data"]["alnsfw_row"], 0)  # everything called non-porn
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.trained and not report.verdicts
    assert "none yet: needs 2 labels of each class" in report.text()
    assert "0 porn" in report.text()


def test_round_prints_precision_recall_prevalence(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    report = new_campaign(cfg, smoke_data, ls).round()
    audit = np.asarray(plan_of(cfg)["audit"])
    assert report.prevalence[0] == pytest.approx(truth[audit].mean())
    lo, hi = report.prevalence[1]
    assert lo <= report.prevalence[0] <= hi
    line = next(x for x in report.text().splitlines() if "porn class" in x)
    assert "audit, porn class (95% Wilson CI):" in line
    assert "recall" in line and "prevalence" in line


def test_start_whose_push_failed_can_be_rerun(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    ls = ScriptedLabelStudio()
    ls.fail_push = True
    with pytest.raises(CampaignError):
        new_campaign(cfg, smoke_data, ls).start()
    first = plan_of(cfg)
    assert not first["started_complete"]
    ls.fail_push = False
    report = new_campaign(cfg, smoke_data, ls).start()  # not "already exists"
    again = plan_of(cfg)
    assert {k: again[k] for k in ("audit", "val", "initial")} == {
        k: first[k] for k in ("audit", "val", "initial")
    }
    rows = [t["data"]["alnsfw_row"] for t in ls.tasks.values()]
    assert len(rows) == len(set(rows)) == report.batch_pushed
    with pytest.raises(CampaignError, match="already exists"):
        new_campaign(cfg, smoke_data, ls).start()


def test_status_never_deletes_a_checkpoint_being_written(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    ls.answer_all(truth)
    new_campaign(cfg, smoke_data, ls).round()
    ckpt = tmp_path / "campaign" / "checkpoint"
    newest = sorted(ckpt.glob("state-*.json"))[-1]
    half = newest.with_name("state-9999.json")  # a save in progress: no checksum yet
    half.write_text(newest.read_text())
    (ckpt / "learner-9999").mkdir()
    status = new_campaign(cfg, smoke_data, None).status()
    assert status.round == 1
    assert half.exists() and (ckpt / "learner-9999").exists()


def test_a_task_deleted_in_label_studio_is_sent_again(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    audit_row = plan_of(cfg)["audit"][0]
    gone = ls.task_of(audit_row)["id"]
    del ls.tasks[gone]  # an admin deleted the task before anyone labelled it
    ls.answer_all(truth)
    new_campaign(cfg, smoke_data, ls).round()
    again = ls.task_of(audit_row)
    assert again["id"] != gone and again["data"]["purpose"] == "audit"
    tasks = json.loads((tmp_path / "campaign" / "tasks.json").read_text())
    assert str(gone) not in tasks["task_rows"]


def test_task_images_come_from_the_keyframe_stage_without_a_decode(tmp_path, monkeypatch):
    """keyframes.full_images: the keyframe stage keeps each keyframe at full size; a push then
    copies bytes (no video opened), and they are the very frames (real footage)."""
    import cv2

    from alnsfw.campaign import tasks as task_module
    from alnsfw.data import stages
    from alnsfw.data.keyframes import read_frames

    video = REPO / "tests/data/real/bikes.mp4"  # 6 shots of live action
    section = {**load_config([], [], base=REPO / "config.yaml")["keyframes"], "full_images": True}
    shard = tmp_path / "shard.h5"
    n = stages.extract_keyframes("bikes", "unlabelled", "video", [str(video)], shard, section)
    keyframes = tmp_path / "keyframes.h5"
    stages.merge_keyframes([shard], keyframes, tmp_path / "manifest.csv", None)
    index = KeyframeIndex.read(keyframes)
    assert n >= 2

    def no_decode(*args, **kwargs):
        raise AssertionError("a push must not open the video")

    monkeypatch.setattr(task_module.cv2, "VideoCapture", no_decode)
    out = task_module.write_task_images(list(range(n)), index, tmp_path / "images")
    monkeypatch.undo()
    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
    frames = read_frames(video, [int(f) for f in index.video_frame])
    for row, got in out.items():
        image = cv2.imread(str(got["file"]))
        want = cv2.cvtColor(frames[int(index.video_frame[row])], cv2.COLOR_RGB2BGR)
        assert image.shape == want.shape  # the video's own resolution
        assert np.abs(image.astype(int) - want.astype(int)).mean() < 3  # JPEG only
        assert got["time_s"] == pytest.approx(got["frame"] / fps, abs=1e-3)


def test_each_round_counts_what_people_paid(smoke_data, tmp_path):
    """Decisions (every annotation: labels, skips, edits) and keyframe images seen (tasks
    opened), per annotator, in the round's report (issue 30's currencies)."""
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    n = ls.answer_all(truth, who=1)
    rows = [t["data"]["alnsfw_row"] for t in ls.tasks.values()]
    ls.annotate(rows[0], int(truth[rows[0]]), who=2)
    ls.annotate(rows[1], None, who=2)  # a skip is a decision too, and the image was seen
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.people == {"ann1@example.com": (n, n), "ann2@example.com": (2, 2)}
    ls.annotate(rows[0], 1 - int(truth[rows[0]]), who=2)  # an edit: one more decision
    report = new_campaign(cfg, smoke_data, ls).round()
    assert report.people["ann2@example.com"] == (3, 2)
    assert "people (decisions / keyframe images seen): ann1@example.com " in report.text()


def test_exposure_cap_names_who_reached_it(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path, exposure_cap_per_day=5)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    import time as _time

    ls._stamp = lambda: _time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", _time.gmtime())
    ls.answer_all(truth, who=1)
    rows = [t["data"]["alnsfw_row"] for t in ls.tasks.values()]
    for row in rows[:2]:
        ls.annotate(row, int(truth[row]), who=2)
    report = new_campaign(cfg, smoke_data, ls).round()
    assert set(report.over_cap) == {"ann1@example.com"}  # 2 images < 5 for annotator 2
    assert "exposure cap: ann1@example.com has seen" in report.text()
    status = new_campaign(cfg, smoke_data, None).status()
    assert set(status.over_cap) == {"ann1@example.com"}


def test_validation_labels_arriving_over_rounds(smoke_data, tmp_path):
    """The labelled validation items grow between rounds (people label in any order): the
    next round trains (it crashed the served campaign's worker on real Label Studio)."""
    cfg = campaign_config(tmp_path)
    truth = truth_of(smoke_data)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    val = plan_of(cfg)["val"]
    for task in list(ls.tasks.values()):
        row = task["data"]["alnsfw_row"]
        if row not in val[2:]:
            ls.annotate(row, int(truth[row]))
    assert new_campaign(cfg, smoke_data, ls).round().trained
    ls.answer_all(truth)
    assert new_campaign(cfg, smoke_data, ls).round().trained
