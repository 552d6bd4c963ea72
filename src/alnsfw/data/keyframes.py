"""Keyframes: one image per shot, either extracted from a video or taken from shipped images.

NPDI's own keyframes are one per shot, so the extractor does the same. The default method,
`adaptive`, is built for real footage (docs/data.md has its evaluation on real clips): one decoding
pass feeds PySceneDetect's AdaptiveDetector (content score of a frame against its neighbours',
so steady camera motion does not fire), adds colour-histogram cuts (texture motion can hide a cut
from the content score) and a cross-dissolve test, and measures every frame's brightness,
contrast and sharpness. Runs of near-black frames (fades through black) separate shots and belong
to none; pieces shorter than `min_shot_seconds` join their neighbour, so a fade, a dissolve or a
flash is one transition; the keyframe is the sharpest well-exposed frame of the shot's middle
half, never a near-black or transition frame, and its index is recorded (`video_frame`).
The older `histogram` / `diff` methods (a cut wherever the distance of consecutive frames exceeds
a threshold; keyframe = middle or first frame) are kept for comparison.

Images are then fitted to a square of side `keyframes.size`, keeping the aspect ratio: `pad`
(default) scales the longer side to the size and letterboxes with black, so nothing that decides
the label is cut away (16:9 video would lose 44% of its width to a centre crop); `crop` scales the
shorter side and centre-crops, trading the borders for resolution.

A video is decoded twice (shots first, then the chosen frames), so memory stays at a few frames
plus per-frame numbers, whatever the video's length. A video that decodes fewer frames than its
container states is truncated: an error, or with `data.on_truncated: warn` kept and recorded.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from alnsfw.data.errors import DataError
from alnsfw.schema import config_section

log = logging.getLogger(__name__)

_HIST_SIDE = 128  # histograms are taken of frames downscaled to at most this side (speed)
_THUMB_SIDE = 16  # the diff method compares thumbnails of at most this side
_MIN_IMAGE_SIDE = 8
_VIDEO_FIX = (
    "Replace it with a complete copy, or delete it (then remove it from the fold lists, or set "
    "data.on_missing: warn so that the lists may name absent videos)."
)


@dataclass(frozen=True)
class KeyframeSettings:
    """Config section `keyframes`: how one video becomes its keyframes.

    Keys a partial config leaves out (tests, an exported model's JSON, tools/shot_eval.py) come
    from the schema, the one place that states the defaults.
    """

    method: str  # adaptive | histogram | diff
    threshold: float  # the cut threshold of `method`
    position: str  # middle | first (histogram and diff)
    min_shot_seconds: float  # adaptive: shorter pieces join a neighbour
    size: int  # side of the square keyframes
    resize: str  # pad | crop
    full_images: bool = False  # also keep each keyframe at full resolution, as JPEG bytes

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> KeyframeSettings:
        """The `keyframes` section of a (possibly partial) config."""
        return cls.from_section(config_section(cfg, "keyframes"))

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> KeyframeSettings:
        """A complete `keyframes` section (no schema read: the light predict install has none);
        `threshold` is the method's number or the section's per-method mapping."""
        method = str(section["method"])
        threshold = section["threshold"]
        return cls(
            method=method,
            threshold=float(threshold[method] if isinstance(threshold, Mapping) else threshold),
            position=str(section["position"]),
            min_shot_seconds=float(section["min_shot_seconds"]),
            size=int(section["size"]),
            resize=str(section["resize"]),
            full_images=bool(section.get("full_images", False)),
        )


@dataclass
class Keyframes:
    """The keyframes of one video: RGB uint8 images [n,S,S,3], numbers from 1, origins."""

    images: np.ndarray
    frame: np.ndarray  # keyframe number n, from 1 (shot number, or the n of <video>#<n>.jpg)
    video_frame: np.ndarray  # 0-based index of the frame in the video; -1 for shipped images
    source: list[str]
    decoded_frames: int = -1  # frames decoded from the video (-1: shipped images)
    expected_frames: int = -1  # frames the container states (0: none stated; -1: shipped)
    full_jpeg: list[bytes] | None = None  # settings.full_images: each keyframe at full size
    fps: float = 0.0  # the video's frame rate (0: unknown or shipped images)


def fit_square(image: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """Resize an RGB image to size x size keeping its aspect: letterbox (`pad`) or centre `crop`."""
    h, w = image.shape[:2]
    scale = size / (max(h, w) if mode == "pad" else min(h, w))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    if mode == "pad":
        out = np.zeros((size, size, 3), np.uint8)
        y0, x0 = (size - nh) // 2, (size - nw) // 2
        out[y0 : y0 + nh, x0 : x0 + nw] = resized
        return out
    if mode == "crop":
        y0, x0 = (nh - size) // 2, (nw - size) // 2
        return np.ascontiguousarray(resized[y0 : y0 + size, x0 : x0 + size])
    raise ValueError(f"keyframes.resize must be 'pad' or 'crop', not {mode!r}")


def _downscale(frame: np.ndarray, side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return frame
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _signature(frame_bgr: np.ndarray, method: str) -> np.ndarray:
    """What two frames are compared by: a 16x16 hue-saturation histogram or a 16-px thumbnail.

    Both are coarse on purpose: sensor noise, compression and slow motion inside a shot move
    little between coarse bins or thumbnail pixels, while a cut changes them wholesale.
    """
    if method == "histogram":
        hsv = cv2.cvtColor(_downscale(frame_bgr, _HIST_SIDE), cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 16], [0, 180, 0, 256])
        return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)
    if method == "diff":
        return _downscale(frame_bgr, _THUMB_SIDE).astype(np.float32) / 255.0
    raise ValueError(f"keyframes.method must be 'adaptive', 'histogram' or 'diff', not {method!r}")


def frame_distance(a: np.ndarray, b: np.ndarray, method: str) -> float:
    """Distance in [0, 1] between two signatures: Bhattacharyya (histogram) or mean |a-b| (diff)."""
    if method == "histogram":
        return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))
    if a.shape != b.shape:  # a resolution change mid-video is a cut
        return 1.0
    return float(np.mean(np.abs(a - b)))


def shot_bounds(distances: Sequence[float], threshold: float) -> list[tuple[int, int]]:
    """[start, end) of each shot, given the distances between frames i-1 and i (i = 1..T-1)."""
    cuts = [i + 1 for i, d in enumerate(distances) if d > threshold]
    starts = [0, *cuts]
    ends = [*cuts, len(distances) + 1]
    return list(zip(starts, ends))


def keyframe_index(start: int, end: int, position: str) -> int:
    """The frame that represents shot [start, end)."""
    if position == "first":
        return start
    if position == "middle":
        return start + (end - start - 1) // 2
    raise ValueError(f"keyframes.position must be 'middle' or 'first', not {position!r}")


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise DataError(f"Video '{path}' does not exist. Restore it or remove it from data.root.")
    if path.stat().st_size == 0:
        raise DataError(f"Video '{path}' is empty (0 bytes). {_VIDEO_FIX}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(
            f"Video '{path}' cannot be opened by OpenCV: the file is corrupt or not a video. "
            f"{_VIDEO_FIX}"
        )
    return cap


def is_truncated(decoded: int, expected: int) -> bool:
    """Whether `decoded` frames fall short of the container's count (2% + 2 frames of slack:
    counts derived from duration x fps are estimates)."""
    return expected > 0 and decoded < expected - max(2, int(0.02 * expected))


def check_complete(path: Path, decoded: int, expected: int, on_truncated: str) -> None:
    """Stop on (or, with `warn`, log) a video that decodes fewer frames than its container says."""
    if not is_truncated(decoded, expected):
        return
    message = (
        f"Video '{path}' decodes only {decoded} of the {expected} frames its container states: "
        "the file is truncated or damaged."
    )
    if on_truncated != "warn":
        raise DataError(
            f"{message} Replace it with a complete copy, or set data.on_truncated: warn to keep "
            "the frames that decode (the shard records decoded_frames and expected_frames)."
        )
    log.warning("%s Keeping the %d frames read (data.on_truncated: warn).", message, decoded)


def _decoded(cap: cv2.VideoCapture) -> Iterator[np.ndarray]:
    """The frames of an opened video, in order (BGR); the capture is released once they end."""
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def _require_frames(path: Path, n: int) -> None:
    if n == 0:
        raise DataError(
            f"Video '{path}' has no readable frames (an empty or corrupt stream). {_VIDEO_FIX}"
        )


def detect_shots(
    path: str | Path, method: str, threshold: float, on_truncated: str = "error"
) -> list[tuple[int, int]]:
    """Decode the video once and return the [start, end) frame ranges of its shots."""
    path = Path(path)
    cap = _open(path)
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    distances: list[float] = []
    prev = None
    n = 0
    for frame in _decoded(cap):
        sig = _signature(frame, method)
        if prev is not None:
            distances.append(frame_distance(prev, sig, method))
        prev = sig
        n += 1
    _require_frames(path, n)
    check_complete(path, n, expected, on_truncated)
    return shot_bounds(distances, threshold)


def read_frames(path: str | Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """The RGB frames at `indices` (0-based), decoding sequentially (seeking is codec-dependent)."""
    path = Path(path)
    wanted = set(indices)
    out: dict[int, np.ndarray] = {}
    cap = _open(path)
    try:
        i = 0
        while len(out) < len(wanted):
            ok, frame = cap.read()
            if not ok:
                break
            if i in wanted:
                out[i] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            i += 1
    finally:
        cap.release()
    if len(out) < len(wanted):
        raise DataError(
            f"Video '{path}' ended early on the second read ({i} frames): the stream is "
            f"corrupt. {_VIDEO_FIX}"
        )
    return out


def extract_from_video(
    path: str | Path, settings: KeyframeSettings, on_truncated: str = "error"
) -> Keyframes:
    """One keyframe per detected shot of a video file, of side `settings.size`.

    `adaptive` (default): PySceneDetect's adaptive detector, black gaps split, pieces shorter than
    `min_shot_seconds` merge, and the keyframe is the shot's representative frame (`position` is
    not used). `histogram` / `diff`: a cut wherever the distance of consecutive frames exceeds
    `threshold`, keyframe at `position`.
    """
    path = Path(path)
    method, threshold = settings.method, settings.threshold
    size, resize = settings.size, settings.resize
    if method == "adaptive":
        scan = scan_video(path, adaptive_threshold=threshold)
        check_complete(path, scan.n_frames, scan.expected_frames, on_truncated)
        shots = robust_shots(scan, max(1, round(settings.min_shot_seconds * scan.fps)))
        indices = [representative_frame(scan, s, e) for s, e in shots]
        decoded, expected = scan.n_frames, scan.expected_frames
    else:
        shots = detect_shots(path, method, threshold, on_truncated)
        indices = [keyframe_index(s, e, settings.position) for s, e in shots]
        decoded, expected = shots[-1][1], container_frames(path)
    frames = read_frames(path, indices)
    images = np.stack([fit_square(frames[i], size, resize) for i in indices])
    full = [_jpeg(frames[i], path) for i in indices] if settings.full_images else None
    log.info(
        "%s: %d frames, %d shots %s, keyframes at %s", path, decoded, len(shots), shots, indices
    )
    return Keyframes(
        images=images,
        frame=np.arange(1, len(indices) + 1, dtype=np.int32),
        video_frame=np.asarray(indices, np.int32),
        source=[str(path)] * len(indices),
        decoded_frames=int(decoded),
        expected_frames=int(expected),
        full_jpeg=full,
        fps=_video_fps(path),
    )


def _jpeg(rgb: np.ndarray, path: Path) -> bytes:
    """A full-resolution keyframe as JPEG (quality 92): what a person labels in a campaign."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    if not ok:
        raise DataError(f"could not encode a keyframe of '{path}' as JPEG")
    return buf.tobytes()


