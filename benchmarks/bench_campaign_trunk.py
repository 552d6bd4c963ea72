"""Round time of a labelling campaign, scripted, on any trunk (docs/peers.md: model.trunk).

Runs `Campaign.start` and then rounds on the demo's own synthetic videos given as an unlabelled
folder, as tools/campaign_vs_simulation.py does (fold 0's test videos as the audit, the scripted
annotator answering every sent task with the true label read from the simulation's
keyframes.h5), and prints each round's report, whose `time:` line splits the round into model
load, pull, train, score and push. Two ways a campaign runs rounds:

* `alnsfw campaign round` (one process per round): a fresh Campaign each round, which rebuilds
  the network and loads its checkpoint (`model load`);
* `alnsfw campaign serve`: one Campaign for the whole session, the model kept in memory.

--rounds-cli rounds of the first kind, then --rounds-serve of the second. The campaign's own
keyframes and feature cache are made first (by the workflow's rules, in --work); that step is
timed apart and is not part of a round.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_campaign_trunk.py --sim /tmp/run \\
        --work /tmp/camp --config 'model={trunk: open_nsfw}' 'training={augment: none}'

--sim: a directory where the demo simulation ran (resources/synthetic/, results/keyframes/,
results/splits/fold0/seed0.json); --config: KEY=VALUE overrides over the repository's
config.yaml, as `snakemake --config` takes them (the simulation's own, to compare like with like).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import yaml

from alnsfw.campaign.core import Campaign
from alnsfw.campaign.data import prepare
from alnsfw.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _tool():  # noqa: ANN202 - a module
    """tools/campaign_vs_simulation.py (its scripted annotator and truth lookup)."""
    spec = importlib.util.spec_from_file_location(
        "campaign_vs_simulation", REPO / "tools" / "campaign_vs_simulation.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    """Start a campaign, run the rounds, print and write their times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim", required=True)
    parser.add_argument("--work", default="results/bench-campaign")
    parser.add_argument("--config", nargs="*", default=[], help="KEY=VALUE overrides")
    parser.add_argument("--rounds-cli", type=int, default=3)
    parser.add_argument("--rounds-serve", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--prepare-only", action="store_true", help="make the keyframes and caches, then stop"
    )
    args = parser.parse_args()
    sim, work = Path(args.sim).resolve(), Path(args.work).resolve()
    split = json.loads((sim / "results/splits/fold0/seed0.json").read_text())
    base = load_config([], args.config, base=REPO / "config.yaml")
    overrides = {
        "data": {"source": "folder", "root": str(sim / "resources/synthetic/Database")},
        "campaign": {
            "dir": str(work / "campaign"),
            "image_dir": str(work / "campaign/images"),
            "seed": 0,
            "strategy": "least_confidence",
            "audit_videos": str(sim / "resources/synthetic/test/fold0_video.txt"),
            "val_size": len(split["val"]),
            "initial_size": int(round(base["al"]["initial_fraction"] * len(split["pool"]))),
            "labelstudio": {"url": None},
        },
    }
    work.mkdir(parents=True, exist_ok=True)
    path = work / "campaign.yaml"
    path.write_text(yaml.safe_dump(overrides))
    config = load_config([path], args.config, base=REPO / "config.yaml")
    t0 = time.perf_counter()
    keyframes = prepare(config, cores=args.cores).keyframes
    prep = time.perf_counter() - t0
    print(f"keyframes and feature cache of the folder: {prep:.1f} s ({keyframes})", flush=True)
    if args.prepare_only:
        return
    tool = _tool()
    client = tool.TruthAnnotator(
        tool.truth_for(keyframes, str(sim / "results/keyframes/keyframes.h5"))
    )
    t0 = time.perf_counter()
    Campaign(config, keyframes, client).start()
    start = time.perf_counter() - t0
    rows = []
    served = None
    for k in range(args.rounds_cli + args.rounds_serve):
        mode = "cli" if k < args.rounds_cli else "serve"
        if mode == "cli":
            campaign = Campaign(config, keyframes, client)
        else:
            served = served or Campaign(config, keyframes, client)
            campaign = served
        report = campaign.round()
        print(f"--- round {report.round} ({mode})\n{report.text()}", flush=True)
        rows.append({"mode": mode, "round": report.round, **report.seconds})
    summary = {
        "trunk": config["model"].get("trunk", "resnet50v2"),
        "prepare_seconds": prep,
        "start_seconds": start,
        "rounds": rows,
        "median_round_seconds": {
            mode: statistics.median(r["round"] for r in rows if r["mode"] == mode)
            for mode in ("cli", "serve")
            if any(r["mode"] == mode for r in rows)
        },
    }
    (work / "round_times.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}, indent=1))


if __name__ == "__main__":
    main()
