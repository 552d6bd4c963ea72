"""Demo material for docs/campaign.md: a folder of unlabelled videos, and scripted annotators.

python tools/campaign_demo.py folder resources/campaign-demo
    writes resources/campaign-demo/videos/ (nested folders, names with spaces) from the
    synthetic generator, and resources/campaign-demo/truth.csv (video, frame, label) beside
    it, outside the folder the campaign reads. The labels exist only to script annotators.
python tools/campaign_demo.py annotate --url http://127.0.0.1:8080 --truth ... --keyframes ...
    two people label the open tasks through Label Studio's HTTP API: annotator 1 with the
    truth, annotator 2 every third task, wrong on every fourth of those; one task skipped.
    Token from ALNSFW_LS_TOKEN; annotator 2 is the user ann2@example.com (made on first use).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

# Where the synthetic videos go in the demo folder: subfolders and names a team would have
# (a space in a name; nothing in a path tells the class).
LAYOUT = "uploads/2026-{month}/clip {n}.avi"


def make_folder(out: Path, videos: dict[str, int], seed: int = 3) -> None:
    """Synthetic videos copied to `out`/videos under neutral names; truth.csv beside them."""
    from alnsfw.data.layout import folder_video_name
    from alnsfw.data.synthetic import synthesize_dataset

    cfg = {
        "seed": seed,
        "videos": videos,
        "shots_per_video": [3, 5],
        "frames_per_shot": 4,
        "frame_size": [160, 120],
        "fps": 4,
        "porn_shot_flip": 0.15,
        "nonporn_shot_flip": 0.05,
    }
    with tempfile.TemporaryDirectory() as tmp:
        synthesize_dataset(tmp, cfg, n_folds=2)
        labels = pd.read_csv(Path(tmp) / "frame_labels.csv", dtype={"video": str})
        names = {}
        for i, path in enumerate(sorted(Path(tmp, "Database").rglob("*.avi"))):
            rel = Path(LAYOUT.format(month=11 + i % 2, n=i + 1))
            dest = out / "videos" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            names[path.stem] = folder_video_name(rel)
    labels["video"] = labels["video"].map(names)
    labels.to_csv(out / "truth.csv", index=False)
    print(f"wrote {len(names)} videos under {out / 'videos'} and {out / 'truth.csv'}")


def truth_by_row(keyframes: str, truth_csv: str) -> np.ndarray:
    """The true label of every keyframe row, from truth.csv (video, frame)."""
    with h5py.File(keyframes, "r") as h5:
        video = h5["video"].asstr()[:]
        frame = h5["frame"][:]
    table = pd.read_csv(truth_csv, dtype={"video": str}).set_index(["video", "frame"])["label"]
    return np.asarray([int(table.loc[(v, int(f))]) for v, f in zip(video, frame)], dtype=np.int64)


def second_annotator(url: str, token: str) -> int:
    """The user id of annotator 2 (ann2@example.com), created on first use."""
    import requests

    auth = {"Authorization": f"Token {token}"}
    users = requests.get(f"{url}/api/users/", headers=auth, timeout=30)
    users.raise_for_status()
    for user in users.json():
        if user.get("email") == "ann2@example.com":
            return int(user["id"])
    made = requests.post(
        f"{url}/api/users/",
        json={"username": "ann2", "email": "ann2@example.com", "password": os.urandom(9).hex()},
        headers=auth,
        timeout=30,
    )
    made.raise_for_status()
    return int(made.json()["id"])


def annotate(url: str, keyframes: str, truth_csv: str, project: int, skip: bool = True) -> None:
    """Two annotators label the open tasks through the HTTP API (what the UI posts): annotator 1
    (the token's user) every task with the truth, annotator 2 (ann2@example.com, its
    annotations posted with completed_by) every third task, wrong on every fourth of those,
    and annotator 1 skips the first open query task."""
    import requests

    truth = truth_by_row(keyframes, truth_csv)
    token = os.environ["ALNSFW_LS_TOKEN"]
    auth = {"Authorization": f"Token {token}"}
    second = second_annotator(url, token)
    export = requests.get(
        f"{url}/api/projects/{project}/export",
        params={"exportType": "JSON", "download_all_tasks": "true"},
        headers=auth,
        timeout=30,
    )
    export.raise_for_status()
    done = {1: 0, 2: 0}
    skipped = False
    open_tasks = [t for t in sorted(export.json(), key=lambda t: t["id"]) if not t["annotations"]]
    for k, task in enumerate(open_tasks):
        row = task["data"]["alnsfw_row"]
        skipped_here = False
        for who in (1, 2):
            if who == 2 and (k % 3 or skipped_here):
                continue
            wrong = who == 2 and (k // 3) % 4 == 1
            label = 1 - int(truth[row]) if wrong else int(truth[row])
            body = {
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": ["porn" if label else "non_porn"]},
                    }
                ],
                "lead_time": 2.0,
            }
            if who == 2:
                body["completed_by"] = second
            elif skip and not skipped and task["data"].get("purpose") == "query":
                body, skipped, skipped_here = {"result": [], "was_cancelled": True}, True, True
            r = requests.post(
                f"{url}/api/tasks/{task['id']}/annotations/", json=body, headers=auth, timeout=30
            )
            r.raise_for_status()
            done[who] += 1
    print(f"annotator 1: {done[1]} task(s), annotator 2: {done[2]} task(s), one skipped: {skipped}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("folder")
    f.add_argument("out")
    f.add_argument("--porn", type=int, default=8)
    f.add_argument("--nonporn", type=int, default=8)
    a = sub.add_parser("annotate")
    a.add_argument("--url", default="http://127.0.0.1:8080")
    a.add_argument(
        "--keyframes",
        default="results/campaign/work/results/keyframes/keyframes.h5",
        help="the campaign's keyframes (alnsfw campaign start makes them in <campaign.dir>/work)",
    )
    a.add_argument("--truth", default="resources/campaign-demo/truth.csv")
    a.add_argument(
        "--campaign", default="results/campaign", help="campaign.dir (for the project id)"
    )
    a.add_argument("--no-skip", action="store_true")
    args = parser.parse_args()
    if args.cmd == "folder":
        half = args.nonporn // 2
        videos = {
            "vPorn": args.porn,
            "vNonPornEasy": half,
            "vNonPornDifficulty": args.nonporn - half,
        }
        make_folder(Path(args.out), videos)
    else:
        import json

        project = json.loads(Path(args.campaign, "campaign.json").read_text())["project_id"]
        annotate(args.url, args.keyframes, args.truth, int(project), not args.no_skip)


if __name__ == "__main__":
    main()
