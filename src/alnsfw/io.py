"""Atomic file writes: a killed job must never leave a half-written output that looks finished.

Everything is written to a temporary name in the target's folder and renamed into place, which is
atomic on POSIX file systems, so Snakemake (and a reader) sees either the old file or the whole
new one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
# The names atomic_path gives its temporaries: ".<target name>.<8 mkstemp characters>.tmp<suffix>"
STALE_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    The temporary keeps the target's suffix (or `suffix`) because some writers (Keras, OpenCV)
    choose the format from the extension.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sfx = suffix if suffix is not None else "".join(target.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{sfx}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the file the mode open() would, so others on a cluster read it.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | os.PathLike[str], obj: Any) -> None:  # noqa: ANN401
    """Write `obj` as indented JSON to `target` atomically."""
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(target: str | os.PathLike[str], frame: Any) -> None:  # noqa: ANN401
    """Write a pandas DataFrame to `target` atomically, without the index."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


def remove_stale_temporaries(roots: list[str | os.PathLike[str]]) -> list[Path]:
    """Delete the temporaries of atomic_path left under `roots` by killed jobs; return them.

    A SIGKILLed job never reaches atomic_path's cleanup, and its temporary can be large (3.4 GB
    for a paper-size feature cache). Call this only when no job is running (the workflow's
    `onstart`: Snakemake's lock keeps a second run out of the same folder).
    """
    removed = []
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        for dirpath, _, files in os.walk(root):
            for name in files:
                if STALE_TEMPORARY.match(name):
                    path = Path(dirpath) / name
                    size = path.stat().st_size
                    path.unlink(missing_ok=True)
                    removed.append(path)
                    log.warning("removed stale temporary %s (%.1f MB)", path, size / 1e6)
    return removed
