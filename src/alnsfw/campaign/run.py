"""Glue of `alnsfw campaign ...`: config files -> validated config -> Campaign -> printed report."""

from __future__ import annotations

import argparse
import copy
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from alnsfw.campaign.client import ClientError, FileClient, LabelStudioClient
from alnsfw.campaign.core import Campaign, CampaignError
from alnsfw.campaign.labels import LabelInputError, LabelScheme
from alnsfw.schema import SCHEMA_PATH


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for key, value in src.items():
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value)
        else:
            dst[key] = copy.deepcopy(value)


def load_config(paths: Sequence[str]) -> dict[str, Any]:
    """The config files deep-merged in order, validated by the workflow's schema (defaults
    filled in), as Snakemake would see them with --configfile."""
    from snakemake.utils import validate

    config: dict[str, Any] = {}
    for path in paths:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path} is not a YAML mapping")
        _merge(config, data)
    try:
        validate(config, str(SCHEMA_PATH))
    except Exception as err:  # snakemake's WorkflowError: the message names the key
        raise ValueError(f"config {', '.join(paths)}: {err}") from err
    return config


def make_client(config: dict[str, Any], labels_file: str | None, project_id: int | None) -> Any:  # noqa: ANN401
    """The Label Studio client of campaign.labelstudio.url, or the file route."""
    cfg = config["campaign"]
    ls = cfg.get("labelstudio", {})
    scheme = LabelScheme.from_config(ls)
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
    )


def run_campaign_command(args: argparse.Namespace, config: dict[str, Any]) -> int:
    """One `alnsfw campaign <action>`; prints the report, returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import json

    plan_path = Path(config["campaign"]["dir"]) / "campaign.json"
    project = json.loads(plan_path.read_text()).get("project_id") if plan_path.is_file() else None
    try:
        client = None
        if args.action in ("start", "round"):
            client = make_client(config, getattr(args, "labels", None), project)
        campaign = Campaign(config, args.keyframes, client)
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
    except (CampaignError, ClientError, LabelInputError) as err:
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
