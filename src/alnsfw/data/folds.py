"""The official 5-fold split of NPDI, read from its fold lists and checked before use.

The lists are the only place the split is defined, and public copies of NPDI differ from them (a
few videos missing), so every inconsistency is named with its file: a video in two test folds, a
video on both sides of one fold, a listed video absent from the data. With `data.on_missing: warn`
absent videos are skipped, logged and counted instead of stopping the run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alnsfw.data.errors import DataError
from alnsfw.data.layout import VIDEO_EXTENSIONS, fold_list_paths, natural_key

log = logging.getLogger(__name__)


@dataclass
class FoldPlan:
    """Test and training videos per fold, restricted to videos that exist in the data."""

    test: dict[int, list[str]]
    train: dict[int, list[str]]
    missing: dict[int, list[str]] = field(default_factory=dict)  # listed, absent (skipped)
    unlisted: list[str] = field(default_factory=list)  # in the data, in no test list
    lists: dict[int, tuple[Path, Path]] = field(default_factory=dict)  # (test, training) files

    def all_missing(self) -> list[str]:
        """Every listed-but-absent video once, in natural order."""
        return sorted({n for names in self.missing.values() for n in names}, key=natural_key)

    def describe_lists(self, fold: int) -> str:
        """The fold's list files, for messages."""
        if fold not in self.lists:
            return "its fold lists"
        test, train = self.lists[fold]
        return f"test list '{test}' and training list '{train}'"


def list_entry(line: str) -> str:
    """A video name from one line of a list: comments, whitespace, CR and a BOM removed, and a
    video file extension (`vPorn10.mp4`) dropped, since lists name videos without one."""
    name = line.split("#", 1)[0].replace("\ufeff", "").strip()
    stem, dot, ext = name.rpartition(".")
    if dot and stem and ext.lower() in VIDEO_EXTENSIONS:
        return stem
    return name


def read_list(path: str | Path, key: str) -> list[str]:
    """Video names of one list file: one per line; blank lines and `#` comments ignored."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"Fold list '{path}' does not exist. Check data.root and {key} (a pattern relative "
            "to data.root), or add the file: one video name per line."
        )
    names: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        name = list_entry(line)
        if name and name not in names:
            names.append(name)
    return names


def load_folds(
    root: str | Path,
    test_pattern: str,
    train_pattern: str,
    n_folds: int,
    available: Collection[str],
    on_missing: str = "error",
) -> FoldPlan:
    """Read all fold lists, check them against each other and against the ingested videos."""
    paths = fold_list_paths(root, test_pattern, train_pattern, n_folds)
    test = {f: read_list(t, "data.test_list") for f, (t, _) in paths.items()}
    train = {f: read_list(r, "data.train_list") for f, (_, r) in paths.items()}

    owner: dict[str, int] = {}
    for fold, names in test.items():
        for name in names:
            if name in owner:
                raise DataError(
                    f"Video '{name}' is in two test folds: '{paths[owner[name]][0]}' and "
                    f"'{paths[fold][0]}'. Each video belongs to exactly one test fold; remove "
                    "one of the lines."
                )
            owner[name] = fold
    for fold in test:
        both = sorted(set(test[fold]) & set(train[fold]), key=natural_key)
        if both:
            raise DataError(
                f"Video '{both[0]}' ({len(both)} in all) is in both the test list "
                f"'{paths[fold][0]}' and the training list '{paths[fold][1]}' of fold {fold}: "
                "it would leak from training into the test. Remove it from one of them."
            )

    present = set(available)
    missing: dict[int, list[str]] = {}
    for fold in test:
        for names, path in ((test[fold], paths[fold][0]), (train[fold], paths[fold][1])):
            absent = [n for n in names if n not in present]
            if not absent:
                continue
            if on_missing != "warn":
                raise DataError(
                    f"Video '{absent[0]}' is listed in '{path}' but is not in the dataset "
                    f"({len(absent)} such video(s) in this list). Add the video under "
                    "data.root, remove it from the list, or set data.on_missing: warn to skip "
                    "listed videos that are absent."
                )
            log.warning(
                "%s: skipping %d listed video(s) absent from the data: %s",
                path,
                len(absent),
                ", ".join(absent),
            )
            missing.setdefault(fold, []).extend(absent)
    unlisted = sorted(present - set(owner), key=natural_key)
    if unlisted:
        log.warning(
            "%d ingested video(s) are in no test list and so unused by the folds: %s",
            len(unlisted),
            ", ".join(unlisted),
        )
    return FoldPlan(
        test={f: [n for n in v if n in present] for f, v in test.items()},
        train={f: [n for n in v if n in present] for f, v in train.items()},
        missing={f: sorted(set(v), key=natural_key) for f, v in missing.items()},
        unlisted=unlisted,
        lists=paths,
    )


def check_before_jobs(plan: FoldPlan, folds: Collection[int], on_missing: str) -> str | None:
    """What the workflow says before any job: an empty test fold is an error naming the fold
    and its lists; absent listed videos (data.on_missing: warn) give one summary line."""
    for fold in folds:
        if not plan.test.get(fold):
            raise DataError(
                f"The test set of fold {fold} is empty: {plan.describe_lists(fold)} name no "
                "video present in the data. Check data.root, the lists and "
                "data.test_list/data.train_list, or choose other splits.folds."
            )
    missing = plan.all_missing()
    if not missing:
        return None
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    return (
        f"WARNING: {len(missing)} video(s) named in the fold lists are not in the data and are "
        f"skipped (data.on_missing: {on_missing}): {shown}. They are counted in "
        "results/tables/folds.md and table1.md."
    )


def precheck(config: Mapping[str, Any], names: Collection[str]) -> str | None:
    """check_before_jobs on the fold lists of an existing dataset, at workflow parse time.

    `names` are the planned videos (a scan of data.root), so a listed video that is absent, or a
    test fold left empty, is reported before the first job rather than inside one.
    """
    data = config["data"]
    plan = load_folds(
        data["root"],
        data["test_list"],
        data["train_list"],
        config["splits"]["n_folds"],
        names,
        data["on_missing"],
    )
    return check_before_jobs(plan, config["splits"]["folds"], data["on_missing"])
