"""The `alnsfw` command (console script in pyproject.toml). Subcommands: `predict`, `serve`,
`campaign`.

    alnsfw predict --model results/models/fold0/seed0/full.onnx --out preds/ clip.mp4 photos/
    alnsfw serve --model results/models/fold0/seed0/full.onnx --port 8000
    alnsfw campaign start|round|status|export --config presets/campaign-demo.yaml

campaign: a labelling campaign with people (docs/campaign.md); exit status 0 on success, 1 when
the round could not run (server down, token refused, bad labels: the message says what to do;
nothing was changed), 2 for a usage error.

Exit status: 0 when every input was scored, 1 when some input was skipped (named on stderr; the
others are still scored and written), 2 for a usage error (bad option, missing model).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alnsfw.video_eval import AGGREGATIONS


def _version() -> str:
    """The installed distribution's version (pyproject.toml), the one CITATION.cff cites."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alnsfw")
    except PackageNotFoundError:  # a checkout on sys.path, not installed
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alnsfw", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "predict",
        help="score images, folders and videos with an exported model",
        description=(
            "Score images, folders (recursively) and videos with a model exported by rule "
            "export_model. Writes OUT/frames.csv (one line per image or scored video frame) and "
            "OUT/videos.csv (one verdict per video), and prints a summary."
        ),
    )
    p.add_argument(
        "--model",
        required=True,
        help="MODEL.onnx (ONNX Runtime, the light install) or MODEL.keras (TensorFlow); "
        "its MODEL.json must be beside it",
    )
    p.add_argument(
        "--out", default="alnsfw-predictions", help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--frames",
        default="keyframes",
        help="video frames to score: keyframes (one per shot, as the workflow; default), "
        "every:K (every K-th frame) or fps:N (N frames per second)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    p.add_argument(
        "--aggregation",
        choices=AGGREGATIONS,
        help="video score from frame scores (default: the model JSON's, chosen on validation)",
    )
    p.add_argument("--threshold", type=float, help="porn when video score >= this (default: JSON)")
    p.add_argument("--top-k", type=int, help="frames averaged by topk_mean (default: JSON)")
    p.add_argument(
        "--operating-point",
        metavar="TARGET",
        help="frame and video thresholds for a target, from the model's validation curves: "
        "recall=R, fpr=F, accuracy, or threshold=T (default: the JSON's operating point)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image, video or folder")
    s = sub.add_parser(
        "serve",
        help="serve a model over HTTP (POST /predict, GET /health)",
        description="Serve an exported model over HTTP: POST an image or video to /predict "
        "(raw body or multipart field 'file'), GET /health. See docs/deploy.md.",
    )
    s.add_argument("--model", required=True, help="MODEL.onnx or MODEL.keras, JSON beside it")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    s.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    s.add_argument(
        "--max-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="largest upload accepted; larger gets 413 (default: %(default)s)",
    )
    s.add_argument("--frames", default="keyframes", help="video frames to score (as predict)")
    s.add_argument(
        "--early-exit",
        action="store_true",
        help="stop scoring a video once its verdict cannot change (per request: ?early_exit=1)",
    )
    s.add_argument("--operating-point", metavar="TARGET", help="as predict")
    s.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    _campaign_parser(sub)
    return parser


