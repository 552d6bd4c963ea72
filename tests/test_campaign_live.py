"""The model in the loop, as a team runs it (`make test-labelstudio`; marker labelstudio).

A real Label Studio 1.23.2 (tests/labelstudio_server.py), real footage in nested non-ASCII folders,
`alnsfw campaign start` (which makes the folder's keyframes and feature cache itself), then
`alnsfw campaign serve` as its own process: it connects itself to the project as Label Studio's
ML backend (basic auth from the environment) and trains by itself. A person in a headless
Chromium clicks "Label All Tasks" and labels; after every `retrain_every` submits the service
pulls, trains, and queues the next batch, and the same label stream goes on with the model's
new guesses. Nobody runs `alnsfw campaign round`.

Measured and written to results/labelstudio/live-rounds.csv (docs/campaign.md): for each batch,
the seconds from its last Submit until Label Studio can serve the next round's batch (the
project's model_version has switched to it, after its predictions were imported).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import ls_browser as ui
import pandas as pd
import pytest
import yaml
from labelstudio_server import LS_BIN, REPO, LabelStudioServer, free_port
from test_campaign_browser import LAYOUT, REAL, _annotator

pytestmark = [
    pytest.mark.labelstudio,
    pytest.mark.skipif(not LS_BIN.exists(), reason="run `make labelstudio-install` first"),
    pytest.mark.skipif(ui.missing_browser() is not None, reason=str(ui.missing_browser())),
]

RETRAIN_EVERY = 3
BATCHES = 10  # batches timed (the "median and worst of 10")
OUT = REPO / "results" / "labelstudio" / "live-rounds.csv"


def _reopen(driver, url: str, project: int, log: Path, seconds: float = 120) -> int:
    """ "Label All Tasks" again until the stream serves a task (the next batch is queued)."""
    end = time.monotonic() + seconds
    while True:
        try:
            return ui.label_all(driver, url, project)
        except AssertionError:
            assert time.monotonic() < end, log.read_text()[-3000:]
            time.sleep(0.5)


def _label_of(task: dict) -> str:
    """The scripted person's answer: clips under plain/ are 'porn' (nothing is: a rule)."""
    return "porn" if str(task["data"].get("video_path", "")).startswith("plain/") else "non_porn"


