"""How every rule script runs: log to the rule's log file, and fail with one clear line.

A DataError or ConfigError is the user's to fix (a bad file, a wrong list), so it is reported as
its message alone, on stderr and in the log, instead of a traceback that buries it; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alnsfw.data.errors import DataError
from alnsfw.integrity import explain_corrupt_input
from alnsfw.schema import ConfigError


def setup_logging(log_file: str | Path | None) -> None:
    """Send INFO and above of every logger to `log_file` (or stderr when None)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers = [logging.FileHandler(log_file, mode="w")]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)


def config_from_params(params: Any) -> dict[str, Any]:  # noqa: ANN401
    """The nested config rebuilt from a rule's ("section.key", value) params (common.smk
    key_params / leaf_params: one param per key, so that rerun reasons name the key)."""
    config: dict[str, Any] = {}
    for value in params:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            *parents, leaf = value[0].split(".")
            node = config
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value[1]
    return config


def section_from_params(params: Any, section: str) -> dict[str, Any]:  # noqa: ANN401
    """One section of config_from_params (empty when the rule passes none of its keys)."""
    return config_from_params(params).get(section, {})


def run_logged(func: Callable[..., Any], log_file: str | Path | None, **kwargs: Any) -> Any:  # noqa: ANN401
    """Call func(**kwargs) with logging set up; a DataError exits 1 with its message only.

    An OSError (h5py's error for a truncated file or a chunk failing its checksum) becomes a
    DataError naming the corrupt input and its rebuild command, when one of the inputs is.
    """
    setup_logging(log_file)
    try:
        try:
            return func(**kwargs)
        except OSError as exc:
            corrupt = explain_corrupt_input(kwargs)
            if corrupt is None:
                raise
            raise corrupt from exc
    except (DataError, ConfigError) as exc:
        logging.getLogger(func.__module__).error("%s", exc)
        print(f"ERROR: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        logging.getLogger(func.__module__).exception("failed")
        raise
