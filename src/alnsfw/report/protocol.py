"""The report's page on the protocol and configuration used, with the data's Table 1.

A figure is only as trustworthy as the settings behind it, so the report carries them: the
settings that define the paper's protocol in one short table, Table 1 (images per class, per
fold) from ingestion, and the complete validated config (defaults filled in) as YAML.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd
import yaml

from alnsfw.io import write_text

PROTOCOL_KEYS = (
    # (label, config path, what it means in the paper's terms)
    ("Dataset", ("data", "source"), "synthetic NPDI-like demo or the real NPDI copy"),
    ("Dataset root", ("data", "root"), ""),
    ("Folds", ("splits", "folds"), "official NPDI folds used as test folds"),
    ("Seeds", ("splits", "seeds"), "repetitions per fold"),
    ("Validation share", ("splits", "val_fraction"), "of each fold's training data"),
    ("Validation unit", ("splits", "val_unit"), "frame (paper) or video (no leakage)"),
    ("Backbone weights", ("model", "weights"), "ResNet50V2 trunk initialisation"),
    ("Input size", ("model", "input_size"), "pixels, square"),
    ("Trainable from", ("model", "trainable_from"), "first trainable layer"),
    ("Head", ("model", "head"), "custom head after the trunk"),
    ("Learning rate", ("training", "learning_rate"), "Adam"),
    ("Batch size", ("training", "batch_size"), ""),
    ("Max epochs per cycle", ("training", "max_epochs"), "early stopping on validation loss"),
    ("Early-stopping patience", ("training", "patience"), "epochs"),
    ("Augmentation", ("training", "augment"), "online, precomputed bank, or none"),
    ("Strategies", ("al", "strategies"), ""),
    ("Initial labelled share", ("al", "initial_fraction"), "of the pool, per class"),
    ("Query size", ("al", "query_size"), "samples labelled per cycle"),
    ("Warm start", ("al", "warm_start"), "continue training across cycles"),
    ("Full-supervision epochs", ("baseline", "epochs"), "at most, early stopping"),
    ("Key percentages", ("report", "key_percentages"), "rows of Table 2"),
    ("Interpolation", ("report", "interpolation"), "how cycles are read at key percentages"),
    ("Within points", ("report", "within_points"), "threshold of the summary table"),
    ("Bootstrap resamples", ("report", "bootstrap"), "paired CIs"),
)


def _get(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:  # noqa: ANN401
    node: Any = config
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return "(not set)"
        node = node[key]
    return node


def _value_text(value: Any) -> str:  # noqa: ANN401
    """Scalars as written, lists and mappings in YAML flow style (one line in a table cell)."""
    if isinstance(value, Mapping | list | tuple):
        return yaml.safe_dump(_plain(value), default_flow_style=True, width=1000).strip()
    return str(value)


def protocol_table(config: Mapping[str, Any]) -> pd.DataFrame:
    """The protocol-defining settings as (setting, config key, value, meaning) rows."""
    rows = [
        {
            "Setting": label,
            "Config key": ".".join(path),
            "Value": _value_text(_get(config, path)),
            "Meaning": meaning,
        }
        for label, path, meaning in PROTOCOL_KEYS
    ]
    return pd.DataFrame(rows)


def write_protocol(
    config: Mapping[str, Any],
    table1_csv: str | os.PathLike[str],
    config_yaml: str | os.PathLike[str],
    protocol_md: str | os.PathLike[str],
    protocol_html: str | os.PathLike[str],
) -> None:
    """Write config_used.yaml, protocol.md and protocol.html (settings, Table 1, full config)."""
    config = _plain(config)
    dumped = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    write_text(config_yaml, dumped)
    settings = protocol_table(config)
    table1 = pd.read_csv(table1_csv)
    title = "Protocol and configuration used"
    md = [
        f"# {title}",
        "",
        "Settings that define the experiment (complete config in config_used.yaml):",
        "",
        settings.to_markdown(index=False),
        "",
        "## Table 1: images per class (from the ingested data)",
        "",
        table1.to_markdown(index=False),
        "",
    ]
    write_text(protocol_md, "\n".join(md))
    style = (
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "th,td{border:1px solid #bbb;padding:4px 8px;text-align:left}th{background:#eee}"
        "pre{background:#f6f6f6;padding:1em}"
    )
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body><h2>{title}</h2>"
        "<p>Settings that define the experiment (the complete config follows below).</p>"
        f"{settings.to_html(index=False, border=0)}"
        "<h3>Table 1: images per class (from the ingested data)</h3>"
        f"{table1.to_html(index=False, border=0)}"
        f"<h3>Complete configuration (defaults filled in)</h3><pre>{html.escape(dumped)}</pre>"
        "</body></html>\n"
    )
    write_text(protocol_html, page)


def _plain(node: Any) -> Any:  # noqa: ANN401
    """Snakemake's config holds its own mapping types; YAML needs plain dicts and lists."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_plain(v) for v in node]
    return node
