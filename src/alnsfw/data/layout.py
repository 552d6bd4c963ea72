"""The NPDI folder layout: classes, video names, and the list of videos known before any job runs.

Snakemake needs one `extract_keyframes` job per video at parse time, so the list of videos must be
computable without running anything: from the config alone for the synthetic set (its generator is
deterministic, names included), from a scan of `data.root` for a real NPDI copy.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alnsfw.data.errors import DataError

# Class folders of NPDI, in the order tables list them. Easy and difficult share the name prefix
# `vNonPorn`, so only the folder tells them apart.
CLASSES: tuple[str, ...] = ("vPorn", "vNonPornEasy", "vNonPornDifficulty")
CLASS_PREFIX: dict[str, str] = {
    "vPorn": "vPorn",
    "vNonPornEasy": "vNonPorn",
    "vNonPornDifficulty": "vNonPorn",
}
SYNTHETIC_EXTENSION = "avi"
# data.source: folder (a plain folder of unlabelled videos, for a labelling campaign): every video
# gets this class and the label -1 (unknown) until people label its keyframes (alnsfw.campaign).
UNLABELLED = "unlabelled"
FRAME_EXTENSIONS: tuple[str, ...] = ("jpg", "jpeg", "png", "bmp")
_FRAME_NAME = re.compile(r"^(?P<video>.+)#(?P<n>\d+)$")
# A video name becomes a job wildcard and a file name (results/keyframes/shards/<video>.h5), so it
# must match the `video` wildcard constraint of workflow/rules/common.smk.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# The schema's default data.video_extensions: fold-list entries that end in one are matched
# without it (`vPorn10.mp4` is video vPorn10).
VIDEO_EXTENSIONS: tuple[str, ...] = (
    "avi", "mp4", "mpg", "mpeg", "flv", "wmv", "mov", "mkv", "webm", "3gp", "rm", "rmvb", "asf",
    "m4v",
)  # fmt: skip


def safe_name(name: str) -> str:
    """A suggested rename: accents dropped, every other unsafe character replaced by `_`."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", ascii_name) or "video"


def check_names(files: dict[str, Path]) -> None:
    """Stop, before any job, on video names that cannot be job or file names; say what to rename."""
    bad = sorted((name, path) for name, path in files.items() if not SAFE_NAME.match(name))
    if not bad:
        return
    examples = "; ".join(
        f"'{path}' -> '{path.name.replace(name, safe_name(name), 1)}'" for name, path in bad[:5]
    )
    raise DataError(
        f"{len(bad)} video name(s) have spaces, non-ASCII letters or other characters that "
        "cannot name a job or a result file (allowed: A-Z a-z 0-9 _ - .). Rename the file(s) "
        f"(and their keyframes and fold-list entries) before running: {examples}"
        + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        + "."
    )


def class_label(video_class: str) -> int:
    """1 for the porn class, 0 for both non-porn classes (the paper's binary task), -1 for the
    videos of a plain folder (data.source: folder), whose labels nobody knows yet."""
    if video_class == UNLABELLED:
        return -1
    return int(video_class == "vPorn")


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that puts vPorn2 before vPorn10 (names are not zero-padded)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


@dataclass(frozen=True)
class VideoRecord:
    """One video of the dataset and the files its keyframes come from.

    `inputs` is the video file, or the shipped keyframe images when the dataset has them; it is
    what the video's `extract_keyframes` job depends on, so touching it reruns only that job.
    """

    name: str
    video_class: str
    source: str  # "video" (extract from the file) | "frames" (shipped Frames/ images)
    inputs: tuple[str, ...]

    @property
    def label(self) -> int:
        """The video-level label (1 porn, 0 non-porn)."""
        return class_label(self.video_class)


def synthetic_names(videos: Mapping[str, int]) -> list[tuple[str, str]]:
    """(name, class) of the synthetic videos: vPorn1..N, then vNonPorn1..E easy, E+1..E+D difficult.

    Non-porn numbers run on across easy and difficult, as in NPDI, so a name is unique.
    """
    out = [(f"vPorn{i}", "vPorn") for i in range(1, videos["vPorn"] + 1)]
    n_easy = videos["vNonPornEasy"]
    out += [(f"vNonPorn{i}", "vNonPornEasy") for i in range(1, n_easy + 1)]
    out += [
        (f"vNonPorn{n_easy + i}", "vNonPornDifficulty")
        for i in range(1, videos["vNonPornDifficulty"] + 1)
    ]
    return out


