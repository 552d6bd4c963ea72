"""The report section's options for the aggregation, in a module of their own.

Why apart from alnsfw.report.aggregate: the Snakefile reads ReportOptions' fields while it is
parsed, on every `snakemake` command (dry-runs and `--lint` included), and the aggregation
imports pandas and scipy.stats (about half a CPU-second) that parsing never needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alnsfw.schema import config_section


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """The `report` section of the config, as the aggregation uses it (its fields name the keys
    rule aggregate passes). Keys a partial config leaves out come from the schema, the one place
    that states the defaults."""

    key_percentages: tuple[float, ...]
    interpolation: str
    edge_tolerance: float
    within_points: float
    bootstrap: int
    bootstrap_seed: int
    allow_partial: bool

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ReportOptions:
        """Build from cfg['report'], ignoring keys that only the figures use."""
        report = config_section(cfg, "report")
        return cls(
            key_percentages=tuple(float(p) for p in report["key_percentages"]),
            interpolation=str(report["interpolation"]),
            edge_tolerance=float(report["edge_tolerance"]),
            within_points=float(report["within_points"]),
            bootstrap=int(report["bootstrap"]),
            bootstrap_seed=int(report["bootstrap_seed"]),
            allow_partial=bool(report["allow_partial"]),
        )
