"""Rule extract_keyframes: one video's keyframes (extracted or shipped) into its shard.

Kept apart from alnsfw.data.stages (which re-exports it) so that a keyframe job, one per video,
imports OpenCV, PySceneDetect, h5py and NumPy but not pandas (see alnsfw.data.shards).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alnsfw.data.keyframes import (
    KeyframeSettings,
    extract_from_video,
    is_truncated,
    load_shipped,
)
from alnsfw.data.shards import write_shard

log = logging.getLogger(__name__)


def extract_keyframes(
    video: str,
    video_class: str,
    source: str,
    inputs: Sequence[str],
    out: str | Path,
    keyframes: Mapping[str, Any],
    on_truncated: str = "error",
) -> int:
    """Write one video's shard from its file (`source` video) or shipped images (`frames`)."""
    settings = KeyframeSettings.from_config({"keyframes": keyframes})
    if source == "frames":
        frames = load_shipped(inputs, settings.size, settings.resize)
    else:
        frames = extract_from_video(inputs[0], settings, on_truncated)
    attrs = {"resize": settings.resize, "source_kind": source}
    if source != "frames":
        attrs |= {
            "method": settings.method,
            "position": settings.position,
            "decoded_frames": frames.decoded_frames,
            "expected_frames": frames.expected_frames,
            "truncated": is_truncated(frames.decoded_frames, frames.expected_frames),
        }
    write_shard(out, frames, video, video_class, attrs)
    log.info("%s (%s): %d keyframes from %s", video, video_class, len(frames.frame), source)
    return len(frames.frame)


def extract_group(
    videos: Sequence[Mapping[str, Any]],
    outs: Sequence[str | Path],
    keyframes: Mapping[str, Any],
    on_truncated: str = "error",
) -> int:
    """Several videos' shards in one process, one after another (compute.keyframe_jobs).

    Why: a one-video job costs about 0.2 s of Python start, imports and Snakemake bookkeeping
    against 0.05 s of work on the demo's videos; the shards are the same files either way.
    `videos`: per video its `video`, `video_class`, `source` and `inputs`, as extract_keyframes
    takes them; `outs` the shard of each, in the same order. Returns the keyframes written.
    """
    if len(videos) != len(outs):
        raise ValueError(f"extract_group: {len(videos)} videos but {len(outs)} shard paths")
    total = 0
    for video, out in zip(videos, outs):
        total += extract_keyframes(
            video=video["video"],
            video_class=video["video_class"],
            source=video["source"],
            inputs=list(video["inputs"]),
            out=out,
            keyframes=keyframes,
            on_truncated=on_truncated,
        )
    return total
