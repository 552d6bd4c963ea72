"""Does a campaign learn as the simulation does? The demo's own synthetic videos as a folder.

    python tools/campaign_vs_simulation.py --sim . --out docs/img/campaign-vs-simulation.png

Reads a finished simulation (`make run`, or its least-confidence runs: results/runs/fold{f}/
seed{s}/least_confidence/cycles.csv and resources/synthetic/), then for each fold and seed runs a
campaign on `resources/synthetic/Database` given as an unlabelled folder (data.source: folder):
the campaign makes its own keyframes and feature cache with the workflow's rules, holds out the
fold's test videos as its audit (campaign.audit_videos = the fold's NPDI test list, so both
measure on the same held-out videos), and a scripted annotator answers every sent task with the
hidden true label (read from the simulation's keyframes.h5 by video and frame, never from the
folder). Twice per fold and seed: with the simulation's own validation and initial sets (same
draws: the campaign's machinery must then give the simulation's curve), and with the campaign's
own draws of the same sizes (as a team runs it: the difference is draw-to-draw noise). Writes
the curves (accuracy on the held-out videos against the labelled share of the pool, mean over
folds and seeds) in one figure, and a CSV of all at the report's key percentages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from alnsfw.campaign.core import Campaign  # noqa: E402
from alnsfw.campaign.data import prepare  # noqa: E402
from alnsfw.config import load_config  # noqa: E402


class TruthAnnotator:
    """A label source that answers every task it was sent with the true label, at once."""

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = truth
        self.tasks: dict[int, dict] = {}
        self.next_id = 1

    def push(self, tasks: list[dict], round_no: int) -> dict[int, int]:
        ids = {}
        for task in tasks:
            tid = self.next_id
            self.next_id += 1
            row = int(task["data"]["alnsfw_row"])
            label = "porn" if self.truth[row] == 1 else "non_porn"
            result = [
                {
                    "from_name": "label",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [label]},
                }
            ]
            ann = {"id": tid, "completed_by": 1, "result": result, "updated_at": str(tid)}
            self.tasks[tid] = {"id": tid, "data": task["data"], "annotations": [ann]}
            ids[row] = tid
        return ids

    def pull(self) -> tuple[list[dict], bool]:
        return list(self.tasks.values()), True

    def sent_rows(self) -> set[int]:
        return {int(t["data"]["alnsfw_row"]) for t in self.tasks.values()}


def keyframe_keys(keyframes: str) -> list[tuple[str, int]]:
    """(video file stem, frame index) of every row: the same keyframe in two keyframes files."""
    with h5py.File(keyframes, "r") as h5:
        pairs = zip(h5["source"].asstr()[:], h5["video_frame"][:], strict=True)
        return [(Path(s).stem, int(f)) for s, f in pairs]


def truth_for(campaign_kf: str, sim_kf: str) -> np.ndarray:
    """The true label of each campaign row: the simulation's keyframe of the same video file
    (stem) and frame index."""
    with h5py.File(sim_kf, "r") as h5:
        labels = h5["label"][:]
    sim = {key: int(lab) for key, lab in zip(keyframe_keys(sim_kf), labels, strict=True)}
    return np.asarray([sim[key] for key in keyframe_keys(campaign_kf)], dtype=np.int64)


def run_one(
    sim: Path, fold: int, seed: int, work: Path, keyframes: str | None, same_draws: bool
) -> tuple[pd.DataFrame, str]:
    split = json.loads((sim / f"results/splits/fold{fold}/seed{seed}.json").read_text())
    n_pool, n_val = len(split["pool"]), len(split["val"])
    sim_cfg = load_config([], [], base=sim / "config.yaml")
    initial = int(round(sim_cfg["al"]["initial_fraction"] * n_pool))
    name = f"fold{fold}-seed{seed}-{'same' if same_draws else 'own'}"
    overrides = {
        "data": {"source": "folder", "root": str(sim / "resources/synthetic/Database")},
        "campaign": {
            "dir": str(work / name),
            "image_dir": str(work / name / "images"),
            "seed": seed,
            "strategy": "least_confidence",
            "audit_videos": str(sim / f"resources/synthetic/test/fold{fold}_video.txt"),
            "val_size": n_val,
            "initial_size": initial,
            "labelstudio": {"url": None},
        },
    }
    path = work / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    import yaml

    path.write_text(yaml.safe_dump(overrides))
    config = load_config([path], [], base=sim / "config.yaml")
    if keyframes is None:
        keyframes = prepare(config).keyframes
    sim_kf = str(sim / "results/keyframes/keyframes.h5")
    truth = truth_for(keyframes, sim_kf)
    client = TruthAnnotator(truth)
    campaign = Campaign(config, keyframes, client)
    if same_draws:
        rows = row_map(keyframes, sim_kf)
        initial_rows = [rows[r] for r in initial_of(sim, fold, seed, split)]
        campaign.start(
            initial_rows=lambda pool: initial_rows,
            val_rows=lambda rest: [rows[r] for r in split["val"]],
        )
    else:
        campaign.start()
    out = []
    for _ in range(100):
        report = campaign.round()  # one process, as `alnsfw campaign serve` runs rounds
        out.append(
            {
                "fold": fold,
                "seed": seed,
                "draws": "simulation's" if same_draws else "campaign's own",
                "round": report.round,
                "pct_labelled": 100.0 * report.n_labelled / report.n_pool,
                "accuracy": report.audit_accuracy,
                "n_audit": report.audit_labelled,
                **{f"{k} s": v for k, v in report.seconds.items()},
            }
        )
        print(f"{name} round {report.round}: {out[-1]}", flush=True)
        if report.message.startswith("the whole pool is labelled"):
            break
    return pd.DataFrame(out), keyframes


def row_map(campaign_kf: str, sim_kf: str) -> dict[int, int]:
    """Simulation row -> campaign row of the same video file (stem) and frame."""
    mine = {key: i for i, key in enumerate(keyframe_keys(campaign_kf))}
    return {i: mine[key] for i, key in enumerate(keyframe_keys(sim_kf))}


def initial_of(sim: Path, fold: int, seed: int, split: dict) -> list[int]:
    """The simulation's initial labelled rows of this run: its queries.csv's cycle-0 rows are
    the first query; the initial set is what cycle 0 trained on, re-drawn as the loop does."""
    from alnsfw.al.pool import initial_labelled_mask
    from alnsfw.al.seeding import RunSeeds

    with h5py.File(sim / "results/keyframes/keyframes.h5", "r") as h5:
        labels = h5["label"][:].astype(np.int64)
    pool = np.asarray(split["pool"], dtype=np.int64)
    cfg = load_config([], [], base=sim / "config.yaml")
    rng = np.random.default_rng(RunSeeds.for_run(seed, fold, "least_confidence").initial)
    mask = initial_labelled_mask(labels[pool], cfg["al"]["initial_fraction"], rng)
    return pool[mask].tolist()


def at_keys(frame: pd.DataFrame, keys: list[float]) -> np.ndarray:
    return np.interp(keys, frame["pct_labelled"], frame["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", default=".", help="checkout where the simulation ran")
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", default="results/campaign-vs-simulation")
    parser.add_argument("--out", default="docs/img/campaign-vs-simulation.png")
    args = parser.parse_args()
    sim = Path(args.sim).resolve()
    work = Path(args.work).resolve()
    keys = [20, 30, 40, 50, 60, 70, 80, 90, 100]
    keyframes = None
    lines, rounds = [], []
    for fold in args.folds:
        for seed in args.seeds:
            cyc = pd.read_csv(
                sim / f"results/runs/fold{fold}/seed{seed}/least_confidence/cycles.csv"
            )
            lines.append(("simulation", fold, seed, at_keys(cyc, keys)))
            for same in (True, False):
                camp, keyframes = run_one(sim, fold, seed, work, keyframes, same)
                label = "campaign, simulation's draws" if same else "campaign, own draws"
                lines.append((label, fold, seed, at_keys(camp, keys)))
                rounds.append(camp)
    table = pd.DataFrame(
        [
            {"source": src, "fold": f, "seed": s, **{f"{k}%": 100 * v for k, v in zip(keys, vals)}}
            for src, f, s, vals in lines
        ]
    )
    cols = [f"{k}%" for k in keys]
    mean = table.groupby("source")[cols].mean()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False)
    pd.concat(rounds).to_csv(out.with_name(out.stem + "-rounds.csv"), index=False)
    print(mean.round(2).to_string())
    for src in mean.index.drop("simulation"):
        diff = (mean.loc[src] - mean.loc["simulation"]).abs()
        print(
            f"{src}: largest |mean - simulation's mean| {diff.max():.2f} points at {diff.idxmax()}"
        )
    secs = pd.concat(rounds)["round s"]
    print(f"round seconds (one process): median {secs.median():.1f}, worst {secs.max():.1f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    styles = {
        "simulation": "-o",
        "campaign, simulation's draws": "--s",
        "campaign, own draws": ":^",
    }
    for src, style in styles.items():
        if src in mean.index:
            ax.plot(keys, mean.loc[src].to_numpy(), style, label=f"{src} (least confidence)")
    ax.set_xlabel("labelled share of the pool (%)")
    ax.set_ylabel("accuracy on the held-out test videos (%)")
    ax.set_title(
        f"Campaign vs simulation, demo data: mean of {len(args.folds)} folds x "
        f"{len(args.seeds)} seeds",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    print(f"wrote {out} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
