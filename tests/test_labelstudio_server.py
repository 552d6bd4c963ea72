"""The test server (tests/labelstudio_server.py) accepts a model server on 127.0.0.1.

Label Studio 1.23.2 refuses, by default, an ML backend and a webhook whose URL resolves to a
reserved address (403 "URL resolves to a reserved network address (block: 127.0.0.0/8)"); the
campaign's model server runs on the same machine, so the test server (like `make labelstudio`)
runs with ML_BLOCK_LOCAL_IP=false and SSRF_PROTECTION_ENABLED=false. This checks that it does,
with a stand-in backend that answers /health and /setup (`make test-labelstudio`).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from labelstudio_server import LS_BIN, LabelStudioServer

pytestmark = [
    pytest.mark.labelstudio,
    pytest.mark.skipif(not LS_BIN.exists(), reason="run `make labelstudio-install` first"),
]


class _Backend(BaseHTTPRequestHandler):
    """The least an ML backend answers: GET /health, POST /setup with a model_version."""

    calls: list[str] = []

    def _answer(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.calls.append("GET " + self.path)
        self._answer({"status": "UP", "model_class": "stand-in"})

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.calls.append("POST " + self.path)
        self._answer({"model_version": "stand-in-1"})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def test_a_model_server_and_webhook_on_loopback_are_accepted(
    labelstudio_server: LabelStudioServer, backend: str
):
    server = labelstudio_server
    project = server.api("POST", "/api/projects", json={"title": f"loopback {uuid.uuid4().hex}"})
    _Backend.calls.clear()
    connect = {"url": backend, "project": project["id"], "title": "stand-in"}
    ml = server.api("POST", "/api/ml", json=connect)
    assert ml["readable_state"] == "Connected", ml
    assert "GET /health" in _Backend.calls  # Label Studio really called it
    hook = server.api(
        "POST", "/api/webhooks/", json={"url": f"{backend}/webhook", "project": project["id"]}
    )
    assert hook["is_active"] and hook["url"] == f"{backend}/webhook"
    server.api("DELETE", f"/api/projects/{project['id']}")