def _video_fps(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    try:
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    finally:
        cap.release()


def container_frames(path: Path) -> int:
    cap = _open(path)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()


def read_image(path: str | Path) -> np.ndarray:
    """An RGB uint8 image from disk; unreadable or malformed files raise a DataError."""
    path = Path(path)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    fix = "Replace it with the keyframe from the original dataset, or delete it."
    if raw is None:
        raise DataError(f"Keyframe image '{path}' cannot be read (corrupt or not an image). {fix}")
    if raw.dtype != np.uint8:
        raise DataError(f"Keyframe image '{path}' has {raw.dtype} pixels, not 8-bit. {fix}")
    if raw.ndim == 2:
        raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGR)
    if raw.ndim != 3 or raw.shape[2] not in (3, 4):
        raise DataError(f"Keyframe image '{path}' has shape {raw.shape}, not HxWx3. {fix}")
    if min(raw.shape[:2]) < _MIN_IMAGE_SIDE:
        raise DataError(
            f"Keyframe image '{path}' is {raw.shape[1]}x{raw.shape[0]} pixels, too small for a "
            f"video frame (< {_MIN_IMAGE_SIDE}). {fix}"
        )
    return cv2.cvtColor(raw[:, :, :3], cv2.COLOR_BGR2RGB)