def find_video(videos: Iterable[VideoRecord], name: str) -> VideoRecord:
    """The planned video called `name`; asking for any other is a clear error."""
    for video in videos:
        if video.name == name:
            return video
    raise DataError(
        f"No video '{name}' in the dataset: ask only for the shards of planned videos "
        "(results/keyframes/shards/<video>.h5 for a video under data.root)."
    )


def video_groups(videos: Sequence[VideoRecord], n: int) -> dict[int, list[VideoRecord]]:
    """The videos split into at most `n` groups, one keyframe job each (compute.keyframe_jobs).

    Why by a checksum of the name (CRC-32 modulo n) and not by position: a video added to or
    removed from the dataset changes only its own group, so only that group's job reruns.
    Empty groups are left out; each group keeps the videos' own order.
    """
    if n < 1:
        raise ValueError(f"compute.keyframe_jobs must be at least 1 to group videos, got {n}")
    groups: dict[int, list[VideoRecord]] = {}
    for video in videos:
        groups.setdefault(zlib.crc32(video.name.encode("utf-8")) % n, []).append(video)
    return dict(sorted(groups.items()))


def synthetic_video_path(root: str | Path, name: str, video_class: str) -> Path:
    """Where the generator writes a synthetic video."""
    return Path(root) / "Database" / video_class / f"{name}.{SYNTHETIC_EXTENSION}"


def planned_videos(config: Mapping[str, Any]) -> list[VideoRecord]:
    """All videos of the configured dataset, in natural name order, before any job has run."""
    data = config["data"]
    root = Path(data["root"])
    if data["source"] == "synthetic":
        records = [
            VideoRecord(name, cls, "video", (str(synthetic_video_path(root, name, cls)),))
            for name, cls in synthetic_names(config["synthetic"]["videos"])
        ]
    elif data["source"] == "folder":
        records = scan_folder(root, data.get("video_extensions", ["avi", "mp4"]))
    else:
        records = scan_npdi(root, data.get("video_extensions", ["avi", "mp4"]))
    return sorted(records, key=lambda r: natural_key(r.name))


def folder_video_name(relative: Path) -> str:
    """The job/file name of a video at `relative` (path under data.root, any characters):
    folders joined by `__`, then made safe (`safe_name`), extension dropped."""
    parts = [*relative.parent.parts, relative.stem]
    return "__".join(safe_name(part) for part in parts)


def scan_folder(root: str | Path, extensions: Iterable[str]) -> list[VideoRecord]:
    """Every video file under `root` (subfolders too, any names, no labels, no fold lists).

    Names come from the relative path (`folder_video_name`), so `a/clip 1.mp4` is `a__clip_1`;
    two files that map to one name are an error naming both, and so is a folder without videos.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root '{root}' is not a folder (data.source: folder)")
    exts = {e.lower().lstrip(".") for e in extensions}
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lower().lstrip(".") not in exts:
            continue
        name = folder_video_name(path.relative_to(root))
        if name in found:
            raise DataError(
                f"Videos '{found[name]}' and '{path}' both become the name '{name}' (folders "
                "joined by __, unsafe characters replaced by _): rename one of them."
            )
        found[name] = path
    if not found:
        raise DataError(
            f"No videos under '{root}' (data.source: folder; extensions "
            f"{', '.join(sorted(exts))}). Check data.root and data.video_extensions."
        )
    return [VideoRecord(name, UNLABELLED, "video", (str(path),)) for name, path in found.items()]


def _scan_videos(root: Path, extensions: Iterable[str]) -> dict[str, tuple[str, Path]]:
    """name -> (class, file) of Database/<class>/<name>.<ext>; duplicate names are an error."""
    exts = {e.lower().lstrip(".") for e in extensions}
    found: dict[str, tuple[str, Path]] = {}
    for cls in CLASSES:
        folder = root / "Database" / cls
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix.lower().lstrip(".") not in exts:
                continue
            name = path.stem
            if name in found:
                other_cls, other = found[name]
                raise DataError(
                    f"Video name '{name}' occurs twice: '{other}' and '{path}'. Names must be "
                    "unique across classes (fold lists name videos without their class); "
                    "remove or rename one of the two files."
                )
            found[name] = (cls, path)
    return found


def _scan_frames(root: Path) -> dict[str, tuple[str, list[tuple[int, Path]]]]:
    """name -> (class, [(n, image)]) of Frames/<class>/<name>#<n>.<ext>, sorted by n."""
    found: dict[str, tuple[str, list[tuple[int, Path]]]] = {}
    for cls in CLASSES:
        folder = root / "Frames" / cls
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            match = _FRAME_NAME.match(path.stem)
            if not match or path.suffix.lower().lstrip(".") not in FRAME_EXTENSIONS:
                continue
            name = match["video"]
            prev = found.setdefault(name, (cls, []))
            if prev[0] != cls:
                raise DataError(
                    f"Keyframes of video '{name}' are in two class folders: "
                    f"'{root / 'Frames' / prev[0]}' and '{folder}'. Keep them in one."
                )
            prev[1].append((int(match["n"]), path))
    for _, frames in found.values():
        frames.sort()
    return found


