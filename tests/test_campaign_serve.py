"""`alnsfw campaign serve`: Label Studio's ML-backend protocol over a real HTTP server (uvicorn on
127.0.0.1) talked to with a real client (httpx), the worker training by itself, and the same lock
as the CLI commands. The scripted Label Studio and the fake learner keep it to seconds; the real
server and the browser are tests/test_campaign_ls.py and tests/test_campaign_browser.py.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn
from campaign_fakes import ScriptedLabelStudio
from test_campaign import campaign_config, new_campaign, truth_of

from alnsfw.campaign.core import CampaignError
from alnsfw.campaign.mlbackend import create_app, credentials
from alnsfw.campaign.service import CampaignService

AUTH = ("labelstudio", "s3cret-for-tests")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(smoke_data, tmp_path):
    cfg = campaign_config(tmp_path, stop_min_per_class=1)
    cfg["campaign"]["serve"].update(retrain_every=5, reconcile_seconds=0.2)
    ls = ScriptedLabelStudio()
    new_campaign(cfg, smoke_data, ls).start()
    campaign = new_campaign(cfg, smoke_data, ls)
    service = CampaignService.from_config(campaign)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service, *AUTH), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    service.start()
    yield {"url": f"http://127.0.0.1:{port}", "ls": ls, "service": service, "cfg": cfg}
    service.stop()
    server.should_exit = True
    thread.join(5)


def _wait(predicate, seconds=20.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_protocol_auth_and_rounds_by_themselves(served, smoke_data):
    url, ls, service = served["url"], served["ls"], served["service"]
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/health").json()["status"] == "UP"  # no auth: Label Studio's probe
        for path in ("/setup", "/predict", "/webhook", "/train"):
            assert http.post(path, json={}).status_code == 401
            assert http.post(path, json={}, auth=("labelstudio", "wrong")).status_code == 401
        assert http.post("/setup", json={}, auth=AUTH).json() == {"model_version": "round-0"}
        # people label the first batch; the webhook only wakes the worker, which answers in 1 s
        ls.answer_all(truth_of(smoke_data))
        t0 = time.perf_counter()
        answer = http.post("/webhook", json={"action": "ANNOTATION_CREATED"}, auth=AUTH)
        assert answer.status_code == 200 and time.perf_counter() - t0 < 1.0
        assert _wait(lambda: service.stats.rounds >= 1)
        assert http.post("/setup", json={}, auth=AUTH).json() == {"model_version": "round-1"}
        tasks = list(ls.tasks.values())[:4] + [{"id": 1, "data": {"image": "x"}}]
        got = http.post("/predict", json={"tasks": tasks}, auth=AUTH).json()["results"]
        assert len(got) == 5  # one per task, in order; a task not of this campaign: no guess
        assert got[-1]["result"] == []
        for res in got[:4]:
            assert res["model_version"] == "round-1" and 0.5 <= res["score"] <= 1.0
            assert res["result"][0]["value"]["choices"][0] in ("porn", "non_porn")
        probs, _ = service.campaign.predictions([t["data"]["alnsfw_row"] for t in tasks[:4]])
        want = [max(p, 1 - p) for p in probs]
        assert [r["score"] for r in got[:4]] == pytest.approx(want)


def test_lost_webhooks_are_caught_by_the_reconcile_pull(served, smoke_data):
    ls, service = served["ls"], served["service"]
    ls.answer_all(truth_of(smoke_data))  # no webhook at all
    assert _wait(lambda: service.stats.rounds >= 1)
    assert service.stats.reconciles >= 1 and service.version == "round-1"


def test_fewer_new_labels_than_retrain_every_wait(served, smoke_data):
    """A round waits for retrain_every new labels while enough tasks are still open."""
    ls, service, cfg = served["ls"], served["service"], served["cfg"]
    truth = truth_of(smoke_data)
    ls.answer_all(truth)
    assert _wait(lambda: service.stats.rounds >= 1)
    open_rows = [t["data"]["alnsfw_row"] for t in ls.tasks.values() if not t["annotations"]]
    assert len(open_rows) >= 2
    ls.annotate(open_rows[0], int(truth[open_rows[0]]))
    service.low_water = 0
    time.sleep(3 * cfg["campaign"]["serve"]["reconcile_seconds"] + 0.5)
    assert service.stats.rounds == 1  # 1 new label < retrain_every 5
    for row in open_rows[1:]:
        ls.annotate(row, int(truth[row]))
    assert _wait(lambda: service.stats.rounds >= 2)


def test_cli_commands_share_the_lock(served, smoke_data, tmp_path):
    """status waits for the lock a round holds (never reads a half-written checkpoint)."""
    service = served["service"]
    campaign = service.campaign
    with campaign._locked():
        other = new_campaign(served["cfg"], smoke_data, None)
        with pytest.raises(CampaignError, match="another alnsfw campaign command"):
            with other._locked(wait=0.2):
                pass
    assert new_campaign(served["cfg"], smoke_data, None).status().status_only


def test_credentials_come_from_the_environment_only(monkeypatch):
    monkeypatch.delenv("ALNSFW_ML_AUTH", raising=False)
    with pytest.raises(ValueError, match="ALNSFW_ML_AUTH to user:password"):
        credentials("ALNSFW_ML_AUTH")
    monkeypatch.setenv("ALNSFW_ML_AUTH", "ls:pw:with:colons")
    assert credentials("ALNSFW_ML_AUTH") == ("ls", "pw:with:colons")


def test_the_worker_survives_a_failing_step(served, smoke_data, monkeypatch):
    """A bug in one step is logged and the next wake-up tries again: a week-long service must
    not die silently in its thread."""
    ls, service = served["ls"], served["service"]
    real = service.campaign.step
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return real(*args)

    monkeypatch.setattr(service.campaign, "step", flaky)
    ls.answer_all(truth_of(smoke_data))
    assert _wait(lambda: service.stats.rounds >= 1)
    assert calls["n"] >= 2


def test_predict_speaks_the_projects_own_choice_names(served, smoke_data):
    """A team's project with its own Choice values: /predict's guesses use them, as the
    round's bulk predictions do (alnsfw.campaign.labels.LabelScheme)."""
    from alnsfw.campaign.labels import LabelScheme

    url, ls, service = served["url"], served["ls"], served["service"]
    ls.answer_all(truth_of(smoke_data))
    assert _wait(lambda: service.stats.rounds >= 1)
    ls.scheme = LabelScheme.from_config({"choices": {"porn": ["explicit"], "non_porn": ["safe"]}})
    tasks = list(ls.tasks.values())[:4]
    with httpx.Client(base_url=url, timeout=10) as http:
        got = http.post("/predict", json={"tasks": tasks}, auth=AUTH).json()["results"]
    assert {r["result"][0]["value"]["choices"][0] for r in got} <= {"explicit", "safe"}
