"""The Label Studio adapter on hand-made task JSON: parsing, the choice mapping, ground truth,
ties, deletions, older export files, task display, and one export per round. No server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alnsfw.campaign import client as client_mod
from alnsfw.campaign.client import FileClient, LabelStudioClient, PredictionItem
from alnsfw.campaign.labels import (
    LabelInputError,
    LabelLog,
    LabelScheme,
    parse_tasks,
    requeue_overlaps,
    resolve,
)
from alnsfw.campaign.tasks import build_task, local_files_url, relative_source

CAMPAIGN = "alnsfw-test"


def ann(aid, who, choice=None, *, skip=False, at="2026-12-02T10:00:00Z", control="label", **kw):
    result = (
        []
        if choice is None
        else [
            {
                "from_name": control,
                "to_name": "image",
                "type": "choices",
                "value": {"choices": [choice]},
            }
        ]
    )
    return {
        "id": aid,
        "completed_by": who,
        "result": result,
        "was_cancelled": skip,
        "updated_at": at,
        **kw,
    }


def task(tid, row, *anns, campaign=CAMPAIGN):
    return {
        "id": tid,
        "project": 1,
        "data": {"alnsfw_campaign": campaign, "alnsfw_row": row},
        "annotations": list(anns),
    }


def test_choice_mapping_several_names_unsure_is_a_skip():
    scheme = LabelScheme.from_config(
        {"choices": {"porn": ["porn", "explicit"], "non_porn": ["safe"], "unsure": ["not sure"]}}
    )
    pulled = parse_tasks(
        [
            task(1, 0, ann(10, 1, "explicit")),
            task(2, 1, ann(11, 1, "safe")),
            task(3, 2, ann(12, 1, "not sure")),
            task(4, 3, ann(13, 1, "porn")),
        ],
        CAMPAIGN,
        {},
        {0, 1, 2, 3},
        scheme=scheme,
    )
    assert not pulled.problems
    assert {a.row: a.label for a in pulled.annotations} == {0: 1, 1: 0, 2: None, 3: 1}
    assert scheme.name_of(1) == "porn" and scheme.result(0)[0]["value"]["choices"] == ["safe"]
    with pytest.raises(LabelInputError, match="listed under two classes"):
        LabelScheme.from_config({"choices": {"porn": ["x"], "non_porn": ["x"]}})
    with pytest.raises(LabelInputError, match="choices.non_porn is empty"):
        LabelScheme.from_config({"choices": {"porn": ["x"]}})


TEAM_CONFIG = (
    '<View><Image name="img" value="$image"/><Choices name="verdict" toName="img">'
    '<Choice value="explicit"/><Choice value="safe"/><Choice value="not sure"/></Choices>'
    '<TextArea name="note" toName="img"/></View>'
)


def test_label_config_checked_and_control_found():
    scheme = LabelScheme.from_config(
        {"choices": {"porn": ["explicit", "porn"], "non_porn": ["safe"], "unsure": ["not sure"]}}
    )
    found = scheme.for_label_config(TEAM_CONFIG)
    assert (found.from_name, found.to_name) == ("verdict", "img")
    assert found.name_of(1) == "explicit"  # pre-annotations use a value the project offers
    uncovered = LabelScheme.from_config({"choices": {"porn": ["explicit"], "non_porn": ["safe"]}})
    with pytest.raises(LabelInputError, match=r"\['not sure'\] of control 'verdict'"):
        uncovered.for_label_config(TEAM_CONFIG)
    named = LabelScheme.from_config(
        {
            "choices": {"porn": ["explicit"], "non_porn": ["safe"], "unsure": ["not sure"]},
            "from_name": "label",
        }
    )
    with pytest.raises(LabelInputError, match="no Choices control named 'label'"):
        named.for_label_config(TEAM_CONFIG)


def test_annotators_named_by_email_ground_truth_outranks_votes_lead_time_logged(tmp_path):
    users = {1: "ann1@example.com", 2: "ann2@example.com", 3: "lead@example.com"}
    pulled = parse_tasks(
        [
            task(
                1,
                0,
                ann(10, 1, "porn", lead_time=3.5),
                ann(11, 2, "porn"),
                ann(12, 3, "non_porn", ground_truth=True),
            )
        ],
        CAMPAIGN,
        {},
        {0},
        users=users,
    )
    log = LabelLog(tmp_path / "labels.jsonl")
    log.append(log.diff(pulled.annotations, set(pulled.seen)))
    assert {e["annotator"] for e in log.events} == set(users.values())
    assert next(e for e in log.events if e["annotation_id"] == 10)["lead_time"] == 3.5
    resolved = resolve(log.votes(), log.ground_truth())
    assert resolved.labels == {0: 0} and resolved.ground_truth == [0]  # 2 votes lose to it
    assert resolve(log.votes()).labels == {0: 1}  # without the ground truth: the majority
    # an unknown user id is named `user <id>`, never a bare number
    again = parse_tasks([task(1, 0, ann(10, 7, "porn"))], CAMPAIGN, {}, {0}, users=users)
    assert again.annotations[0].annotator == "user 7"


def test_tie_goes_back_to_the_queue_for_one_more_annotator():
    votes = {0: {"a": 1, "b": 0}, 1: {"a": 1, "b": 1}, 2: {"a": 1, "b": 0, "c": None}}
    resolved = resolve(votes)
    assert resolved.ties == [0, 2]
    assert requeue_overlaps(resolved, votes, {0: 100, 1: 101, 2: 102}, 1) == {100: 3, 102: 3}
    assert requeue_overlaps(resolved, votes, {0: 100, 1: 101, 2: 102}, 2) == {100: 4, 102: 4}
    assert requeue_overlaps(resolved, votes, {0: 100}, 0) == {}


def test_deleted_task_reported_and_file_never_reads_as_deletions(tmp_path):
    known = {1: 0, 2: 1, 3: 2}
    full = parse_tasks([task(1, 0), task(3, 2)], CAMPAIGN, known, {0, 1, 2}, complete=True)
    assert full.missing == {2}
    filtered = parse_tasks([task(1, 0)], CAMPAIGN, known, {0, 1, 2}, complete=False)
    assert filtered.missing == set()
    # an older export file: a later label is neither deleted nor rolled back
    log = LabelLog(tmp_path / "labels.jsonl")
    new = parse_tasks(
        [
            task(
                1,
                0,
                ann(10, 1, "porn", at="2026-12-02T11:00:00Z"),
                ann(11, 2, "porn", at="2026-12-02T12:00:00Z"),
            )
        ],
        CAMPAIGN,
        {},
        {0},
    )
    log.append(log.diff(new.annotations, set(new.seen)))
    old = parse_tasks(
        [task(1, 0, ann(10, 1, "non_porn", at="2026-12-02T10:00:00Z"))],
        CAMPAIGN,
        known,
        {0},
        complete=False,
    )
    assert log.diff(old.annotations, set(old.seen), old.held, old.newest) == []
    # a newer file without annotation 11: deleted (it is older than the file)
    newer = parse_tasks(
        [task(1, 0, ann(10, 1, "porn", at="2026-12-02T13:00:00Z"))],
        CAMPAIGN,
        known,
        {0},
        complete=False,
    )
    events = log.diff(newer.annotations, set(newer.seen), newer.held, newer.newest)
    assert [(e["event"], e["annotation_id"]) for e in events] == [("delete", 11)]


def test_file_client_pull_is_incomplete(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps([task(1, 0)]))
    tasks, complete = FileClient(tmp_path / "tasks", path).pull()
    assert len(tasks) == 1 and complete is False


def test_task_shows_own_path_time_guess_and_numbers(tmp_path):
    root = tmp_path / "videos"
    source = root / "Ünïcode dir" / "sub folder" / "vidéo 日本.mp4"
    rel = relative_source(source, root)
    assert rel == "Ünïcode dir/sub folder/vidéo 日本.mp4"
    image = {
        "file": tmp_path / "img" / "v_f000012_r3.jpg",
        "video": "Unicode_dir__sub",
        "frame": 12,
        "time_s": 0.48,
    }
    t = build_task(
        3, image, tmp_path, CAMPAIGN, 2, "query", 0, 0.9, 0.83, video_path=rel, queue_score=0.1
    )
    data = t["data"]
    assert data["video_path"] == rel
    for key in ("time_s", "al_score", "confidence"):
        assert isinstance(data[key], float), key
    for key in ("frame", "al_rank", "round", "alnsfw_row"):
        assert isinstance(data[key], int) and not isinstance(data[key], bool), key
    assert "model's guess" in data["guess"] and "83% sure" in data["guess"]
    (pred,) = t["predictions"]
    assert pred["score"] == 0.1 and pred["result"][0]["value"]["choices"] == ["porn"]
    hidden = build_task(
        3, image, tmp_path, CAMPAIGN, 2, "query", 0, 0.9, 0.55, hide_guess_below=0.7
    )
    assert hidden["predictions"][0]["result"] == [] and "no guess shown" in hidden["data"]["guess"]
    assert (
        "no model guess yet"
        in build_task(3, image, tmp_path, CAMPAIGN, 0, "audit", 0, None, None)["data"]["guess"]
    )
    assert local_files_url(tmp_path / "é dir" / "x.jpg", tmp_path) == (
        "/data/local-files/?d=%C3%A9%20dir/x.jpg"
    )


class FakeServer:
    """LabelStudioClient._send answered in memory; counts the requests."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.tasks = [task(1, 0), task(2, 1)]

    def __call__(self, method, path, what, auth=True, **kw):
        self.calls.append((method, path))
        if path.endswith("/export"):
            return [dict(t) for t in self.tasks]
        if path.endswith("/import"):
            return {"task_ids": list(range(50, 50 + len(kw["json"])))}
        if path == "/api/users/":
            return [{"id": 1, "email": "ann1@example.com"}]
        if path.startswith("/api/projects/") and method == "GET":
            return {"id": 1, "label_config": client_mod.label_config()}
        return {}


