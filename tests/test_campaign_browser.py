"""A person labels a campaign in Label Studio's web UI (`make test-labelstudio`; labelstudio).

Real footage (tests/data/real) copied into nested folders with non-ASCII names, keyframes through
the folder source, `alnsfw campaign start` as tests/test_campaign_ls.py starts it, an annotator
account made with `tools/labelstudio.sh adduser`; then a headless Chromium (Debian's chromium and
chromium-driver, driven by selenium through tests/ls_browser.py) logs in, clicks "Label All
Tasks", and for a batch of tasks checks that the keyframe image really decoded (naturalWidth and
naturalHeight equal the JPEG's) and that the pre-annotation shows as a ticked choice; clicks the
ticked guess (an empty Submit is then refused), ticks a choice, submits, skips one task, looks at
what a skipped task offers, saves docs/img/campaign-browser.png, and reads back through the API
what was stored.

The project settings a campaign needs (empty annotations off, the choice required, "Uncertainty
sampling") are checked as `campaign start` made them. Standing in for a model round, the test
gives every task a prediction of a new `model_version` whose `score` sets the order "Label All
Tasks" must follow (lowest first); tests/test_campaign_live.py has the real model server.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from urllib.parse import parse_qs, urlparse

import ls_browser as ui
import pytest
import yaml
from labelstudio_server import LS_BIN, REPO, LabelStudioServer

pytestmark = [
    pytest.mark.labelstudio,
    pytest.mark.skipif(not LS_BIN.exists(), reason="run `make labelstudio-install` first"),
    pytest.mark.skipif(ui.missing_browser() is not None, reason=str(ui.missing_browser())),
]

REAL = REPO / "tests" / "data" / "real"
# Where the real clips go: nested folders and names a team could have (accents, spaces, CJK).
LAYOUT = {
    "Ünïcode dir/sub folder/vidéo 日本.mp4": "bunny.mp4",
    "Ünïcode dir/sub folder/Straße 2.mp4": "carphone.mp4",
    "Ünïcode dir/клипы/megamind.mp4": "megamind.mp4",
    "Ünïcode dir/клипы/bikes (1).mp4": "bikes.mp4",
    "plain/dims.mp4": "dims.mp4",
    "plain/dissolve.mp4": "dissolve.mp4",
    "plain/fades.mp4": "fades.mp4",
    "plain/fastmove.mp4": "fastmove.mp4",
    "plain/recut.mp4": "recut.mp4",
    "plain/vtest.mp4": "vtest.mp4",
}
MODEL_VERSION = "browser-test-1"  # stands in for the model server's round
BATCH = 6  # tasks a person goes through in the test
# docs/img/campaign-browser.png is a copy of one, checked by eye (a run must not dirty the tree)
SCREENSHOT = REPO / "results" / "labelstudio" / "campaign-browser.png"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`alnsfw ...` as a user runs it (this checkout's src)."""
    return subprocess.run(
        [sys.executable, "-m", "alnsfw.cli", *args],
        env=os.environ | {"PYTHONPATH": str(REPO / "src")} | env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )


def _guess(task_id: int) -> str:
    return "porn" if task_id % 2 else "non_porn"