def frame_number(path: str | Path) -> int:
    """n of a shipped keyframe named <video>#<n>.<ext>."""
    return int(Path(path).stem.rsplit("#", 1)[1])


def load_shipped(paths: Sequence[str | Path], size: int, resize: str = "pad") -> Keyframes:
    """The dataset's own keyframes of one video; all must share the first one's resolution."""
    images, numbers = [], []
    first_shape = None
    for path in sorted(paths, key=frame_number):
        image = read_image(path)
        if first_shape is None:
            first_shape = image.shape
        elif image.shape != first_shape:
            raise DataError(
                f"Keyframe image '{path}' is {image.shape[1]}x{image.shape[0]} but the video's "
                f"first keyframe is {first_shape[1]}x{first_shape[0]}: keyframes of one video "
                "share its resolution, so this file is damaged or belongs to another video. "
                "Replace it with the keyframe from the original dataset, or delete it."
            )
        images.append(fit_square(image, size, resize))
        numbers.append(frame_number(path))
    if not images:
        raise DataError("No keyframe images given.")
    return Keyframes(
        images=np.stack(images),
        frame=np.asarray(numbers, np.int32),
        video_frame=np.full(len(numbers), -1, np.int32),
        source=[str(p) for p in sorted(paths, key=frame_number)],
    )


