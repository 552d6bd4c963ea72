"""pytest plugin: the CPU time of every test phase, summed per test module, printed at the end.

    make profile-tests        # = PYTHONPATH=tools .venv/bin/pytest -p pytest_cpu

Why: on two cores with three workers the suite is CPU-bound, so its wall time follows the CPU
time the tests spend, not their wall times (`--durations` counts a test's waits on the other
workers). Each phase (setup, call, teardown) is measured as the process's user + system time
plus that of its waited-for children (Snakemake runs, subprocesses), before and after.
Session fixtures count in the setup of the first test that uses them. Every worker appends its
rows to `<dir>/<worker>.tsv` (`ALNSFW_CPU_PROFILE_DIR`, default `.pytest-cpu/`, emptied at the
start); the controlling process prints the largest phases and the per-module totals.
"""

from __future__ import annotations

import os
import resource
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

PHASES = ("setup", "call", "teardown")


def _dir() -> Path:
    return Path(os.environ.get("ALNSFW_CPU_PROFILE_DIR", ".pytest-cpu"))


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def pytest_configure(config: pytest.Config) -> None:
    if _worker() == "main":  # the controller, before any worker starts
        shutil.rmtree(_dir(), ignore_errors=True)
    _dir().mkdir(parents=True, exist_ok=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _wrap(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _wrap(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    return (yield from _wrap(item, "teardown"))


def _wrap(item: pytest.Item, phase: str):  # noqa: ANN202
    cpu, wall = _cpu_seconds(), time.monotonic()
    try:
        return (yield)
    finally:
        row = f"{item.nodeid}\t{phase}\t{_cpu_seconds() - cpu:.2f}\t{time.monotonic() - wall:.2f}"
        with (_dir() / f"{_worker()}.tsv").open("a") as out:
            out.write(row + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _worker() != "main":
        return
    rows = []
    for path in sorted(_dir().glob("*.tsv")):
        for line in path.read_text().splitlines():
            nodeid, phase, cpu, wall = line.split("\t")
            rows.append((nodeid.split("@")[0], phase, float(cpu), float(wall)))
    if not rows:
        return
    write = terminalreporter.write_line
    total = sum(r[2] for r in rows)
    terminalreporter.section(f"CPU seconds per test phase: {total:.0f} in all")
    write(f"{'CPU-s':>7} {'wall-s':>7}  phase     test")
    for nodeid, phase, cpu, wall in sorted(rows, key=lambda r: -r[2])[:25]:
        write(f"{cpu:7.1f} {wall:7.1f}  {phase:9} {nodeid}")
    modules = Counter()
    for nodeid, _, cpu, _ in rows:
        modules[nodeid.split("::")[0]] += cpu
    write("")
    write(f"{'CPU-s':>7}  module")
    for module, cpu in modules.most_common(15):
        write(f"{cpu:7.1f}  {module}")
