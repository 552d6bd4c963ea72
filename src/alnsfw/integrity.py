"""Which cached file is corrupt, and how to rebuild it.

Every HDF5 dataset the workflow writes carries per-chunk Fletcher-32 checksums (h5py
`fletcher32=True`), so overwritten bytes make a read fail instead of returning other numbers; a
truncated file fails to open. h5py's errors name neither the file nor the fix, so `run_logged`
calls `explain_corrupt_input` when a job fails with an OSError: it reads each HDF5 input of the
job in full and, for the first one that fails, raises a DataError naming it and the Snakemake
command that rebuilds it (the producer's output is up to date by mtime, so Snakemake alone
would never redo it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py

from alnsfw import outputs
from alnsfw.data.errors import DataError

# Output path (relative, as the rules write it) -> the rule that writes it. The bank before the
# features: a bank file's name also matches the features' pattern. A shard has no fixed rule name
# (extract_keyframes, or extract_keyframes_<n> with compute.keyframe_jobs): it is forced by path.
SHARD = outputs.output_regex(outputs.KEYFRAME_SHARD)
REBUILD_RULES = [
    (outputs.output_regex(outputs.KEYFRAMES), "merge_keyframes"),
    (outputs.output_regex(outputs.BANK), "cache_features"),  # with the features (bank mode)
    (outputs.output_regex(outputs.FEATURES), "cache_features"),
    (outputs.output_regex(outputs.PROXY_WEIGHTS), "pretrain_trunk"),
]


def rebuild_command(path: str | Path) -> str:
    """The command that rebuilds `path` (and everything after it)."""
    posix = Path(path).as_posix()
    shard = SHARD.search(posix)
    if shard:
        return (
            f"snakemake --force {shard.group(0).lstrip('/')}, then snakemake (both with your usual "
            "--configfile/--config options)"
        )
    for pattern, rule in REBUILD_RULES:
        if pattern.search(posix):
            return f"snakemake --forcerun {rule} (add your usual --configfile/--config options)"
    return f"delete {path} and run snakemake again"


def hdf5_problem(path: str | Path) -> str | None:
    """Why `path` cannot be read in full (h5py's words), or None when every dataset reads."""
    problem: list[str] = []

    def read(name: str, obj: Any) -> None:  # noqa: ANN401
        if isinstance(obj, h5py.Dataset) and not problem:
            try:
                if obj.chunks:  # chunk by chunk: a paper-size cache never fits in memory
                    for chunk in obj.iter_chunks():
                        obj[chunk]
                else:
                    obj[()]
            except (OSError, RuntimeError, ValueError) as err:
                problem.append(f"dataset '{name}': {err}")

    try:
        with h5py.File(path, "r") as h5:
            h5.visititems(read)
    except (OSError, RuntimeError, ValueError) as err:
        return str(err)
    return problem[0] if problem else None


def hdf5_paths(values: Iterable[Any]) -> list[str]:
    """The existing `.h5` files among `values` (strings, paths, mappings and lists of them)."""
    found: list[str] = []
    for value in values:
        if isinstance(value, Mapping):
            found += hdf5_paths(value.values())
        elif isinstance(value, list | tuple):
            found += hdf5_paths(value)
        elif isinstance(value, str | Path) and str(value).endswith(".h5") and Path(value).is_file():
            found.append(str(value))
    return found


def explain_corrupt_input(kwargs: Mapping[str, Any]) -> DataError | None:
    """A DataError for the first unreadable HDF5 file among a job's arguments, or None."""
    for path in hdf5_paths(kwargs.values()):
        problem = hdf5_problem(path)
        if problem is not None:
            return DataError(
                f"{path} is corrupt or truncated ({problem}). Rebuild it: {rebuild_command(path)}."
            )
    return None