@pytest.fixture
def fake_client(monkeypatch, tmp_path):
    monkeypatch.setenv("ALNSFW_TEST_TOKEN", "abcdef")
    client = LabelStudioClient("http://x", "ALNSFW_TEST_TOKEN", "t", tmp_path, project_id=1)
    server = FakeServer()
    monkeypatch.setattr(client, "_send", server)
    return client, server


def test_one_export_per_round(fake_client):
    client, server = fake_client
    tasks, complete = client.pull()
    assert complete and len(tasks) == 2
    assert client.users() == {1: "ann1@example.com"}
    assert client.users() == {1: "ann1@example.com"}
    assert client.sent_rows() == {0, 1}
    ids = client.push([{"data": {"alnsfw_row": 5}}], 1)
    assert ids == {5: 50} and client.sent_rows() == {0, 1, 5}
    exports = [c for c in server.calls if c[1].endswith("/export")]
    users = [c for c in server.calls if c[1] == "/api/users/"]
    assert len(exports) == 1 and len(users) == 1, server.calls


def test_queue_methods_send_what_label_studio_needs(fake_client):
    client, server = fake_client
    sent = []
    server_call = server.__call__

    def record(method, path, what, auth=True, **kw):
        sent.append((method, path, kw.get("json")))
        return server_call(method, path, what, auth, **kw)

    client._send = record
    n = client.replace_predictions(
        [PredictionItem(1, 1, 0.2), PredictionItem(2, None, 0.1)], "round-3", previous="round-2"
    )
    assert n == 2
    (imp, patch, delete) = sent
    assert imp[1] == "/api/projects/1/import/predictions"
    assert [p["score"] for p in imp[2]] == [0.2, 0.1]
    assert imp[2][0]["result"][0]["value"]["choices"] == ["porn"] and imp[2][1]["result"] == []
    assert {p["model_version"] for p in imp[2]} == {"round-3"}
    assert patch == ("PATCH", "/api/projects/1", {"model_version": "round-3"})
    assert delete == ("DELETE", "/api/projects/1/model-versions/", {"model_version": "round-2"})
    sent.clear()
    client.requeue({7: 3})
    assert sent == [("PATCH", "/api/tasks/7", {"overlap": 3, "is_labeled": False})]


def test_docs_semantics_table_is_there():
    text = (Path(__file__).resolve().parents[1] / "docs" / "campaign.md").read_text()
    assert "## Label Studio's semantics" in text


def test_blur_on_hover_is_css_in_the_labelling_config():
    """campaign.blur: hover adds Label Studio's <Style> tag, blurring the image until pointed
    at; the config is still one XML document with our controls (the browser test looks)."""
    import xml.etree.ElementTree as ET

    from alnsfw.campaign.labels import LABEL_CONFIG, label_config

    assert label_config("none") == LABEL_CONFIG
    blurred = ET.fromstring(label_config("hover"))
    style = blurred.find("Style")
    assert style is not None and "blur(" in style.text and ":hover" in style.text
    assert [c.tag for c in blurred][1:] == [c.tag for c in ET.fromstring(LABEL_CONFIG)]