@pytest.fixture(scope="module")
def live(labelstudio_server: LabelStudioServer, tmp_path_factory: pytest.TempPathFactory):
    server = labelstudio_server
    tmp = tmp_path_factory.mktemp("live")
    # the real clips twice (a second copy under copies/): enough keyframes for 10 batches
    for rel, clip in [*LAYOUT.items(), *((f"copies/{r}", c) for r, c in LAYOUT.items())]:
        (tmp / "videos" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL / clip, tmp / "videos" / rel)
    work = server.root / ("live-" + uuid.uuid4().hex[:8])
    port = free_port()
    cfg = yaml.safe_load((REPO / "presets" / "campaign-demo.yaml").read_text())
    cfg["data"]["root"] = str(tmp / "videos")
    cfg["al"]["query_size"] = RETRAIN_EVERY
    cfg["campaign"].update(
        dir=str(work / "campaign"),
        image_dir=str(work / "images"),
        audit_size=4,
        val_size=3,
        initial_size=6,
        min_pool_labels=3,
        blur="hover",
        serve={"port": port, "retrain_every": RETRAIN_EVERY, "reconcile_seconds": 2},
    )
    cfg["campaign"]["labelstudio"].update(
        url=server.url, document_root=str(server.root), project_title=f"live {work.name}"
    )
    config_file = tmp / "campaign.yaml"
    config_file.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    secret = "labelstudio:" + uuid.uuid4().hex
    env = os.environ | {
        "PYTHONPATH": str(REPO / "src"),
        "ALNSFW_LS_TOKEN": server.token,
        "ALNSFW_ML_AUTH": secret,
    }
    cli = [sys.executable, "-m", "alnsfw.cli", "campaign"]
    done = subprocess.run(
        [*cli, "start", "--configfile", str(config_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    log = open(tmp / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [*cli, "serve", "--configfile", str(config_file)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        start_new_session=True,
    )
    end = time.monotonic() + 300
    while "model server at" not in (tmp / "serve.log").read_text():
        assert proc.poll() is None, (tmp / "serve.log").read_text()
        assert time.monotonic() < end, "serve did not come up"
        time.sleep(0.2)
    import json

    project = json.loads((work / "campaign" / "campaign.json").read_text())["project_id"]
    yield {
        "project": project,
        "port": port,
        "secret": secret,
        "log": tmp / "serve.log",
        "work": work,
        "config": config_file,
        "env": env,
    }
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()
    shutil.rmtree(work, ignore_errors=True)


def test_the_model_trains_by_itself_between_batches(labelstudio_server, live):
    server, project = labelstudio_server, live["project"]
    backends = server.api("GET", "/api/ml", params={"project": project})
    assert [b["url"] for b in backends] == [f"http://127.0.0.1:{live['port']}"]
    version = lambda: server.api("GET", f"/api/projects/{project}")["model_version"]  # noqa: E731
    assert version() == "round-0"
    email, password = _annotator(server)
    driver = ui.make_driver()
    seen: list[tuple[int, str, int]] = []  # (task, project version, its predictions of it)
    log = live["log"]
    try:
        ui.login(driver, server.url, email, password)
        task = ui.label_all(driver, server.url, project)
        # campaign.blur: hover: the image is blurred until the person points at it
        from selenium.webdriver.common.action_chains import ActionChains

        ui.current_task_image_ok(driver)  # waits until the image has loaded
        image = driver.find_element("css selector", 'img[alt="image"]')
        style = "return getComputedStyle(arguments[0].closest('.lsf-object')).filter"
        away = driver.find_element("css selector", ui.SUBMIT)  # the pointer off the image
        ActionChains(driver).move_to_element(away).perform()
        time.sleep(0.5)
        assert "blur" in driver.execute_script(style, image)
        blurred = ui.visible_sharpness(driver, image)  # what the screen shows, not the CSS
        ActionChains(driver).move_to_element(image).perform()
        time.sleep(0.5)
        assert driver.execute_script(style, image) == "none"
        sharp = ui.visible_sharpness(driver, image)
        assert sharp > 4 * blurred, (blurred, sharp)
        while log.read_text().count("  live: ") < BATCHES:
            data = server.api("GET", f"/api/tasks/{task}")
            assert ui.current_task_image_ok(driver)["width"] > 0, task
            current = version()
            mine = [p for p in data.get("predictions", []) if p["model_version"] == current]
            seen.append((task, current, len(mine)))
            want = _label_of(data)
            if ui.ticked(driver) != [want]:
                if ui.ticked(driver):
                    ui.choose(driver, ui.ticked(driver)[0])  # untick the model's guess
                ui.choose(driver, want)
            ui.submit(driver)
            if ui.stream_finished(driver):  # the service has not queued more yet: wait
                task = _reopen(driver, server.url, project, log)
            else:
                task = ui.wait_for_task(driver, other_than=task)
    finally:
        ui.screenshot(driver, REPO / "results" / "labelstudio" / "campaign-live.png")
        driver.quit()
    text = log.read_text()
    lags = [
        float(x.split("servable ")[1].split(" s")[0]) for x in text.splitlines() if "  live: " in x
    ]
    assert len(lags) >= BATCHES and text.count(": trained;") >= BATCHES, text[-3000:]
    # later tasks carry the current round's prediction (the guess), not round-0's placeholder
    late = [n for _, v, n in seen[-5:] if v != "round-0"]
    assert late and all(n == 1 for n in late), seen
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({"round": range(1, len(lags) + 1), "seconds_after_newest_label": lags})
    table.to_csv(OUT, index=False)
    s = table["seconds_after_newest_label"]
    print(f"next batch servable: median {s.median():.2f} s, worst {s.max():.2f} s")
    # the CLI works against the served campaign's state (one lock)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "alnsfw.cli",
            "campaign",
            "status",
            "--configfile",
            str(live["config"]),
        ],
        env=live["env"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0 and "status from the campaign's files" in done.stdout, done.stderr
    assert live["secret"].split(":")[1] not in text  # the secret is never logged
    for path in Path(live["work"]).rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            assert live["secret"].encode() not in path.read_bytes(), path