@pytest.fixture(scope="module")
def campaign(labelstudio_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory):
    """A campaign started on the real clips; its project made ready for people as the model
    server will (settings, predictions); {project, tasks (id -> task), order, work}."""
    from alnsfw.config import load_config

    server = labelstudio_server
    tmp = tmp_path_factory.mktemp("browser")
    for rel, clip in LAYOUT.items():
        (tmp / "videos" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL / clip, tmp / "videos" / rel)
    work = server.root / ("browser-" + uuid.uuid4().hex[:8])
    cfg = yaml.safe_load((REPO / "presets" / "campaign-demo.yaml").read_text())
    cfg["data"]["root"] = str(tmp / "videos")
    cfg["campaign"].update(
        dir=str(work / "campaign"),
        image_dir=str(work / "images"),
        audit_size=4,
        val_size=3,
        initial_size=BATCH + 2,
    )
    cfg["campaign"]["labelstudio"].update(
        url=server.url, document_root=str(server.root), project_title=f"browser {work.name}"
    )
    config_file = tmp / "campaign.yaml"
    config_file.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    load_config([str(config_file)])
    done = _cli(
        "campaign",
        "start",
        "--config",
        str(config_file),
        env={"ALNSFW_LS_TOKEN": server.token},
    )
    assert done.returncode == 0, done.stderr
    project = json.loads((work / "campaign" / "campaign.json").read_text())["project_id"]

    # what a campaign project needs, set by `campaign start` itself (issue 28)
    settings = server.api("GET", f"/api/projects/{project}")
    assert 'required="true"' in settings["label_config"], settings["label_config"]
    assert settings["enable_empty_annotation"] is False
    assert settings["sampling"] == "Uncertainty sampling"
    tasks = {t["id"]: t for t in _export(server, project)}
    ids = sorted(tasks)
    random.Random(29).shuffle(ids)  # our order: not the order of task ids
    for rank, task_id in enumerate(ids):
        server.api(
            "POST",
            "/api/predictions/",
            json={
                "task": task_id,
                "model_version": MODEL_VERSION,
                "score": 0.05 + 0.9 * rank / len(ids),
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": [_guess(task_id)]},
                    }
                ],
            },
        )
    # Label Studio accepts a project model_version only once predictions of it exist (400
    # "Model version doesn't exist either as live model or as static predictions" before)
    server.api("PATCH", f"/api/projects/{project}", json={"model_version": MODEL_VERSION})
    yield {"project": project, "tasks": tasks, "order": ids, "work": work, "tmp": tmp}
    shutil.rmtree(work, ignore_errors=True)


def _export(server: LabelStudioServer, project: int) -> list[dict]:
    return server.api(
        "GET",
        f"/api/projects/{project}/export",
        params={"exportType": "JSON", "download_all_tasks": "true"},
    )