def _campaign_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "campaign",
        help="active learning with people labelling in Label Studio (docs/campaign.md)",
        description="A labelling campaign on a folder of unlabelled videos (data.source: folder).",
    )
    csub = c.add_subparsers(dest="action", required=True)
    helps = {
        "start": "draw the audit, validation and initial sets and send them for labelling",
        "round": "pull labels, train, evaluate on the audit set, send the next batch",
        "status": "where the campaign stands (from its own files: no pull, no training)",
        "export": "the current model as .keras + JSON for alnsfw predict",
        "serve": "a model server Label Studio connects to: rounds start by themselves",
        "up": "from a folder of videos to tasks in Label Studio: keyframes, cache, start, serve",
    }
    for name, text in helps.items():
        a = csub.add_parser(name, help=text, description=text)
        a.add_argument(
            "--configfile",
            action="append",
            default=[],
            metavar="YAML",
            help="config file(s) over config.yaml, later ones win (as snakemake --configfile)",
        )
        a.add_argument(
            "--config",
            action="append",
            default=[],
            metavar="KEY=VALUE or YAML",
            help="KEY=VALUE overrides as snakemake --config (e.g. campaign='{seed: 1}'); a "
            "YAML file path is taken as --configfile",
        )
        a.add_argument(
            "--keyframes",
            default=None,
            help="keyframes.h5 of data.root's videos, checked to be of that folder (default: "
            "the campaign makes them with the workflow's rules in <campaign.dir>/work)",
        )
        if name in ("start", "up"):
            a.add_argument("--cores", type=int, default=2, help="cores for the keyframe jobs")
        if name == "up":
            a.add_argument(
                "--folder",
                help="the folder of videos (sets data.source: folder and data.root); "
                "Label Studio at campaign.labelstudio.url, default http://127.0.0.1:8080",
            )
        if name == "round":
            a.add_argument(
                "--labels",
                metavar="EXPORT.json",
                help="file route: Label Studio's JSON export (Export -> JSON), taken as is",
            )
        if name == "export":
            a.add_argument("--out", default="results/campaign/model", help="output folder")


def _campaign(args: argparse.Namespace) -> int:
    import json

    from alnsfw.campaign.run import run_campaign_command
    from alnsfw.config import load_config

    files = list(args.configfile) + [c for c in args.config if "=" not in c]
    overrides = [c for c in args.config if "=" in c]
    if args.action == "up" and args.folder:
        overrides.insert(0, f"data={{source: folder, root: {json.dumps(args.folder)}}}")

    try:
        config = load_config(files, overrides)
    except (ValueError, OSError) as err:
        print(f"alnsfw campaign: {err}", file=sys.stderr)
        return 2
    ls = config["campaign"]["labelstudio"]
    if args.action == "up" and not ls["url"]:  # the launcher's server (make labelstudio)
        ls["url"] = "http://127.0.0.1:8080"
    return run_campaign_command(args, config)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "campaign":
        return _campaign(args)
    if args.command == "serve":
        return _serve(args)
    from alnsfw.predict.operating import Target, pick
    from alnsfw.predict.run import load_bundle, parse_sampling, predict

    try:
        parse_sampling(args.frames)
        target = None if args.operating_point is None else Target.parse(args.operating_point)
        if args.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        bundle = load_bundle(args.model)
        if target is not None:
            pick(bundle.meta, target)  # a JSON without validation curves fails here, clearly
    except (ValueError, OSError, ImportError) as err:
        print(f"alnsfw predict: {err}", file=sys.stderr)
        return 2
    result = predict(
        bundle,
        args.inputs,
        out_dir=args.out,
        frames=args.frames,
        batch_size=args.batch_size,
        aggregation=args.aggregation,
        threshold=args.threshold,
        top_k=args.top_k,
        progress=False if args.no_progress else None,
        operating_point=args.operating_point,
    )
    print(result.summary(bundle))
    print(
        f"wrote {args.out}/frames.csv ({len(result.frames)} rows), "
        f"{args.out}/videos.csv ({len(result.videos)} rows)"
    )
    return 1 if result.errors else 0


def _serve(args: argparse.Namespace) -> int:
    try:
        from alnsfw.predict.operating import Target
        from alnsfw.predict.run import parse_sampling
        from alnsfw.predict.serve import serve
    except ImportError as err:
        print(
            f"alnsfw serve needs the predict extra ({err.name} is not installed): "
            "pip install -e '.[predict]'",
            file=sys.stderr,
        )
        return 2

    try:
        parse_sampling(args.frames)
        if args.operating_point is not None:
            Target.parse(args.operating_point)
        if args.max_bytes < 1:
            raise ValueError("--max-bytes must be at least 1")
    except ValueError as err:
        print(f"alnsfw serve: {err}", file=sys.stderr)
        return 2
    try:
        serve(
            args.model,
            host=args.host,
            port=args.port,
            max_bytes=args.max_bytes,
            frames=args.frames,
            early_exit=args.early_exit,
            operating_point=args.operating_point,
            threads=args.threads,
        )
    except (ValueError, OSError, ImportError) as err:
        print(f"alnsfw serve: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
