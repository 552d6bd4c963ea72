"""Fold lists (parsing and checks) and the per fold/seed validation splits."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from alnsfw.data.errors import DataError
from alnsfw.data.folds import load_folds
from alnsfw.data.splits import make_split
from alnsfw.data.store import read_manifest

TEST, TRAIN = "test/fold{fold}_video.txt", "training/fold{others}_video.txt"


@pytest.fixture
def lists(smoke_data, tmp_path):
    """A writable copy of the smoke dataset's fold lists."""
    for sub in ("test", "training"):
        shutil.copytree(smoke_data.root / sub, tmp_path / sub)
    return tmp_path


def _videos(smoke_data):
    return set(read_manifest(smoke_data.manifest)["video"])


def test_parse_lists(smoke_data, lists):
    (lists / "test/fold0_video.txt").write_text(
        (lists / "test/fold0_video.txt").read_text() + "\n# a comment\n   \n"
    )
    plan = load_folds(lists, TEST, TRAIN, 5, _videos(smoke_data))
    assert sorted(n for v in plan.test.values() for n in v) == sorted(_videos(smoke_data))
    for fold in range(5):
        assert set(plan.train[fold]) == _videos(smoke_data) - set(plan.test[fold])
    assert plan.missing == {} and plan.unlisted == []


def test_configurable_patterns(smoke_data, lists):
    (lists / "test").rename(lists / "folds_test")
    plan = load_folds(lists, "folds_test/fold{fold}_video.txt", TRAIN, 5, _videos(smoke_data))
    assert len(plan.test[0]) > 0


def test_video_in_two_test_folds(smoke_data, lists):
    name = (lists / "test/fold0_video.txt").read_text().split()[0]
    with open(lists / "test/fold1_video.txt", "a") as f:
        f.write(f"{name}\n")
    with pytest.raises(DataError, match=f"'{name}' is in two test folds.*fold0_video.txt"):
        load_folds(lists, TEST, TRAIN, 5, _videos(smoke_data))


def test_video_on_both_sides_of_a_fold(smoke_data, lists):
    name = (lists / "test/fold0_video.txt").read_text().split()[0]
    with open(lists / "training/fold1234_video.txt", "a") as f:
        f.write(f"{name}\n")
    with pytest.raises(DataError, match=f"'{name}'.*both the test list.*fold1234_video.txt"):
        load_folds(lists, TEST, TRAIN, 5, _videos(smoke_data))


def test_unknown_video_is_an_error_naming_it_and_the_list(smoke_data, lists):
    with open(lists / "test/fold2_video.txt", "a") as f:
        f.write("vPorn999\n")
    with pytest.raises(DataError, match=r"'vPorn999' is listed in '.*fold2_video\.txt'"):
        load_folds(lists, TEST, TRAIN, 5, _videos(smoke_data))


def test_unknown_video_is_skipped_and_counted_with_warn(smoke_data, lists, caplog):
    with open(lists / "test/fold2_video.txt", "a") as f:
        f.write("vPorn999\n")
    plan = load_folds(lists, TEST, TRAIN, 5, _videos(smoke_data), on_missing="warn")
    assert plan.missing == {2: ["vPorn999"]}
    assert "vPorn999" not in plan.test[2]
    assert "vPorn999" in caplog.text


def test_missing_list_file_names_file_and_key(smoke_data, lists):
    (lists / "training/fold0234_video.txt").unlink()
    with pytest.raises(DataError, match=r"fold0234_video\.txt.*data\.train_list"):
        load_folds(lists, TEST, TRAIN, 5, _videos(smoke_data))


@pytest.fixture(scope="module")
def manifest_and_plan(smoke_data):
    manifest = read_manifest(smoke_data.manifest)
    return manifest, load_folds(smoke_data.root, TEST, TRAIN, 5, set(manifest["video"]))


@pytest.mark.parametrize("unit", ["frame", "video"])
def test_split_is_deterministic_and_leak_free(manifest_and_plan, unit):
    manifest, plan = manifest_and_plan
    for fold in range(5):
        a = make_split(manifest, plan, fold, 0, 0.2, unit)
        assert a == make_split(manifest, plan, fold, 0, 0.2, unit)
        pool, val, test = set(a["pool"]), set(a["val"]), set(a["test"])
        assert not (pool & val or pool & test or val & test)
        assert pool | val | test == set(manifest["row"])
        assert a["pool"] == sorted(a["pool"]) and a["val"] and a["pool"]
        by_row = manifest.set_index("row")["video"]
        test_videos = set(by_row[list(test)])
        assert test_videos == set(plan.test[fold])
        assert not test_videos & set(by_row[list(pool | val)])  # videos never cross test
        if unit == "video":
            assert not set(by_row[list(val)]) & set(by_row[list(pool)])
        for part in ("pool", "val", "test"):
            c = a["counts"][part]
            assert c["total"] == len(a[part]) == c["porn"] + c["nonporn"]
            assert c["porn"] == int(manifest.set_index("row").loc[a[part], "label"].sum())


def test_val_fraction_and_seed(manifest_and_plan):
    manifest, plan = manifest_and_plan
    a = make_split(manifest, plan, 1, 0, 0.2, "frame")
    n_train = len(a["pool"]) + len(a["val"])
    assert abs(len(a["val"]) - 0.2 * n_train) <= 2  # per-label rounding
    seeds = {tuple(make_split(manifest, plan, 1, s, 0.2, "frame")["val"]) for s in range(4)}
    assert len(seeds) > 1


def test_fixture_split_file_follows_the_contract(smoke_data):
    split = json.loads(smoke_data.split.read_text())
    assert list(split) == [
        "fold", "seed", "val_unit", "val_fraction", "pool", "val", "test", "counts",
    ]  # fmt: skip
    assert set(split["counts"]) == {"pool", "val", "test"}
    assert isinstance(pd.Series(split["pool"]).iloc[0].item(), int)