# --- the default detector: PySceneDetect's adaptive content detector + fade/blank handling ---

_ANALYSIS_SIDE = 256  # frames are analysed downscaled to at most this side (speed; cuts survive)
DARK_LUMA = 20.0  # mean luma (0-255) under which a flat frame is near-black (fade, black gap)
_BRIGHT_LUMA = 200.0  # mean luma over which a flat frame is a flash (white-out)
_FLAT_STD = 10.0  # luma std under which a dark or bright frame is flat: a dark *scene* has light
# sources and edges (higher std) and stays content, and so does a low-contrast mid-grey scene
_EXPOSED_SHARE = 0.6  # a keyframe is at least this share of its shot's median brightness
HIST_CUT = 0.5  # colour_cuts: histogram distance of a wholesale colour change
_BLEND_SIZE = (32, 24)  # the dissolve test compares thumbnails of this size
_DISSOLVE_HALF_SECONDS = 0.5  # W: frames i-W and i+W lie outside dissolves up to 1 s long
_DISSOLVE_MIN_CHANGE = 0.12  # the two ends differ by at least this (mean |.|, 0-1)
_DISSOLVE_MAX_ERROR = 0.25  # frame i is their mix within this share of that change
_DISSOLVE_MIN_APART = 0.3  # and differs from either end by at least this share of it


