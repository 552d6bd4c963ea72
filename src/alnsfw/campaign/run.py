"""Glue of `alnsfw campaign ...`: config files -> validated config -> Campaign -> printed report."""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from alnsfw.campaign.client import ClientError, FileClient, LabelStudioClient
from alnsfw.campaign.core import Campaign, CampaignError
from alnsfw.campaign.data import DataPrepError, check_keyframes_belong, prepare
from alnsfw.campaign.labels import LabelInputError, LabelScheme


def make_client(config: dict[str, Any], labels_file: str | None, project_id: int | None) -> Any:  # noqa: ANN401
    """The Label Studio client of campaign.labelstudio.url, or the file route."""
    cfg = config["campaign"]
    ls = cfg.get("labelstudio", {})
    unit = str(config["al"].get("unit", "keyframe")) != "keyframe"  # one task per shot / video
    scheme = LabelScheme.from_config(ls, unit)
    if labels_file or not ls.get("url"):
        return FileClient(Path(cfg["dir"]) / "tasks", labels_file, scheme)
    return LabelStudioClient(
        ls["url"],
        ls.get("token_env", "ALNSFW_LS_TOKEN"),
        ls.get("project_title", "alnsfw campaign"),
        cfg["image_dir"],
        float(ls.get("timeout", 30)),
        project_id,
        scheme=scheme,
        existing_project=ls.get("project_id"),
        blur=str(cfg["blur"]),
        unit=unit,
    )


def run_campaign_command(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """One `alnsfw campaign <action>`; prints the report, returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    plan_path = Path(config["campaign"]["dir"]) / "campaign.json"
    project = json.loads(plan_path.read_text()).get("project_id") if plan_path.is_file() else None
    try:
        client = None
        keyframes = args.keyframes
        if args.action in ("start", "up"):
            if keyframes is None:
                work = f"{config['campaign']['dir']}/work"
                print(f"making the folder's keyframes and feature cache in {work}")
                prepare(config, cores=getattr(args, "cores", 2))
            else:
                check_keyframes_belong(keyframes, config)
        if args.action in ("start", "round", "serve", "up"):
            client = make_client(config, getattr(args, "labels", None), project)
        campaign = Campaign(config, keyframes, client)
        if args.action == "start":
            print(campaign.start().text())
            print(_where_tasks_are(config))
        elif args.action == "round":
            print(campaign.round().text())
            if isinstance(client, FileClient):
                print(_where_tasks_are(config))
        elif args.action == "serve":
            return _serve(config, campaign, client)
        elif args.action == "up":
            return _up(config, campaign, client)
        elif args.action == "status":
            print(campaign.status().text())
        else:
            done = campaign.export(args.out)
            print(f"wrote {done['outputs']['model']} and {done['outputs']['meta']}")
    except (CampaignError, ClientError, LabelInputError, DataPrepError) as err:
        print(f"alnsfw campaign {args.action}: {err}", file=sys.stderr)
        return 1
    return 0


def _up(config: dict[str, Any], campaign: Campaign, client: Any) -> int:  # noqa: ANN401
    """`alnsfw campaign up`: start (unless started) and serve, saying where to label."""
    if not campaign.plan_path.is_file() or not campaign.plan().get("started_complete"):
        print(campaign.start().text())
    env = config["campaign"]["serve"]["auth_env"]
    if not os.environ.get(env):  # a fresh secret for this process only: never written anywhere
        os.environ[env] = "labelstudio:" + secrets.token_urlsafe(24)
    ls = config["campaign"]["labelstudio"]
    if ls.get("url"):
        user = os.environ.get("ALNSFW_LS_USER", "admin@example.com")
        print(
            f"Label Studio: {ls['url']}/projects/{campaign.plan()['project_id']}/data (log in as "
            f"{user}); click 'Label All Tasks'. The model trains by itself as labels arrive; "
            "Ctrl-C stops it (`alnsfw campaign up` again resumes). Another annotator: "
            "bash tools/labelstudio.sh adduser EMAIL",
            flush=True,
        )
    return _serve(config, campaign, client)


def _where_tasks_are(config: dict[str, Any]) -> str:
    cfg = config["campaign"]
    if cfg.get("labelstudio", {}).get("url"):
        return f"  tasks are in Label Studio at {cfg['labelstudio']['url']}"
    return (
        f"  file route: import {cfg['dir']}/tasks/round-*.json into Label Studio; give its JSON "
        "export to the next round with --labels"
    )


def _serve(config: dict[str, Any], campaign: Campaign, client: Any) -> int:  # noqa: ANN401
    """Run the model server until interrupted: HTTP endpoints (uvicorn, in a thread), the
    backend connected to the project, the worker; Ctrl-C stops all three."""
    import threading
    import time

    try:
        import uvicorn

        from alnsfw.campaign.mlbackend import create_app, credentials
    except ImportError as err:
        raise CampaignError(
            f"alnsfw campaign serve needs the campaign extra ({err.name} is missing): "
            "pip install -e '.[campaign]' (make run installs it)"
        ) from err
    from alnsfw.campaign.service import CampaignService

    cfg = config["campaign"]["serve"]
    try:
        user, password = credentials(cfg["auth_env"])
    except ValueError as err:
        raise CampaignError(str(err)) from err
    campaign.warm()  # refuses a campaign that was never started; loads the learner
    service = CampaignService.from_config(campaign)
    app = create_app(service, user, password)
    server = uvicorn.Server(
        uvicorn.Config(app, host=cfg["host"], port=int(cfg["port"]), log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    if not thread.is_alive():
        raise CampaignError(f"the model server could not listen on {cfg['host']}:{cfg['port']}")
    url = cfg["public_url"] or f"http://{cfg['host']}:{cfg['port']}"
    connect = getattr(client, "connect_backend", None)
    if connect is not None:
        connect(url, "alnsfw campaign", user, password)
        print(f"model server at {url}, connected to the Label Studio project", flush=True)
    else:
        print(f"model server at {url} (file route: nothing to connect)", flush=True)
    service.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        server.should_exit = True
        thread.join(10)
    return 0
