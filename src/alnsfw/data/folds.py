"""The official 5-fold split of NPDI, read from its fold lists and checked before use.

The lists are the only place the split is defined, and public copies of NPDI differ from them (a
few videos missing), so every inconsistency is named with its file: a video in two test folds, a
video on both sides of one fold, a listed video absent from the data. With `data.on_missing: warn`
absent videos are skipped, logged and counted instead of stopping the run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from alnsfw.data.errors import DataError
from alnsfw.data.layout import fold_list_paths, natural_key

log = logging.getLogger(__name__)


@dataclass
class FoldPlan:
    """Test and training videos per fold, restricted to videos that exist in the data."""

    test: dict[int, list[str]]
    train: dict[int, list[str]]
    missing: dict[int, list[str]] = field(default_factory=dict)  # listed, absent (skipped)
    unlisted: list[str] = field(default_factory=list)  # in the data, in no test list


def read_list(path: str | Path, key: str) -> list[str]:
    """Video names of one list file: one per line; blank lines and `#` comments ignored."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"Fold list '{path}' does not exist. Check data.root and {key} (a pattern relative "
            "to data.root), or add the file: one video name per line."
        )
    names: list[str] = []
    for line in path.read_text().splitlines():
        name = line.split("#", 1)[0].strip()
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
    )
