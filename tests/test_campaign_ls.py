"""A campaign against a real Label Studio 1.23.2 (`make test-labelstudio`; marker labelstudio).

Uses the session's Label Studio (`labelstudio_server`, tests/labelstudio_server.py: from
.labelstudio/venv on a free port of 127.0.0.1, its data kept in .labelstudio/test-data). Then,
as a team would: a folder of unlabelled videos -> keyframes (the folder source) -> `alnsfw
campaign start` (project, local storage and tasks made over the REST API) -> two annotators
label through Label Studio's HTTP API, disagreeing sometimes, one skip, an edit and a deletion
after a pull -> three rounds -> a down server and a wrong token answered with what to do ->
`alnsfw campaign export` -> `alnsfw predict` on a video. The SDK (label-studio-sdk 2.1.2, in
Label Studio's venv) checks what the project holds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest
import requests
import yaml
from labelstudio_server import LS_BIN, LS_DIR, REPO, TOKEN, LabelStudioServer, free_port

from alnsfw.campaign.labels import LabelLog

pytestmark = [
    pytest.mark.labelstudio,
    pytest.mark.skipif(not LS_BIN.exists(), reason="run `make labelstudio-install` first"),
]
sys.path.insert(0, str(REPO / "tools"))


@pytest.fixture(scope="module")
def server(labelstudio_server: LabelStudioServer) -> LabelStudioServer:
    """The session's Label Studio (tests/labelstudio_server.py)."""
    return labelstudio_server


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`alnsfw ...` as a user runs it (this checkout's src)."""
    full = os.environ | {"PYTHONPATH": str(REPO / "src")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "alnsfw.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


def _api(server, method, path, **kw):
    r = requests.request(
        method,
        server["url"] + path,
        headers={"Authorization": f"Token {TOKEN}"},
        timeout=30,
        **kw,
    )
    r.raise_for_status()
    return r.json() if r.content else None


def _choice(label: int) -> list[dict]:
    return [
        {
            "from_name": "label",
            "to_name": "image",
            "type": "choices",
            "value": {"choices": ["porn" if label else "non_porn"]},
        }
    ]


def test_campaign_on_a_real_label_studio(server, tmp_path):
    from campaign_demo import make_folder, second_annotator, truth_by_row

    t0 = time.perf_counter()
    # a folder of unlabelled videos -> keyframes through the folder source
    make_folder(tmp_path / "demo", {"vPorn": 5, "vNonPornEasy": 3, "vNonPornDifficulty": 3})
    work = server["root"] / uuid.uuid4().hex[:8]
    cfg = yaml.safe_load((REPO / "presets" / "campaign-demo.yaml").read_text())
    cfg["data"]["root"] = str(tmp_path / "demo" / "videos")
    cfg["al"]["query_size"] = 6
    cfg["campaign"].update(
        dir=str(work / "campaign"),
        image_dir=str(work / "images"),
        audit_size=10,
        val_size=6,
        initial_size=8,
    )
    cfg["campaign"]["labelstudio"].update(
        url=server["url"], document_root=str(server["root"]), project_title=f"test {work.name}"
    )
    config_file = tmp_path / "campaign.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    from alnsfw.config import load_config

    load_config([str(config_file)])  # the config is valid as the workflow sees it
    # no --keyframes: `start` makes the folder's keyframes and feature cache itself, with the
    # workflow's rules, in <campaign.dir>/work
    keyframes = work / "campaign" / "work" / "results" / "keyframes" / "keyframes.h5"
    common = ["--config", str(config_file)]
    env = {"ALNSFW_LS_TOKEN": TOKEN}

    # no token in the environment: refused before anything is made
    done = _cli("campaign", "start", *common, env={"ALNSFW_LS_TOKEN": ""})
    assert done.returncode == 1 and "set the environment variable ALNSFW_LS_TOKEN" in done.stderr
    done = _cli("campaign", "start", *common, env=env)
    assert done.returncode == 0, done.stderr
    print(done.stdout)
    plan = json.loads((work / "campaign" / "campaign.json").read_text())
    project = plan["project_id"]
    truth = truth_by_row(str(keyframes), str(tmp_path / "demo" / "truth.csv"))
    tasks = _api(
        server,
        "GET",
        f"/api/projects/{project}/export",
        params={"exportType": "JSON", "download_all_tasks": "true"},
    )
    assert len(tasks) == len(plan["audit"]) + 6 + 8 and len(plan["audit"]) >= 10
    # the task image is served by Label Studio from the local storage, at full resolution
    img = requests.get(
        server["url"] + tasks[0]["data"]["image"],
        headers={"Authorization": f"Token {TOKEN}"},
        timeout=30,
    )
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    second = second_annotator(server["url"], TOKEN)

    def label_open(round_no: int, skip: bool) -> dict:
        """Annotator 1 labels every open task; annotator 2 every third, wrong on one in 4."""
        out = {"skipped": None, "ann": {}}
        export = _api(
            server,
            "GET",
            f"/api/projects/{project}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )
        open_tasks = [t for t in sorted(export, key=lambda t: t["id"]) if not t["annotations"]]
        for k, task in enumerate(open_tasks):
            row = task["data"]["alnsfw_row"]
            if skip and out["skipped"] is None and task["data"]["purpose"] == "query":
                body = {"result": [], "was_cancelled": True}
                _api(server, "POST", f"/api/tasks/{task['id']}/annotations/", json=body)
                out["skipped"] = row
                continue
            a = _api(
                server,
                "POST",
                f"/api/tasks/{task['id']}/annotations/",
                json={"result": _choice(int(truth[row])), "lead_time": 1.5},
            )
            out["ann"][row] = a["id"]
            if k % 3 == 0:
                wrong = (k // 3) % 4 == 1
                label = 1 - int(truth[row]) if wrong else int(truth[row])
                body = {"result": _choice(label), "completed_by": second}
                _api(server, "POST", f"/api/tasks/{task['id']}/annotations/", json=body)
        return out

    reports = []
    round_seconds = []
    answered_before: dict = {}
    skipped_row = None
    for round_no in (1, 2, 3):
        answered = label_open(round_no, skip=round_no == 2)
        if round_no == 3:
            # an edit and a deletion of labels pulled in round 2
            edited_row, edited_id = next(iter(answered_before["ann"].items()))
            flip = _choice(1 - int(truth[edited_row]))
            _api(server, "PATCH", f"/api/annotations/{edited_id}/", json={"result": flip})
            deleted_row, deleted_id = list(answered_before["ann"].items())[1]
            _api(server, "DELETE", f"/api/annotations/{deleted_id}/")
        start = time.perf_counter()
        done = _cli("campaign", "round", *common, env=env)
        round_seconds.append(time.perf_counter() - start)
        assert done.returncode == 0, done.stderr
        print(done.stdout)
        assert f"round {round_no}: trained" in done.stdout
        assert "audit accuracy:" in done.stdout and "95% Wilson CI" in done.stdout
        reports.append(done.stdout)
        answered_before = answered
        if round_no == 2:
            skipped_row = answered["skipped"]
            assert skipped_row is not None
        # pulling again counts nothing twice
    again = _cli("campaign", "round", *common, env=env)
    assert again.returncode == 0 and "0 label event(s) pulled" in again.stdout
    assert "no label changed since round 3" in again.stdout

    log = LabelLog(work / "campaign" / "labels.jsonl")
    events = log.events
    kinds = {e["event"] for e in events}
    assert kinds == {"label", "skip", "delete"}
    assert any(e["event"] == "skip" and e["row"] == skipped_row for e in events)
    edits = [e for e in events if e["annotation_id"] == edited_id]
    assert [e["label"] for e in edits] == [int(truth[edited_row]), 1 - int(truth[edited_row])]
    assert [e["event"] for e in events if e["annotation_id"] == deleted_id] == ["label", "delete"]
    assert len({e["annotator"] for e in events}) == 2  # two annotators
    assert len({(e["annotation_id"], e["seq"]) for e in events}) == len(events)
    rounds = pd.read_csv(work / "campaign" / "rounds.csv")
    assert rounds["round"].tolist() == [1, 2, 3]
    assert rounds["agreement"].notna().all() and (rounds["agreement"] < 1).any()
    state = sorted((work / "campaign" / "checkpoint").glob("state-*.json"))[-1]
    queried = {
        r for q in json.loads(state.read_text())["loop"]["pool"]["queries"] for r in q["rows"]
    }
    rounds_of_skipped = [q for q in json.loads(state.read_text())["loop"]["pool"]["queries"]]
    assert sum(skipped_row in q["rows"] for q in rounds_of_skipped) == 1  # never re-queried
    assert skipped_row in queried

    # the SDK (Label Studio's venv) sees the tasks with rank, purpose and pre-annotations
    sdk = subprocess.run(
        [
            str(LS_DIR / "venv" / "bin" / "python"),
            "-c",
            "import json, os, sys\n"
            "from label_studio_sdk import LabelStudio\n"
            "ls = LabelStudio(base_url=sys.argv[1], api_key=os.environ['T'])\n"
            "ts = list(ls.tasks.list(project=int(sys.argv[2]), fields='all'))\n"
            "def v(p): return p['model_version'] if isinstance(p, dict) else p.model_version\n"
            "print(json.dumps([[t.data['al_rank'], t.data['purpose'],"
            " [v(p) for p in (t.predictions or [])],"
            " (t.total_annotations or 0) + (t.cancelled_annotations or 0)] for t in ts]))",
            server["url"],
            str(project),
        ],
        env=os.environ | {"T": TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sdk.returncode == 0, sdk.stderr
    seen = json.loads(sdk.stdout)
    assert len(seen) == len(plan["audit"]) + 6 + 8 + 3 * 6
    # every open task holds exactly one prediction of the project's version, this round's
    # (Label Studio's queue ranks by it); older rounds' stay (a task open in someone's browser
    # keeps its prediction's id) until ten rounds later
    current = _api(server, "GET", f"/api/projects/{project}")["model_version"]
    assert current == "round-3"
    open_tasks = [versions for _, _, versions, answered in seen if answered == 0]
    assert open_tasks and all(versions.count(current) == 1 for versions in open_tasks)

    # a server that is down, a token that is wrong: what to do, nothing changed
    n_events = len(events)
    down = cfg | {
        "campaign": cfg["campaign"] | {"labelstudio": dict(cfg["campaign"]["labelstudio"])}
    }
    down["campaign"]["labelstudio"]["url"] = f"http://127.0.0.1:{free_port()}"
    down_file = tmp_path / "down.yaml"
    down_file.write_text(yaml.safe_dump(down))
    done = _cli("campaign", "round", "--config", str(down_file), env=env)
    assert done.returncode == 1 and "is not reachable" in done.stderr
    assert "make labelstudio-start" in done.stderr
    done = _cli("campaign", "round", *common, env={"ALNSFW_LS_TOKEN": "wrong-token"})
    assert done.returncode == 1 and "401" in done.stderr and "wrong-token" not in done.stderr
    assert len(LabelLog(work / "campaign" / "labels.jsonl").events) == n_events

    # export the current model and score a video with it
    out = tmp_path / "model"
    done = _cli("campaign", "export", *common, "--out", str(out))
    assert done.returncode == 0, done.stderr
    model = out / "campaign-round3.keras"
    assert model.is_file() and model.with_suffix(".json").is_file()
    video = sorted((tmp_path / "demo" / "videos").rglob("*.avi"))[0]
    done = _cli(
        "predict",
        "--model",
        str(model),
        "--out",
        str(tmp_path / "pred"),
        "--no-progress",
        str(video),
    )
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "pred" / "videos.csv")) == 1
    for path in (work / "campaign").rglob("*"):  # the token is never written
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    walls = [round(s, 1) for s in round_seconds]
    print(f"alnsfw campaign round, wall s (process start + model load + round): {walls}")
    print(f"whole test body: {time.perf_counter() - t0:.0f} s")
    shutil.rmtree(work, ignore_errors=True)


def _next(server, project):
    return _api(server, "GET", f"/api/projects/{project}/next")


def test_adapter_semantics_on_a_real_label_studio(server, tmp_path, monkeypatch):
    """What the adapter relies on, checked on the real server: project settings, the Data
    Manager tab typing numbers, an empty Submit through the API, the queue following our scores
    across rounds (model_version + bulk predictions), a tie served again to one more annotator,
    annotators named by email, and a team's existing project with its own choice names."""
    from campaign_demo import second_annotator

    from alnsfw.campaign.client import LabelStudioClient, PredictionItem
    from alnsfw.campaign.labels import LabelScheme, parse_tasks, requeue_overlaps, resolve

    monkeypatch.setenv("ALNSFW_LS_TOKEN", TOKEN)
    work = server["root"] / uuid.uuid4().hex[:8]
    images = work / "images"
    client = LabelStudioClient(
        server["url"], "ALNSFW_LS_TOKEN", f"adapter {work.name}", images, project_id=None
    )
    project = client.ensure_project(server["root"])
    p = _api(server, "GET", f"/api/projects/{project}")
    assert p["enable_empty_annotation"] is False and p["show_skip_button"] is True
    assert p["sampling"] == "Uncertainty sampling" and 'required="true"' in p["label_config"]
    storages = _api(server, "GET", "/api/storages/localfiles/", params={"project": project})
    assert [s["path"] for s in storages] == [str(images)]
    client.ensure_project(server["root"])  # a second call adds nothing
    views = _api(server, "GET", "/api/dm/views/", params={"project": project})
    (view,) = [v for v in views if v["data"].get("title") == "alnsfw"]
    assert view["data"]["columnsDisplayType"]["tasks:data.al_rank"] == "Number"
    assert view["data"]["columnsDisplayType"]["tasks:data.time_s"] == "Number"

    rows = list(range(12))
    tasks = [
        {
            "data": {
                "image": "/data/local-files/?d=x.jpg",
                "video_path": "Ünïcode dir/sub folder/vidéo 日本.mp4",
                "time_s": 1.5 * r,
                "frame": 30 * r,
                "al_rank": r,
                "al_score": 0.5,
                "alnsfw_campaign": "c",
                "alnsfw_row": r,
            }
        }
        for r in rows
    ]
    ids = client.push(tasks, 0)
    assert sorted(ids) == rows
    # the task data holds numbers (the tab above makes the Data Manager type them as such)
    listed = _api(
        server,
        "GET",
        "/api/tasks",
        params={
            "view": view["id"],
            "project": project,
            "page_size": 50,
            "ordering": "tasks:data.al_rank",
        },
    )
    exported, complete = client.pull()
    by_row = {t["data"]["alnsfw_row"]: t for t in exported}
    assert complete and isinstance(by_row[3]["data"]["time_s"], float)
    assert isinstance(by_row[3]["data"]["frame"], int)
    assert by_row[3]["data"]["video_path"] == "Ünïcode dir/sub folder/vidéo 日本.mp4"
    assert len(listed["tasks"]) == 12

    # an empty Submit: the API stores it (only the web page enforces the project setting);
    # the adapter sets it aside and names the annotator by email
    empty = _api(server, "POST", f"/api/tasks/{ids[11]}/annotations/", json={"result": []})
    assert empty["result"] == [] and empty["was_cancelled"] is False
    known = {ids[r]: r for r in rows}
    pulled = parse_tasks(
        client.pull()[0], "c", known, set(rows), project, client.scheme, client.users(), True
    )
    (problem,) = pulled.problems
    assert problem.task_id == ids[11] and "empty result" in problem.text()
    assert "by admin@example.com" in problem.text() and "(or Skip)" not in problem.text()

    # the queue follows our scores, lowest first, across rounds
    import random

    rng = random.Random(0)
    open_ids = [ids[r] for r in rows[:10]]
    previous = None
    for round_no in (1, 2, 3):
        scores = {t: rng.random() for t in open_ids}
        version = f"alnsfw-round-{round_no}"
        client.replace_predictions(
            [PredictionItem(t, rng.randint(0, 1), s) for t, s in scores.items()], version, previous
        )
        assert _api(server, "GET", f"/api/projects/{project}")["model_version"] == version
        for want in sorted(scores, key=scores.get)[:2]:
            got = _next(server, project)
            assert got["id"] == want, (round_no, got["id"], want)
            preds = [x for x in got["predictions"] if x["model_version"] == version]
            assert len(preds) == 1 and preds[0]["score"] == pytest.approx(scores[want])
            _api(server, "POST", f"/api/tasks/{want}/annotations/", json={"result": _choice(1)})
            open_ids.remove(want)
        versions = _api(server, "GET", f"/api/projects/{project}/model-versions/")
        assert previous is None or previous not in json.dumps(versions)  # last round's deleted
        previous = version

    # a tie (two other people disagree) is served again, to one more annotator
    second = second_annotator(server["url"], TOKEN)
    third = _api(
        server,
        "POST",
        "/api/users/",
        json={
            "username": f"ann3{work.name}",
            "email": f"ann3-{work.name}@example.com",
            "password": uuid.uuid4().hex,
        },
    )["id"]
    tie = open_ids[0]
    for who, label in ((second, 1), (third, 0)):
        body = {"result": _choice(label), "completed_by": who}
        _api(server, "POST", f"/api/tasks/{tie}/annotations/", json=body)
    client.replace_predictions([PredictionItem(tie, 1, 0.0)], previous)  # ask it first
    assert _api(server, "GET", f"/api/tasks/{tie}")["is_labeled"] is True
    served = _next(server, project)
    assert served["id"] != tie  # labelled: not served
    _api(
        server,
        "POST",
        f"/api/tasks/{served['id']}/annotations/",
        json={"result": [], "was_cancelled": True},
    )
    pulled = parse_tasks(
        client.pull()[0], "c", known, set(rows), project, client.scheme, client.users(), True
    )
    votes: dict = {}
    for a in pulled.annotations:
        votes.setdefault(a.row, {})[a.annotator] = a.label
    tied = resolve(votes)
    assert known[tie] in tied.ties
    assert {a.annotator for a in pulled.annotations if a.task_id == tie} == {
        "ann2@example.com",
        f"ann3-{work.name}@example.com",
    }
    overlaps = requeue_overlaps(tied, votes, {r: t for t, r in known.items()}, 1)
    assert overlaps == {tie: 3}
    client.requeue(overlaps)
    assert _api(server, "GET", f"/api/tasks/{tie}")["is_labeled"] is False
    assert _next(server, project)["id"] == tie  # served again, to someone who has not answered
    _api(server, "POST", f"/api/tasks/{tie}/annotations/", json={"result": _choice(1)})
    assert _api(server, "GET", f"/api/tasks/{tie}")["is_labeled"] is True  # 3 of 3: done

    # 1,000 predictions in one bulk import: time it
    many = client.push(
        [dict(tasks[0], data={**tasks[0]["data"], "alnsfw_row": 100 + k}) for k in range(1000)], 0
    )
    start = time.perf_counter()
    client.replace_predictions([PredictionItem(t, 0, 0.5) for t in many.values()], "bulk", previous)
    print(
        f"1,000 predictions imported + model_version set + last version deleted: "
        f"{time.perf_counter() - start:.2f} s"
    )

    # a team's existing project, its own choice names and control
    team_config = (
        '<View><Image name="img" value="$image"/><Choices name="verdict" toName="img">'
        '<Choice value="explicit"/><Choice value="safe"/><Choice value="not sure"/>'
        "</Choices></View>"
    )
    team = _api(
        server,
        "POST",
        "/api/projects",
        json={"title": f"team {work.name}", "label_config": team_config},
    )["id"]
    _api(server, "POST", f"/api/projects/{team}/import", json=[{"data": {"image": "/a.jpg"}}])
    mapping = {"porn": ["explicit"], "non_porn": ["safe"]}
    bad = LabelStudioClient(
        server["url"],
        "ALNSFW_LS_TOKEN",
        "x",
        images,
        scheme=LabelScheme.from_config({"choices": mapping}),
        existing_project=team,
    )
    from alnsfw.campaign.client import ClientError

    with pytest.raises(ClientError, match="not sure"):
        bad.ensure_project(server["root"])
    good = LabelStudioClient(
        server["url"],
        "ALNSFW_LS_TOKEN",
        "x",
        images,
        scheme=LabelScheme.from_config({"choices": mapping | {"unsure": ["not sure"]}}),
        existing_project=team,
    )
    assert good.ensure_project(server["root"]) == team
    assert (good.scheme.from_name, good.scheme.to_name) == ("verdict", "img")
    storages = _api(server, "GET", "/api/storages/localfiles/", params={"project": team})
    assert [s["path"] for s in storages] == [str(images)]
    good.push([{"data": {**tasks[0]["data"], "alnsfw_campaign": "team-c"}}], 0)
    (theirs,) = [t for t in good.pull()[0] if "alnsfw_row" not in t["data"]]
    ours = [t for t in good.last_pull if "alnsfw_row" in t["data"]]
    _api(
        server,
        "POST",
        f"/api/tasks/{ours[0]['id']}/annotations/",
        json={
            "result": [
                {
                    "from_name": "verdict",
                    "to_name": "img",
                    "type": "choices",
                    "value": {"choices": ["explicit"]},
                }
            ]
        },
    )
    _api(
        server,
        "POST",
        f"/api/tasks/{theirs['id']}/annotations/",
        json={
            "result": [
                {
                    "from_name": "verdict",
                    "to_name": "img",
                    "type": "choices",
                    "value": {"choices": ["safe"]},
                }
            ]
        },
    )
    got = parse_tasks(good.pull()[0], "team-c", {}, {0}, team, good.scheme, good.users())
    assert got.foreign == 1 and not got.problems
    assert [(a.row, a.label) for a in got.annotations] == [(0, 1)]
    shutil.rmtree(work, ignore_errors=True)
