"""Label Studio's ML-backend protocol (1.23.2) over a served campaign: the HTTP endpoints.

    GET  /health    {"status": "UP", ...}           (no authentication: Label Studio's probe)
    POST /setup     {"model_version": "round-N"}
    POST /predict   {"results": [{result, score, model_version}, ...]}  one per task, in order
    POST /webhook   ANNOTATION_CREATED / ANNOTATION_UPDATED / ANNOTATIONS_DELETED /
                    START_TRAINING ...: wakes the worker and answers at once (Label Studio waits
                    1 s and never retries; the worker pulls, so a lost webhook loses nothing)
    POST /train     the same as START_TRAINING (Label Studio's "start training" button)

Every endpoint but /health needs HTTP basic auth with the user and password of
campaign.serve.auth_env (an environment variable holding `user:password`; Label Studio sends them
when the backend is connected with basic auth). Bound to 127.0.0.1 by default.
"""

from __future__ import annotations

import base64
import hmac
import logging
import os
from typing import Any

from alnsfw.campaign.labels import LabelScheme, task_rows

log = logging.getLogger(__name__)


def credentials(env: str) -> tuple[str, str]:
    """(user, password) from the environment variable `env` (`user:password`); never a file."""
    value = os.environ.get(env, "")
    if ":" not in value or not value.split(":", 1)[1]:
        raise ValueError(
            f"set the environment variable {env} to user:password (any strong password): the "
            "model server asks Label Studio for it on every call (campaign.serve.auth_env)"
        )
    user, password = value.split(":", 1)
    return user, password


def prediction(prob: float | None, version: str, scheme: LabelScheme) -> dict[str, Any]:
    """One /predict result: the model's guess as a pre-annotation in the project's own choice
    names (`scheme`, as the round's bulk predictions), its confidence as score."""
    if prob is None:
        return {"result": [], "score": 0.0, "model_version": version}
    guess = int(prob >= 0.5)
    return {
        "result": scheme.result(guess),
        "score": float(prob if guess else 1.0 - prob),
        "model_version": version,
    }


def unit_prediction(probs: list[float | None], version: str, scheme: LabelScheme) -> dict[str, Any]:
    """One /predict result of a unit task (al.unit shot / video): a guess per keyframe (None:
    that keyframe has none), the mean confidence as score (as tasks.build_unit_task)."""
    known = [float(p) for p in probs if p is not None]
    if not known:
        return {"result": [], "score": 0.0, "model_version": version}
    labels = [None if p is None else int(float(p) >= 0.5) for p in probs]
    return {
        "result": scheme.results(labels),
        "score": float(sum(max(p, 1.0 - p) for p in known) / len(known)),
        "model_version": version,
    }


def create_app(service: Any, user: str, password: str) -> Any:  # noqa: ANN401
    """The Starlette app of a CampaignService (alnsfw.campaign.service)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def authorised(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), expected.encode())

    def refused() -> JSONResponse:
        return JSONResponse(
            {"error": "basic auth required (campaign.serve.auth_env)"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="alnsfw"'},
        )

    async def health(request: Request) -> JSONResponse:
        stats = service.stats
        return JSONResponse(
            {
                "status": "UP",
                "model_class": "alnsfw-campaign",
                "model_version": service.version,
                "rounds": stats.rounds,
                "last_error": stats.last_error,
            }
        )

    async def setup(request: Request) -> JSONResponse:
        if not authorised(request):
            return refused()
        return JSONResponse({"model_version": service.version})

    async def predict(request: Request) -> JSONResponse:
        if not authorised(request):
            return refused()
        try:
            body = await request.json()
            tasks = list(body.get("tasks") or [])
        except (ValueError, AttributeError):
            return JSONResponse({"error": "body must be JSON with a list 'tasks'"}, 400)
        per_task = [task_rows(t.get("data") or {}) if isinstance(t, dict) else None for t in tasks]
        ours = sorted({int(r) for rows in per_task for r in rows or []})
        probs, version = await run_in_threadpool(service.campaign.predictions, ours)
        by_row = {} if probs is None else dict(zip(ours, (float(p) for p in probs)))
        scheme = getattr(service.campaign, "scheme", None) or LabelScheme()
        results = []
        for task, rows in zip(tasks, per_task):
            if rows is not None and "alnsfw_rows" in (task.get("data") or {}):
                results.append(unit_prediction([by_row.get(r) for r in rows], version, scheme))
            else:
                results.append(prediction(by_row.get(rows[0]) if rows else None, version, scheme))
        return JSONResponse({"results": results})

    async def webhook(request: Request) -> JSONResponse:
        if not authorised(request):
            return refused()
        try:
            action = (await request.json()).get("action")
        except ValueError:
            action = None
        log.info("webhook %s", action)
        service.wake()
        return JSONResponse({"status": "ok", "action": action})

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/setup", setup, methods=["POST"]),
            Route("/predict", predict, methods=["POST"]),
            Route("/webhook", webhook, methods=["POST"]),
            Route("/train", webhook, methods=["POST"]),
        ]
    )
