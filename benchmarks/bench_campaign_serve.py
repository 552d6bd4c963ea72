"""The served campaign over time: round seconds, /predict latency and memory after N rounds.

    .venv/bin/python benchmarks/bench_campaign_serve.py --rounds 20 --out results/bench

The demo's campaign folder (`tools/campaign_demo.py folder`, made if missing) with the real
learner of config.yaml on its feature cache (made by `campaign start`, as a team's), served in
this process: a real HTTP server (uvicorn on 127.0.0.1) and a real client (httpx). A scripted
annotator answers each batch with the hidden true labels; the service's worker (woken by a
POST /webhook, as Label Studio does) runs every round by itself. Writes per round the round's
seconds and the process's resident memory, and the latency of /predict for one task (100 calls
after the last round), as CSV and Markdown.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tools"))


def rss_mb() -> float:
    """Resident memory now (VmRSS), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--query", type=int, default=4)
    parser.add_argument("--work", default="results/bench/campaign-serve")
    parser.add_argument("--out", default="results/bench")
    args = parser.parse_args()

    import httpx
    import uvicorn
    from campaign_demo import make_folder, truth_by_row
    from campaign_vs_simulation import TruthAnnotator

    from alnsfw.campaign.core import Campaign
    from alnsfw.campaign.data import prepare
    from alnsfw.campaign.mlbackend import create_app
    from alnsfw.campaign.service import CampaignService
    from alnsfw.config import load_config

    work = Path(args.work).resolve()
    folder = work / "demo"
    if not (folder / "truth.csv").is_file():
        make_folder(folder, {"vPorn": 30, "vNonPornEasy": 15, "vNonPornDifficulty": 15})
    config = load_config(
        [ROOT / "presets/campaign-demo.yaml"],
        [
            f"data={{root: {folder / 'videos'}}}",
            f"al={{query_size: {args.query}}}",
            f"campaign={{dir: {work / 'campaign'}, image_dir: {work / 'campaign/images'}, "
            "audit_size: 20, val_size: 10, initial_size: 12, "
            f"labelstudio: {{url: null, document_root: {work / 'campaign'}}}, "
            f"serve: {{retrain_every: {args.query}, reconcile_seconds: 30}}}}",
        ],
        base=ROOT / "config.yaml",
    )
    t0 = time.perf_counter()
    inputs = prepare(config)
    print(f"keyframes and feature cache: {time.perf_counter() - t0:.0f} s", flush=True)
    truth = truth_by_row(inputs.keyframes, str(folder / "truth.csv"))
    client = TruthAnnotator(truth)
    campaign = Campaign(config, None, client)
    if not (work / "campaign" / "campaign.json").is_file():
        campaign.start()
    campaign.warm()
    service = CampaignService.from_config(campaign)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service, "ls", "pw"), host="127.0.0.1", port=port, log_level="error"
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    service.start()
    lines = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("ls", "pw"), timeout=60) as http:
        for _ in range(args.rounds):
            before = service.stats.rounds
            http.post("/webhook", json={"action": "ANNOTATION_CREATED"})
            end = time.monotonic() + 300
            while service.stats.rounds == before and time.monotonic() < end:
                time.sleep(0.05)
            if service.stats.rounds == before:
                break  # the pool is labelled
            last = service.stats.round_log[-1]
            lines.append({"round": last["round"], "round_s": last["seconds"], "rss_mb": rss_mb()})
            print(lines[-1], flush=True)
        task = next(iter(client.tasks.values()))
        waits = []
        for _ in range(100):
            t = time.perf_counter()
            answer = http.post("/predict", json={"tasks": [task]})
            waits.append(time.perf_counter() - t)
            assert answer.status_code == 200 and len(answer.json()["results"]) == 1
    service.stop()
    server.should_exit = True
    table = pd.DataFrame(lines)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "campaign_serve.csv", index=False)
    summary = (
        f"{len(lines)} rounds by the worker: round median {table['round_s'].median():.2f} s, "
        f"worst {table['round_s'].max():.2f} s; resident memory after round 1 "
        f"{table['rss_mb'].iloc[0]:.0f} MB, after round {len(lines)} "
        f"{table['rss_mb'].iloc[-1]:.0f} MB; /predict of one task: median "
        f"{1000 * statistics.median(waits):.1f} ms, worst {1000 * max(waits):.1f} ms (100 calls)"
    )
    (out / "campaign_serve.md").write_text(
        table.round(2).to_markdown(index=False) + "\n\n" + summary + "\n"
    )
    print(summary)


if __name__ == "__main__":
    main()
