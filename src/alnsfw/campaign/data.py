"""The campaign's inputs: the keyframes of its own folder of videos and their feature cache.

Why here and not "whatever results/keyframes/keyframes.h5 holds": after `make run` that file holds
the simulation's synthetic keyframes, and a campaign started on it silently asked people about
the wrong videos. So a campaign owns a Snakemake working directory, `<campaign.dir>/work`, and
runs the workflow's own keyframe and feature-cache rules there (the same code, fingerprints and
checks as the simulation; nothing under the simulation's results/ is touched). A keyframes file
given by hand is checked instead: every row's source must lie under data.root and every video
of data.root must have its keyframes.

The learner then trains only its head on cached trunk features, as the simulation does: a round
on the demo's folder takes seconds instead of a minute of end-to-end training.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import yaml

from alnsfw.data.layout import scan_folder
from alnsfw.io import write_text
from alnsfw.model.tags import feature_files
from alnsfw.outputs import KEYFRAMES, MANIFEST

REPO = Path(__file__).resolve().parents[3]
SNAKEFILE = REPO / "Snakefile"


class DataPrepError(RuntimeError):
    """The campaign's keyframes or features cannot be made or do not belong to its folder."""


@dataclass(frozen=True)
class CampaignInputs:
    """Paths the learner and the task builder read."""

    keyframes: str
    features: str | None
    bank: str | None
    root: str  # data.root, absolute: sources are shown relative to it


def work_dir(config: dict[str, Any]) -> Path:
    """The campaign's own Snakemake working directory."""
    return Path(config["campaign"]["dir"]) / "work"


def work_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config the workflow gets in the work directory: the campaign's, with data.root made
    absolute (the work directory is elsewhere) and the folder source."""
    out = {k: v for k, v in config.items() if k != "campaign"}
    out["data"] = {**config["data"], "root": str(Path(config["data"]["root"]).resolve())}
    out["keyframes"] = {**config["keyframes"], "full_images": True}  # task images, no decode
    return out


def inputs_for(config: dict[str, Any], keyframes: str | None = None) -> CampaignInputs:
    """Where the keyframes and caches are: the given file (features beside the workflow's
    results), or the campaign's work directory."""
    root = str(Path(config["data"]["root"]).resolve())
    if keyframes is not None:
        base = Path(keyframes).resolve().parents[2]  # <base>/results/keyframes/keyframes.h5
    else:
        base = work_dir(config)
        keyframes = str(base / KEYFRAMES)
    files = feature_files(config)
    feats = files.get("features")
    bank = files.get("bank")
    return CampaignInputs(
        keyframes=str(keyframes),
        features=None if feats is None else str(base / feats),
        bank=None if bank is None else str(base / bank),
        root=root,
    )


def check_keyframes_belong(keyframes: str, config: dict[str, Any]) -> None:
    """Refuse keyframes that were not made from data.root's videos (all of them)."""
    root = Path(config["data"]["root"]).resolve()
    if config["data"]["source"] != "folder":
        raise DataPrepError(
            f"a campaign labels a folder of unlabelled videos: set data.source: folder and "
            f"data.root to it (data.source is '{config['data']['source']}')"
        )
    path = Path(keyframes)
    if not path.is_file():
        raise DataPrepError(f"{keyframes} does not exist")
    with h5py.File(path, "r") as h5:
        sources = set(h5["source"].asstr()[:]) if "source" in h5 else set()
    outside = sorted(s for s in sources if not _under(Path(s), root))
    if outside:
        raise DataPrepError(
            f"{keyframes} was not made from data.root = {root}: its keyframes come from "
            f"{len(outside)} video(s) elsewhere (e.g. {outside[0]}). Leave out --keyframes and "
            "`alnsfw campaign start` makes the folder's own keyframes in "
            f"{work_dir(config)}, or give the keyframes of this folder"
        )
    expected = {
        str(Path(r.inputs[0]).resolve())
        for r in scan_folder(root, config["data"]["video_extensions"])
    }
    missing = sorted(expected - {str(Path(s).resolve()) for s in sources})
    if missing:
        raise DataPrepError(
            f"{keyframes} lacks the keyframes of {len(missing)} video(s) of {root} (e.g. "
            f"{missing[0]}): it was made before they were added. Leave out --keyframes to let "
            "the campaign make them, or rebuild that file"
        )


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def prepare(config: dict[str, Any], cores: int = 2, quiet: bool = True) -> CampaignInputs:
    """Make (or bring up to date) the folder's keyframes and caches in the work directory, with
    the workflow's own rules; a no-op in ~2 s when nothing changed (Snakemake checks)."""
    if not SNAKEFILE.is_file():
        raise DataPrepError(
            f"the workflow's Snakefile is not at {SNAKEFILE}: run alnsfw from its checkout "
            "(or give --keyframes made by `snakemake --configfile <your preset>`)"
        )
    if config["data"]["source"] != "folder":
        raise DataPrepError(
            "a campaign labels a folder of unlabelled videos: set data.source: folder and "
            "data.root to that folder"
        )
    work = work_dir(config).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "campaign-workflow.yaml"
    text = yaml.safe_dump(work_config(config), sort_keys=True)
    if not cfg_path.is_file() or cfg_path.read_text() != text:
        write_text(cfg_path, text)
    ins = inputs_for(config)
    targets = [KEYFRAMES, MANIFEST, *feature_files(config).values()]
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        *targets,
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(work),
        "--configfile",
        str(cfg_path),
        "--cores",
        str(cores),
        *(["--quiet", "all"] if quiet else []),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *_pythonpath()])}
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=quiet, text=True)
    if done.returncode != 0:
        tail = (done.stderr or "")[-2000:] if quiet else ""
        raise DataPrepError(
            f"making the folder's keyframes and feature cache failed (snakemake in {work}, exit "
            f"{done.returncode}); fix what it says and run the command again:\n{tail}"
        )
    check_keyframes_belong(ins.keyframes, config)
    return ins


def _pythonpath() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