@dataclass(frozen=True)
class VideoScan:
    """What one decoding pass learns of a video: cuts and per-frame quality measures."""

    n_frames: int
    fps: float
    cuts: list[int]  # frames that begin a new shot, as the cut detector reports them
    luma: np.ndarray  # mean luma per frame (0-255)
    contrast: np.ndarray  # luma standard deviation per frame
    sharpness: np.ndarray  # variance of the Laplacian per frame (focus, motion blur)
    expected_frames: int  # the container's frame count (0 when it states none)
    hist_change: np.ndarray | None = None  # histogram distance of frames i-1 and i (0 for i=0)
    # blend test of frame i against frames i-W and i+W (NaN where the window leaves the video)
    blend_change: np.ndarray | None = None  # mean |f(i-W) - f(i+W)|, 0-1
    blend_error: np.ndarray | None = None  # mean |f(i) - (f(i-W) + f(i+W))/2| / change
    blend_apart: np.ndarray | None = None  # min(mean |f(i) - f(i-W)|, |f(i) - f(i+W)|) / change


def blend_window(fps: float) -> int:
    """W of the dissolve test: half a second of frames, at least 2."""
    return max(2, round(_DISSOLVE_HALF_SECONDS * fps))


def colour_cuts(scan: VideoScan) -> list[int]:
    """Frames whose colour histogram differs wholesale from the previous frame's.

    The adaptive detector's content score weighs edges, so a shot full of moving texture (water,
    foliage, stripes) scores as high as a cut and hides it; a colour histogram ignores where the
    texture moves. Only a change well above the histogram method's own threshold counts, and
    only between non-blank frames (near-black frames have noisy histograms: fades).
    """
    if scan.hist_change is None:
        return []
    blank = blank_frames(scan)
    big = np.flatnonzero(scan.hist_change > HIST_CUT)
    return [int(i) for i in big if i > 0 and not blank[i] and not blank[i - 1]]


def dissolve_cuts(scan: VideoScan) -> list[int]:
    """The middle frames of cross-dissolves: frame i is the half-and-half mix of frames i-W and
    i+W (a blend error well below the change), unlike both of them, and they differ a lot.

    A camera move or a moving object also changes f(i-W) into f(i+W), but its middle frame is a
    shifted picture, not a pixel mix of the two ends, so its blend error stays high. Windows
    that hold a blank frame (fades, flashes: handled apart) or a detector cut are not tested.
    One cut per run of qualifying frames, at the run's best blend.
    """
    if scan.blend_error is None:
        return []
    w = blend_window(scan.fps)
    blank = blank_frames(scan)
    cut = np.zeros(scan.n_frames + 1, bool)
    cut[scan.cuts] = True
    with np.errstate(invalid="ignore"):
        ok = (
            (scan.blend_change > _DISSOLVE_MIN_CHANGE)
            & (scan.blend_error < _DISSOLVE_MAX_ERROR)
            & (scan.blend_apart > _DISSOLVE_MIN_APART)
        )
    out = []
    i = 0
    while i < scan.n_frames:
        if not ok[i]:
            i += 1
            continue
        j = i
        while j < scan.n_frames and ok[j]:
            j += 1
        best = i + int(np.argmin(scan.blend_error[i:j]))
        lo, hi = max(0, best - w), min(scan.n_frames, best + w + 1)
        if not blank[lo:hi].any() and not cut[lo + 1 : hi].any():
            out.append(best)
        i = j
    return out


def _frame_rate(cap: cv2.VideoCapture) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if 0.0 < fps < 1000.0 else 25.0


