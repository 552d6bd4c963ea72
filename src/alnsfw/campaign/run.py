"""Glue of `alnsfw campaign ...`: config files -> validated config -> Campaign -> printed report."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from alnsfw.campaign.client import ClientError, FileClient, LabelStudioClient
from alnsfw.campaign.core import Campaign, CampaignError
from alnsfw.campaign.data import DataPrepError, check_keyframes_belong, prepare
from alnsfw.campaign.labels import LabelInputError


def make_client(config: dict[str, Any], labels_file: str | None, project_id: int | None) -> Any:  # noqa: ANN401
    """The Label Studio client of campaign.labelstudio.url, or the file route."""
    cfg = config["campaign"]
    ls = cfg.get("labelstudio", {})
    if labels_file or not ls.get("url"):
        return FileClient(Path(cfg["dir"]) / "tasks", labels_file)
    return LabelStudioClient(
        ls["url"],
        ls.get("token_env", "ALNSFW_LS_TOKEN"),
        ls.get("project_title", "alnsfw campaign"),
        cfg["image_dir"],
        float(ls.get("timeout", 30)),
        project_id,
    )


def run_campaign_command(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """One `alnsfw campaign <action>`; prints the report, returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import json

    plan_path = Path(config["campaign"]["dir"]) / "campaign.json"
    project = json.loads(plan_path.read_text()).get("project_id") if plan_path.is_file() else None
    try:
        client = None
        keyframes = args.keyframes
        if args.action == "start":
            if keyframes is None:
                work = f"{config['campaign']['dir']}/work"
                print(f"making the folder's keyframes and feature cache in {work}")
                prepare(config, cores=getattr(args, "cores", 2))
            else:
                check_keyframes_belong(keyframes, config)
        if args.action in ("start", "round"):
            client = make_client(config, getattr(args, "labels", None), project)
        campaign = Campaign(config, keyframes, client)
        if args.action == "start":
            print(campaign.start().text())
            print(_where_tasks_are(config))
        elif args.action == "round":
            print(campaign.round().text())
            if isinstance(client, FileClient):
                print(_where_tasks_are(config))
        elif args.action == "status":
            print(campaign.status().text())
        else:
            done = campaign.export(args.out)
            print(f"wrote {done['outputs']['model']} and {done['outputs']['meta']}")
    except (CampaignError, ClientError, LabelInputError, DataPrepError) as err:
        print(f"alnsfw campaign {args.action}: {err}", file=sys.stderr)
        return 1
    return 0


def _where_tasks_are(config: dict[str, Any]) -> str:
    cfg = config["campaign"]
    if cfg.get("labelstudio", {}).get("url"):
        return f"  tasks are in Label Studio at {cfg['labelstudio']['url']}"
    return (
        f"  file route: import {cfg['dir']}/tasks/round-*.json into Label Studio; give its JSON "
        "export to the next round with --labels"
    )
