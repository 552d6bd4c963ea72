"""Atomic file writes: a killed job must never leave a half-written output that looks finished.

Everything is written to a temporary name in the target's folder and renamed into place, which is
atomic on POSIX file systems, so Snakemake (and a reader) sees either the old file or the whole
new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