def scan_video(
    path: str | Path, adaptive_threshold: float = 3.0, min_content: float = 15.0
) -> VideoScan:
    """Decode a video once: PySceneDetect's AdaptiveDetector cuts plus luma/contrast/sharpness.

    The detector (its content score: mean change of hue, saturation, luma and edges, compared with
    the scores of the frames around it) ignores steady camera motion, which raises the score of a
    whole run of frames, and fires on the lone spike of a cut. It is fed frames downscaled to at
    most 256 px: cuts survive, decoding dominates the time.
    """
    from scenedetect import FrameTimecode
    from scenedetect.detectors import AdaptiveDetector

    path = Path(path)
    cap = _open(path)
    fps = _frame_rate(cap)
    expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    detector = AdaptiveDetector(
        adaptive_threshold=adaptive_threshold, min_content_val=min_content, min_scene_len=1
    )
    cuts: list[int] = []
    luma, contrast, sharp = [], [], []
    w = blend_window(fps)
    ring: deque[np.ndarray] = deque(maxlen=2 * w + 1)  # thumbnails of the last 2W+1 frames
    blend: list[tuple[float, float, float]] = []
    hist: list[float] = []
    prev_sig = None
    n = 0
    for frame in _decoded(cap):
        small = _downscale(frame, _ANALYSIS_SIDE)
        thumb = cv2.resize(small, _BLEND_SIZE, interpolation=cv2.INTER_AREA)
        ring.append(thumb.astype(np.float32) / 255.0)
        if len(ring) == ring.maxlen:  # test the middle frame, n - W
            blend.append(_blend(ring[0], ring[w], ring[-1]))
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        mean, std = cv2.meanStdDev(gray)
        luma.append(float(mean[0, 0]))
        contrast.append(float(std[0, 0]))
        sharp.append(float(cv2.Laplacian(gray, cv2.CV_32F).var()))
        cuts += [t.frame_num for t in detector.process_frame(FrameTimecode(n, fps), small)]
        sig = _signature(small, "histogram")
        hist.append(frame_distance(prev_sig, sig, "histogram") if n else 0.0)
        prev_sig = sig
        n += 1
    _require_frames(path, n)
    cuts += [t.frame_num for t in detector.post_process(FrameTimecode(n - 1, fps))]
    return VideoScan(
        n_frames=n,
        fps=fps,
        cuts=sorted({c for c in cuts if 0 < c < n}),
        luma=np.asarray(luma, np.float32),
        contrast=np.asarray(contrast, np.float32),
        sharpness=np.asarray(sharp, np.float32),
        expected_frames=expected,
        hist_change=np.asarray(hist, np.float32),
        **_blend_arrays(blend, n, w),
    )