def _annotator(server: LabelStudioServer) -> tuple[str, str]:
    """A fresh annotator account, made with the documented command."""
    email, password = f"ann-{uuid.uuid4().hex[:8]}@example.com", "pw-" + uuid.uuid4().hex[:12]
    done = subprocess.run(
        ["bash", str(REPO / "tools" / "labelstudio.sh"), "adduser", email],
        env=os.environ
        | {
            "LS_URL": server.url,
            "ALNSFW_LS_TOKEN": server.token,
            "ALNSFW_LS_NEW_PASSWORD": password,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr and server.token not in done.stdout
    return email, password


def _image_size(server: LabelStudioServer, task: dict) -> tuple[int, int]:
    """Width and height of the task's JPEG on disk (what the browser must decode)."""
    import cv2

    rel = parse_qs(urlparse(task["data"]["image"]).query)["d"][0]
    image = cv2.imread(str(server.root / rel))
    assert image is not None, rel
    return int(image.shape[1]), int(image.shape[0])


def test_a_person_labels_in_the_browser(labelstudio_server: LabelStudioServer, campaign):
    server, project = labelstudio_server, campaign["project"]
    tasks, order = campaign["tasks"], campaign["order"]
    assert len(order) >= BATCH + 1
    # a task shows the video's own path under data.root, non-ASCII and nested as it is
    paths = {t["data"].get("video_path") for t in tasks.values()}
    assert "Ünïcode dir/sub folder/vidéo 日本.mp4" in paths, paths
    assert "Ünïcode dir/клипы/bikes (1).mp4" in paths, paths
    email, password = _annotator(server)
    t0 = time.perf_counter()
    driver = ui.make_driver()
    try:
        ui.login(driver, server.url, email, password)
        shown = [ui.label_all(driver, server.url, project)]
        done: dict[int, str | None] = {}  # task -> the choice submitted, None: skipped
        origin: dict[int, str] = {}  # task -> how Label Studio will mark the result's origin
        for k in range(BATCH):
            task = shown[-1]
            origin[task] = "prediction"  # the guess accepted as it is
            image = ui.current_task_image_ok(driver)
            assert (image["width"], image["height"]) == _image_size(server, tasks[task]), task
            assert ui.ticked(driver) == [_guess(task)], f"task {task}: the pre-annotation"
            if k == 0:
                ui.screenshot(driver, SCREENSHOT)  # a task as a person sees it, the guess ticked
                # clicking the pre-ticked guess unticks it; with empty annotations off, Submit is
                # then disabled: the empty annotation cannot be sent
                ui.choose(driver, _guess(task))
                assert ui.ticked(driver) == []
                button = driver.find_element("css selector", ui.SUBMIT)
                assert not button.is_enabled(), "an empty Submit must be refused"
                ui.choose(driver, "porn")
                origin[task] = "manual"
            elif k == 2:
                other = "porn" if _guess(task) == "non_porn" else "non_porn"
                ui.choose(driver, other)  # single choice: ticking the other one replaces it
                assert ui.ticked(driver) == [other]
                origin[task] = "prediction-changed"
            if k == BATCH - 1:
                assert ui.skip(driver) == task
                done[task] = None
            else:
                label = ui.ticked(driver)[0]
                last = k == BATCH - 2
                submitted, clicked = ui.submit(driver, wait=not last)
                assert submitted == task
                done[task] = label
                if last:  # from the batch's last submit to the next task servable to this person
                    waited, nxt = ui.time_until_servable(
                        lambda: ui.browser_next(driver, project),
                        since=clicked,
                        timeout=30,
                        accept=lambda t, task=task: t["id"] != task,
                    )
            if k < BATCH - 1 or len(order) > BATCH:
                shown.append(ui.wait_for_task(driver, other_than=task))
        # the label stream followed our scores, lowest first, whatever the task ids
        assert shown[:BATCH] == order[:BATCH], (shown, order)
        # what /next served after the last submit is what the stream showed next
        assert nxt["id"] == order[BATCH - 1]
        # a skipped task, seen again from the history, offers only "Cancel skip"
        previous = driver.find_element("css selector", 'button[aria-label="Previous task"]')
        ui._click(driver, previous)
        assert ui.wait_for_task(driver, other_than=shown[BATCH]) == order[BATCH - 1]
        offered = ui.buttons(driver)
        assert "Cancel skip" in offered and "Submit" not in offered and "Update" not in offered
        ui_seconds = time.perf_counter() - t0
    finally:
        driver.quit()

    # what Label Studio stored: the person's labels and the skip
    users = {u["email"]: u["id"] for u in server.api("GET", "/api/users/")}
    stored = {t["id"]: t["annotations"] for t in _export(server, project)}
    for task, label in done.items():
        assert len(stored[task]) == 1, (task, stored[task])
        ann = stored[task][0]
        assert ann["completed_by"] == users[email]
        if label is None:
            # a skip from the UI keeps the ticked guess as its result: only was_cancelled tells
            assert ann["was_cancelled"] is True
        else:
            assert ann["was_cancelled"] is False
            assert [r["value"]["choices"] for r in ann["result"]] == [[label]]
            # whether the person took the model's guess as it was: Label Studio says it
            assert [r["origin"] for r in ann["result"]] == [origin[task]], task
    untouched = [t for t in order[BATCH:] if stored[t]]
    assert untouched == [], "tasks nobody labelled have no annotation"
    print(
        f"browser: {BATCH} tasks in {ui_seconds:.1f} s; next task servable "
        f"{waited:.2f} s after the last submit"
    )


UNIT_GUESSES = ("porn", "non_porn", "porn")  # the model's pre-filled guess per keyframe


@pytest.fixture(scope="module")
def unit_campaign(labelstudio_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory):
    """A unit campaign (al.unit: video, campaign.blur: hover) started on the real clips with
    `alnsfw campaign start`; then one query task of three keyframes of one video, pushed by the
    campaign's own push as a round does after training (standing in for the model: the guesses
    UNIT_GUESSES, given through the campaign's client)."""
    from alnsfw.campaign.client import PredictionItem
    from alnsfw.campaign.core import Campaign
    from alnsfw.campaign.run import make_client
    from alnsfw.campaign.tasks import KeyframeIndex
    from alnsfw.config import load_config

    server = labelstudio_server
    tmp = tmp_path_factory.mktemp("browser-units")
    for rel, clip in LAYOUT.items():
        (tmp / "videos" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL / clip, tmp / "videos" / rel)
    work = server.root / ("units-" + uuid.uuid4().hex[:8])
    cfg = yaml.safe_load((REPO / "presets" / "campaign-demo.yaml").read_text())
    cfg["data"]["root"] = str(tmp / "videos")
    cfg["al"].update(unit="video", max_per_video=None)
    cfg["campaign"].update(
        dir=str(work / "campaign"),
        image_dir=str(work / "images"),
        audit_size=4,
        val_size=3,
        initial_size=4,
        blur="hover",
        unit_max_keyframes=3,
    )
    cfg["campaign"]["labelstudio"].update(
        url=server.url, document_root=str(server.root), project_title=f"units {work.name}"
    )
    config_file = tmp / "campaign.yaml"
    config_file.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    done = _cli(
        "campaign", "start", "--config", str(config_file), env={"ALNSFW_LS_TOKEN": server.token}
    )
    assert done.returncode == 0, done.stderr
    os.environ["ALNSFW_LS_TOKEN"] = server.token
    config = load_config([str(config_file)])
    plan = json.loads((work / "campaign" / "campaign.json").read_text())
    camp = Campaign(config, None, make_client(config, None, plan["project_id"]))
    settings = server.api("GET", f"/api/projects/{plan['project_id']}")
    assert '<Repeater on="$images"' in settings["label_config"]
    # three pool keyframes of one video, not sent yet: the round's unit task
    index = KeyframeIndex.read(camp.keyframes)
    sent = set(json.loads((work / "campaign" / "tasks.json").read_text())["sent_rows"])
    free = [r for r in plan["pool"] if r not in sent]
    video = next(v for v in index.video[free] if sum(index.video[free] == v) >= 3)
    rows = sorted(r for r in free if index.video[r] == video)[:3]
    assert camp._push(plan, 1, [(r, "query", 0.5) for r in rows], None, [rows]) == 1
    tasks = json.loads((work / "campaign" / "tasks.json").read_text())
    [task_id] = [int(t) for t, got in tasks["task_units"].items() if got == rows]
    guesses = tuple(int(g == "porn") for g in UNIT_GUESSES)
    camp.client.replace_predictions([PredictionItem(task_id, None, 0.1, guesses)], "unit-test-1")
    yield {"project": plan["project_id"], "task": task_id, "rows": rows, "config": config}
    shutil.rmtree(work, ignore_errors=True)


def test_a_unit_task_in_the_browser(labelstudio_server: LabelStudioServer, unit_campaign):
    """A unit task: its keyframes side by side, each blurred until pointed at, each with the
    model's guess pre-ticked; one changed, Submit; the campaign's pull records a label per
    keyframe and the cost 1 + 1 decisions, 3 images."""
    from selenium.webdriver.common.action_chains import ActionChains

    from alnsfw.campaign.core import Campaign
    from alnsfw.campaign.run import make_client

    server, project, task = labelstudio_server, unit_campaign["project"], unit_campaign["task"]
    rows = unit_campaign["rows"]
    email, password = _annotator(server)
    driver = ui.make_driver()
    try:
        ui.login(driver, server.url, email, password)
        # the only task with a prediction of the project's version: served first by
        # "Label All Tasks" (uncertainty sampling), the full-width labelling page
        assert ui.label_all(driver, server.url, project) == task
        images = ui._wait(
            driver,
            "every keyframe image to load",
            lambda d: (
                (
                    got := d.execute_script(
                        "return Array.from(document.querySelectorAll('img[alt=\"image\"]')).map("
                        "i => ({w: i.naturalWidth, done: i.complete, left: "
                        "i.getBoundingClientRect().left, top: i.getBoundingClientRect().top}))"
                    )
                )
                and len(got) == len(rows)
                and all(i["done"] and i["w"] > 0 for i in got)
                and got
            ),
        )
        assert len(ui._css(driver, ".lsf-choices")) == len(rows)
        # side by side: one row, left to right (at 1400 px; narrower pages wrap)
        assert len({round(i["top"]) for i in images}) == 1, images
        assert [i["left"] for i in images] == sorted(i["left"] for i in images), images
        assert ui.ticked_each(driver) == [[g] for g in UNIT_GUESSES], "each guess pre-ticked"
        # campaign.blur: hover, on every image: only the one pointed at is sharp
        style = (  # the filter is on each image's box (alnsfw.campaign.labels.BLUR_STYLE)
            "return Array.from(document.querySelectorAll('img[alt=\"image\"]'))"
            ".map(i => getComputedStyle(i.closest('.lsf-object')).filter)"
        )
        ActionChains(driver).move_to_element(
            driver.find_element("css selector", ui.SUBMIT)
        ).perform()
        time.sleep(0.5)
        assert all("blur" in f for f in driver.execute_script(style))
        shown = driver.find_elements("css selector", 'img[alt="image"]')
        blurred = [ui.visible_sharpness(driver, image) for image in shown]
        second = shown[1]
        ActionChains(driver).move_to_element(second).perform()
        time.sleep(0.5)
        filters = driver.execute_script(style)
        assert filters[1] == "none" and "blur" in filters[0] and "blur" in filters[2], filters
        # and on the screen: the pixels under the second image sharpen only when pointed at
        sharp = [ui.visible_sharpness(driver, image) for image in shown]
        assert sharp[1] > 4 * blurred[1], (blurred, sharp)
        assert sharp[0] < 2 * blurred[0] + 1 and sharp[2] < 2 * blurred[2] + 1, (blurred, sharp)
        ActionChains(driver).move_to_element(
            driver.find_element("css selector", ui.SUBMIT)
        ).perform()
        time.sleep(0.3)
        ui.screenshot(driver, SCREENSHOT.with_name("campaign-unit-task.png"))
        ui.choose_in(driver, 1, "porn")  # the person changes the second keyframe's guess
        answer = ["porn", "porn", "porn"]
        assert ui.ticked_each(driver) == [[a] for a in answer]
        button = ui._wait(driver, "an enabled Submit", lambda d: ui._enabled(d, ui.SUBMIT))
        ui._click(driver, button)
        stored = ui._wait(
            driver,
            "the annotation to be stored",
            lambda d: server.api("GET", f"/api/tasks/{task}").get("annotations"),
            timeout=30,
        )
    finally:
        driver.quit()
    [ann] = stored
    assert sorted((r["from_name"], r["value"]["choices"][0]) for r in ann["result"]) == [
        (f"label_{i}", a) for i, a in enumerate(answer)
    ]
    # the campaign's pull: one label per keyframe, one decision + one correction, 3 images
    config = unit_campaign["config"]
    camp = Campaign(config, None, make_client(config, None, project))
    plan = camp.plan()
    assert camp._pull(plan) == len(rows)
    labels, _ = camp._labels(int(plan["n_rows"]))
    assert [int(labels[r]) for r in rows] == [1, 1, 1]
    assert camp.log.human_cost(camp.cost_model)[email] == (2, len(rows))
    assert camp.pulled is not None and camp.pulled.problems == []
