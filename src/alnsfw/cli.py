"""The `alnsfw` command (console script in pyproject.toml). Subcommand: `predict`.

    alnsfw predict --model results/models/fold0/seed0/full.keras --out preds/ clip.mp4 photos/

Exit status: 0 when every input was scored, 1 when some input was skipped (named on stderr; the
others are still scored and written), 2 for a usage error (bad option, missing model).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alnsfw.predict.video import AGGREGATIONS


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
    p.add_argument("--model", required=True, help="MODEL.keras (its MODEL.json must be beside it)")
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image, video or folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    from alnsfw.predict.run import load_bundle, parse_sampling, predict

    try:
        parse_sampling(args.frames)
        if args.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        bundle = load_bundle(args.model)
    except (ValueError, OSError) as err:
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
    )
    print(result.summary(bundle))
    print(
        f"wrote {args.out}/frames.csv ({len(result.frames)} rows), "
        f"{args.out}/videos.csv ({len(result.videos)} rows)"
    )
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