def _blend(a: np.ndarray, mid: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    change = float(np.abs(a - b).mean())
    scale = max(change, 1e-6)
    error = float(np.abs(mid - (a + b) / 2).mean()) / scale
    apart = min(float(np.abs(mid - a).mean()), float(np.abs(mid - b).mean())) / scale
    return change, error, apart


def _blend_arrays(blend: list[tuple[float, float, float]], n: int, w: int) -> dict[str, np.ndarray]:
    """Per-frame blend measures (NaN within W of either end), for VideoScan."""
    out = np.full((n, 3), np.nan, np.float32)
    if blend:
        out[w : w + len(blend)] = np.asarray(blend, np.float32)
    return {"blend_change": out[:, 0], "blend_error": out[:, 1], "blend_apart": out[:, 2]}


def black_frames(scan: VideoScan) -> np.ndarray:
    """Near-black flat frames: the bottom of a fade, a black gap between shots."""
    return (scan.luma < DARK_LUMA) & (scan.contrast < _FLAT_STD)


def blank_frames(scan: VideoScan) -> np.ndarray:
    """Frames that show nothing: near-black ones and flashes (bright and flat)."""
    flash = (scan.luma > _BRIGHT_LUMA) & (scan.contrast < _FLAT_STD)
    return black_frames(scan) | flash


def robust_shots(scan: VideoScan, min_shot_frames: int) -> list[tuple[int, int]]:
    """[start, end) of the shots: detector cuts and black gaps split, short pieces merge.

    A fade through black gives a run of near-black frames: the run separates two shots however
    the detector scored the dimming frames around it, and its frames belong to no shot. A flash
    (flat but bright) splits nothing. A piece with fewer than `min_shot_frames` non-blank frames
    is not a shot: it joins the neighbour across a detector cut (a burst of cuts inside a
    dissolve, a fade's ramp or a fast move collapses into one transition), and is dropped when
    black gaps or the video's ends bound it on both sides.
    """
    n = scan.n_frames
    blank = blank_frames(scan)
    black = black_frames(scan)
    cut_set = set(scan.cuts) | set(dissolve_cuts(scan)) | set(colour_cuts(scan))
    # pieces: maximal runs of non-black frames, split at detector cuts
    pieces: list[list[int]] = []  # [start, end, starts_at_cut]
    i = 0
    while i < n:
        if black[i]:
            i += 1
            continue
        start = i
        while i < n and not black[i] and (i == start or i not in cut_set):
            i += 1
        pieces.append([start, i, int(start in cut_set and start > 0 and not black[start - 1])])
    content = lambda p: int(np.count_nonzero(~blank[p[0] : p[1]]))  # noqa: E731
    changed = True
    while changed and len(pieces) > 1:
        changed = False
        for k, piece in enumerate(pieces):
            if content(piece) >= min_shot_frames:
                continue
            nxt = k + 1 < len(pieces) and pieces[k + 1][2]
            if piece[2] and k > 0 and nxt and content(piece) == 0:  # a flash inside a shot
                pieces[k - 1][1] = pieces[k + 1][1]
                del pieces[k : k + 2]
            elif piece[2] and k > 0:  # joined to the previous piece by a cut: merge into it
                pieces[k - 1][1] = piece[1]
                del pieces[k]
            elif nxt:  # joined to the next piece by a cut: merge into it
                pieces[k + 1][0], pieces[k + 1][2] = piece[0], piece[2]
                del pieces[k]
            else:  # bounded by black or the ends: not a shot
                del pieces[k]
            changed = True
            break
    if not pieces:  # nothing long enough: the whole video, minus black, is one shot
        visible = np.flatnonzero(~blank) if np.any(~blank) else np.arange(n)
        return [(int(visible[0]), int(visible[-1]) + 1)]
    return [(int(p[0]), int(p[1])) for p in pieces]


def representative_frame(scan: VideoScan, start: int, end: int) -> int:
    """The keyframe of shot [start, end): the sharpest well-exposed frame of its middle half.

    Candidates are the shot's non-blank frames at least `_EXPOSED_SHARE` as bright as the shot's
    median (so no frame of a fade ramp), in the middle half of the shot (away from dissolves and
    cuts); the sharpest wins (no motion blur), ties to the one nearest the middle. Should no frame
    qualify, the rule widens to the whole shot, then to any non-blank frame.
    """
    idx = np.arange(start, end)
    ok = ~blank_frames(scan)[start:end]
    if not ok.any():
        return start + (end - start - 1) // 2
    luma = scan.luma[start:end]
    exposed = ok & (luma >= _EXPOSED_SHARE * float(np.median(luma[ok])))
    quarter = (end - start) // 4
    middle = (idx >= start + quarter) & (idx < end - quarter)
    centre = (start + end - 1) / 2
    for mask in (exposed & middle, exposed, ok):
        if mask.any():
            cand = idx[mask]
            score = scan.sharpness[cand] - 1e-6 * np.abs(cand - centre)
            return int(cand[int(np.argmax(score))])
    raise AssertionError("unreachable")
