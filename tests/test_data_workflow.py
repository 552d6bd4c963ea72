"""The data stage through Snakemake on presets/smoke.yaml: up to date after a run, one changed
video reruns only its shard, a corrupt video fails alone, a bad config fails before any job.

The built data comes from the session's smoke run (`smoke_workflow`, tests/conftest.py): tests
that change a video work on a private copy of it, and only the data targets are requested.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import SNAKEMAKE, copy_smoke_workflow, validated_config

from alnsfw.data.synthetic import render_video, write_video

pytestmark = pytest.mark.xdist_group("smoke_workflow")  # tests/conftest.py

REPO = Path(__file__).resolve().parents[1]
TARGETS = [
    "results/splits/fold0/seed0.json",
    "results/tables/table1.csv",
    "results/figures/contact_sheet.png",
]
VIDEO = "resources/smoke/Database/vPorn/vPorn2.avi"
TABLES = ("table1.csv", "table1.md", "folds.csv", "folds.md")
SMOKE_SYNTHETIC = validated_config()["synthetic"]  # presets/smoke.yaml's: the videos it renders


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """This checkout's Snakefile on the smoke preset in `workdir` (cores given by the caller)."""
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(REPO / "presets/smoke.yaml"), *args]
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=300)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def copy_workflow(dest: Path) -> Path:
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, dest / name)
    # src too: the copy's workflow imports alnsfw from its own src, not from whatever checkout
    # the venv's editable install points at
    for name in ("workflow", "scripts", "src", "presets", "profiles", "envs"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture
def built(smoke_workflow, tmp_path):
    """A private copy of the session's finished smoke run, whose data targets are built."""
    return copy_smoke_workflow(smoke_workflow, tmp_path / "work")


def pending_outputs(workdir: Path, *args: str) -> dict[str, str]:
    """output -> rule, for every output of the data targets that Snakemake would (re)make."""
    out = snakemake(workdir, "--summary", *TARGETS, *args).stdout  # args last: --config takes all
    rows = [line.split("\t") for line in out.splitlines() if line.count("\t") >= 5]
    return {r[0]: r[2] for r in rows[1:] if r[5] != "no update"}


def test_data_targets_are_built(smoke_workflow):
    built = smoke_workflow  # read only
    for target in TARGETS + ["results/keyframes/keyframes.h5", "results/tables/folds.md"]:
        assert (built / target).stat().st_size > 0
    assert len(list((built / "results/keyframes/shards").glob("*.h5"))) == 12
    assert "vNonPornDifficulty" in (built / "results/tables/table1.md").read_text()
    assert pending_outputs(built) == {}  # up to date
    assert "Nothing to be done" in snakemake(built, "--dry-run", *TARGETS).stdout


def test_changing_one_video_reruns_only_its_shard_and_downstream(built):
    shards = built / "results/keyframes/shards"
    before = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.h5")}
    frames = render_video("vPorn2", "vPorn", SMOKE_SYNTHETIC).frames
    write_video(built / VIDEO, np.clip(frames.astype(int) + 6, 0, 255).astype(np.uint8), 4)

    assert pending_outputs(built) == {
        "results/keyframes/shards/vPorn2.h5": "extract_keyframes",  # and no other shard
        "results/keyframes/keyframes.h5": "merge_keyframes",
        "results/keyframes/manifest.csv": "merge_keyframes",
        "results/splits/fold0/seed0.json": "make_splits",
        **{f"results/tables/{t}": "ingest_report" for t in TABLES},
        "results/figures/contact_sheet.png": "ingest_report",
    }
    snakemake(built, "--cores", "2", *TARGETS)
    after = {p.name: p.stat().st_mtime_ns for p in shards.glob("*.h5")}
    assert [n for n in before if after[n] != before[n]] == ["vPorn2.h5"]


def test_corrupt_video_stops_with_one_clear_error_and_no_shard(built):
    (built / VIDEO).write_bytes(b"this is not a video" * 100)
    proc = snakemake(built, "--cores", "1", "results/keyframes/shards/vPorn2.h5", check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and f"'{VIDEO}' cannot be opened" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (built / "results/keyframes/shards/vPorn2.h5").exists()
    assert not list((built / "results/keyframes/shards").glob(".vPorn2*"))  # no temp file


@pytest.mark.parametrize(
    ("bad", "names"),
    [
        ("keyframes:\n  size: big\n", ["keyframes", "size", "'big' is not of type 'integer'"]),
        ("synthetic:\n  sede: 3\n", ["synthetic", "'sede' was unexpected"]),
    ],
)
def test_bad_config_is_rejected_before_any_job_naming_the_key(tmp_path, bad, names):
    workdir = copy_workflow(tmp_path)
    (workdir / "bad.yaml").write_text(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", "bad.yaml"],
        cwd=workdir, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "Error validating config file" in message
    for name in names:
        assert name in message
    assert not (workdir / "results").exists() and not (workdir / "resources").exists()


def test_video_groups_are_stable_when_a_video_is_added():
    from alnsfw.data.layout import VideoRecord, video_groups

    videos = [VideoRecord(f"v{i}", "vPorn", "video", (f"v{i}.mp4",)) for i in range(40)]
    groups = video_groups(videos, 4)
    assert 1 <= len(groups) <= 4
    assert sorted(v.name for g in groups.values() for v in g) == sorted(v.name for v in videos)
    grown = video_groups([*videos, VideoRecord("new", "vPorn", "video", ("new.mp4",))], 4)
    changed = [g for g in grown if [v.name for v in grown[g]] != [v.name for v in groups[g]]]
    assert len(changed) == 1 and "new" in [v.name for v in grown[changed[0]]]
    with pytest.raises(ValueError, match="keyframe_jobs"):
        video_groups(videos, 0)


def test_grouped_keyframe_jobs_write_the_same_shards(built):
    """compute.keyframe_jobs: the shards of one-video jobs, from 3 group jobs, and a changed
    video reruns only its own group."""
    shards = built / "results/keyframes/shards"
    before = {}
    for path in sorted(shards.glob("*.h5")):
        with h5py.File(path, "r") as h5:
            before[path.name] = {k: h5[k][()] for k in h5}
    grouped = ["--config", "compute={batch_runs: true, keyframe_jobs: 3}"]
    pending = pending_outputs(built, *grouped)
    made = {out: rule for out, rule in pending.items() if "shards/" in out}
    assert sorted(made) == sorted(f"results/keyframes/shards/{n}" for n in before)
    assert {rule for rule in made.values()} <= {f"extract_keyframes_{g}" for g in range(3)}
    snakemake(built, "--cores", "2", *TARGETS, *grouped)
    for name, datasets in before.items():
        with h5py.File(shards / name, "r") as h5:
            assert sorted(h5) == sorted(datasets)
            for key, value in datasets.items():
                np.testing.assert_array_equal(h5[key][()], value, err_msg=f"{name}: {key}")

    frames = render_video("vPorn2", "vPorn", SMOKE_SYNTHETIC).frames
    write_video(built / VIDEO, np.clip(frames.astype(int) + 6, 0, 255).astype(np.uint8), 4)
    pending = pending_outputs(built, *grouped)
    rerun = {out: rule for out, rule in pending.items() if "shards/" in out}
    group = made["results/keyframes/shards/vPorn2.h5"]
    assert rerun == {out: rule for out, rule in made.items() if rule == group}