def scan_npdi(root: str | Path, extensions: Iterable[str]) -> list[VideoRecord]:
    """The videos of a real NPDI copy: shipped keyframes where present, else the video file.

    Videos without frames and frames without videos both occur in public copies; both are kept
    (the ingestion report counts them by `source`), and a class conflict between the two is an
    error because the label would be ambiguous.
    """
    root = Path(root)
    videos = _scan_videos(root, extensions)
    frames = _scan_frames(root)
    check_names(
        {n: p for n, (_, p) in videos.items()} | {n: f[0][1] for n, (_, f) in frames.items()}
    )
    records = []
    for name in sorted(set(videos) | set(frames), key=natural_key):
        if name in frames:
            cls, images = frames[name]
            if name in videos and videos[name][0] != cls:
                raise DataError(
                    f"Video '{name}' is in Database/{videos[name][0]} but its keyframes are in "
                    f"Frames/{cls}: the class is ambiguous. Move one of them."
                )
            records.append(VideoRecord(name, cls, "frames", tuple(str(p) for _, p in images)))
        else:
            cls, path = videos[name]
            records.append(VideoRecord(name, cls, "video", (str(path),)))
    if not records:
        raise DataError(
            f"No videos found under '{root / 'Database'}' (folders {', '.join(CLASSES)}) nor "
            f"keyframes under '{root / 'Frames'}'. Check data.root and data.video_extensions."
        )
    return records


def fold_others(fold: int, n_folds: int) -> str:
    """The `{others}` part of a training list name: the other fold numbers, ascending, joined."""
    return "".join(str(i) for i in range(n_folds) if i != fold)


def fold_list_paths(
    root: str | Path, test_pattern: str, train_pattern: str, n_folds: int
) -> dict[int, tuple[Path, Path]]:
    """fold -> (test list, training list) paths, from the configured name patterns."""
    root = Path(root)
    return {
        fold: (
            root / test_pattern.format(fold=fold, others=fold_others(fold, n_folds)),
            root / train_pattern.format(fold=fold, others=fold_others(fold, n_folds)),
        )
        for fold in range(n_folds)
    }


def config_fold_list_paths(config: Mapping[str, Any]) -> dict[int, tuple[Path, Path]]:
    """fold_list_paths from a validated config."""
    data = config["data"]
    return fold_list_paths(
        data["root"], data["test_list"], data["train_list"], config["splits"]["n_folds"]
    )


def frame_labels_path(config: Mapping[str, Any]) -> Path | None:
    """The per-frame label file to apply, or None (data.frame_labels: auto | none | path).

    `auto` means `<root>/frame_labels.csv`: always for the synthetic set (its generator writes
    it), and for NPDI only if that file exists.
    """
    data = config["data"]
    setting = data["frame_labels"]
    if setting == "none":
        return None
    if setting != "auto":
        return Path(setting)
    default = Path(data["root"]) / "frame_labels.csv"
    if data["source"] == "synthetic" or default.is_file():
        return default
    return None
