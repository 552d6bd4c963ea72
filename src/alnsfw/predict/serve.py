"""`alnsfw serve`: the classifier behind HTTP (Starlette on uvicorn), for an upload path.

    GET  /health           {"status": "ok", "model": ..., "operating_point": ..., ...}
    POST /predict          body: an image or a video, raw (any Content-Type) or as the field
                           `file` of a multipart/form-data upload
         ?frames=keyframes|every:K|fps:N   video frames to score (default: the server's)
         ?early_exit=1                     stop a video once its verdict cannot change

Answers JSON: for an image {kind, prob_porn, verdict, threshold, seconds}; for a video also
n_frames, frames (frame, time_s, prob_porn per scored frame), aggregation and early_exit. Bad
bodies get a 4xx with {"error": why} and the service goes on: 400 empty body or bad query,
413 over --max-bytes (from Content-Length before reading, else while reading), 415 neither an
image nor a video OpenCV can read, 422 a video that is truncated or has no frame to score.

Bound to 127.0.0.1 unless --host says otherwise: the service has no authentication. One model
call at a time (a lock in the Classifier); decoding runs in Starlette's thread pool beside it.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from alnsfw.predict.api import Classifier
from alnsfw.predict.media import MediaError, parse_sampling

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class HTTPProblem(Exception):
    """A bad request: status code and the message the client gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPProblem(413, f"upload of {declared} bytes is over the limit of {max_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPProblem(413, f"upload is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def upload(request: Request, max_bytes: int) -> bytes:
    """The uploaded file: the raw body, or the `file` field of a multipart form."""
    body = await read_body(request, max_bytes)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):

        async def once() -> Any:  # noqa: ANN401 - the parser wants an async byte stream
            yield body

        try:
            form = await MultiPartParser(request.headers, once()).parse()
        except MultiPartException as err:
            raise HTTPProblem(400, f"bad multipart body: {err.message}") from err
        field = form.get("file")
        if field is None or isinstance(field, str):
            raise HTTPProblem(400, "multipart upload without a file field named 'file'")
        body = await field.read()
    if not body:
        raise HTTPProblem(400, "empty body: POST the image or video bytes (or a 'file' field)")
    return body


def looks_like_video(data: bytes) -> bool:
    """Whether OpenCV can open `data` as a video and decode a frame (written to a temp file:
    OpenCV reads video only from files)."""
    with tempfile.NamedTemporaryFile(suffix=".video") as tmp:
        tmp.write(data)
        tmp.flush()
        capture = cv2.VideoCapture(tmp.name)
        try:
            return bool(capture.isOpened() and capture.read()[0])
        finally:
            capture.release()


def score(classifier: Classifier, data: bytes, frames: str, early_exit: bool) -> dict[str, Any]:
    """Score one upload (blocking; runs in the thread pool)."""
    start = time.perf_counter()
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is not None:
        p = classifier.predict_image(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        return {
            "kind": "image",
            "prob_porn": p,
            "verdict": classifier.verdict(p),
            "threshold": classifier.frame_threshold,
            "seconds": round(time.perf_counter() - start, 4),
        }
    if not looks_like_video(data):
        raise HTTPProblem(415, "the body is neither an image nor a video that OpenCV can read")
    try:
        result = classifier.predict_video(data, frames=frames, early_exit=early_exit)
    except MediaError as err:
        raise HTTPProblem(422, f"video cannot be scored: {err}") from err
    return {"kind": "video", **result, "seconds": round(time.perf_counter() - start, 4)}


def create_app(
    classifier: Classifier,
    max_bytes: int = DEFAULT_MAX_BYTES,
    frames: str = "keyframes",
    early_exit: bool = False,
) -> Starlette:
    """The Starlette application around one loaded classifier."""
    parse_sampling(frames)
    meta = classifier.bundle.meta

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "model": classifier.bundle.path.name,
                "engine": type(classifier.bundle.model).__name__,
                "input_size": classifier.bundle.size,
                "frame_threshold": classifier.frame_threshold,
                "video": classifier.rule.to_dict(),
                "operating_point": (meta.get("operating_point") or {}).get("target"),
                "max_bytes": max_bytes,
            }
        )

    async def predict(request: Request) -> JSONResponse:
        try:
            how = request.query_params.get("frames", frames)
            try:
                parse_sampling(how)
            except ValueError as err:
                raise HTTPProblem(400, str(err).replace("--frames", "frames")) from err
            stop = request.query_params.get("early_exit", "1" if early_exit else "0")
            if stop not in ("0", "1", "true", "false"):
                raise HTTPProblem(400, f"early_exit={stop!r}: use 1 or 0")
            data = await upload(request, max_bytes)
            result = await run_in_threadpool(score, classifier, data, how, stop in ("1", "true"))
        except HTTPProblem as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
        return JSONResponse(result)

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/predict", predict, methods=["POST"]),
        ]
    )


def serve(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_bytes: int = DEFAULT_MAX_BYTES,
    frames: str = "keyframes",
    early_exit: bool = False,
    operating_point: str | None = None,
    threads: int | None = None,
) -> None:
    """Load `model` and serve it until interrupted (uvicorn, one process)."""
    import uvicorn

    classifier = Classifier(model, operating_point=operating_point, threads=threads)
    app = create_app(classifier, max_bytes, frames, early_exit)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("ALNSFW_LOG", "warning"))
