"""A real Label Studio 1.23.2 for the tests of marker `labelstudio` (`make test-labelstudio`).

`labelstudio_server` (session fixture, made available to every test module by tests/conftest.py)
starts Label Studio from .labelstudio/venv (`make labelstudio-install`) on a free port of
127.0.0.1 and stops it after the session, so the campaign test and the browser test share one
server. Its data stays in .labelstudio/test-data between runs (the first start migrates the
database, 70-210 s; later ones ~10 s); ALNSFW_LS_TEST_DIR puts data and document root elsewhere
(two checkouts sharing one .labelstudio must not share one SQLite database).

The server runs as `tools/labelstudio.sh start` runs it, plus what a model server on the same
machine needs: `ML_BLOCK_LOCAL_IP=false` and `SSRF_PROTECTION_ENABLED=false`, without which
Label Studio refuses an ML backend and webhooks on 127.0.0.1 (docs/campaign.md). The admin user
and its legacy API token are fixed test values, passed by environment only: Label Studio makes
the user on the first start only, so a random password would not log in on a kept database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
LS_DIR = REPO / ".labelstudio"
LS_BIN = LS_DIR / "venv" / "bin" / "label-studio"
# The test server's own credentials (a throwaway server on 127.0.0.1; never a real one's).
TOKEN = "alnsfw-test-" + "token-0001"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "alnsfw-test-" + "password-0001"
START_TIMEOUT_S = 400  # a first start migrates the database: 211 s measured on 2 loaded cores

needs_labelstudio = pytest.mark.skipif(
    not LS_BIN.exists(), reason="Label Studio is not installed: run `make labelstudio-install`"
)


@dataclass(frozen=True)
class LabelStudioServer:
    """A running test server: where it is and how to log in."""

    url: str
    port: int
    data: Path  # LABEL_STUDIO_BASE_DATA_DIR
    root: Path  # LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT
    token: str = TOKEN
    email: str = ADMIN_EMAIL
    password: str = ADMIN_PASSWORD

    def api(self, method: str, path: str, **kwargs: Any) -> Any:  # noqa: ANN401
        """One REST call with the admin token; raises on an HTTP error; the JSON answer."""
        r = requests.request(
            method,
            self.url + path,
            headers={"Authorization": f"Token {self.token}"},
            timeout=kwargs.pop("timeout", 30),
            **kwargs,
        )
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path}: HTTP {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def __getitem__(self, key: str) -> Any:  # noqa: ANN401
        """server["url"], server["root"], server["port"]: the dict the fixture used to yield."""
        return getattr(self, key)


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(data: Path, root: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a test server (the same settings as tools/labelstudio.sh start)."""
    return dict(base if base is not None else os.environ) | {
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
        "LABEL_STUDIO_PASSWORD": ADMIN_PASSWORD,
        "LABEL_STUDIO_USER_TOKEN": TOKEN,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(root),
        # a model server and its webhooks on 127.0.0.1 (refused by default as SSRF)
        "ML_BLOCK_LOCAL_IP": "false",
        "SSRF_PROTECTION_ENABLED": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "LATEST_VERSION_CHECK": "false",
    }


def start_server(base: Path, log_path: Path) -> tuple[subprocess.Popen, LabelStudioServer]:
    """Start Label Studio with its data in `base`/test-data, files served from
    `base`/test-root, and wait until /health answers; the process and where it is."""
    port = free_port()
    data, root = base / "test-data", base / "test-root"
    data.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    server = LabelStudioServer(f"http://127.0.0.1:{port}", port, data, root)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [str(LS_BIN), "start", "--no-browser", "--internal-host", "127.0.0.1"]
            + ["--port", str(port), "--data-dir", str(data)],
            env=server_env(data, root),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.perf_counter()
    while True:
        try:
            if requests.get(f"{server.url}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"Label Studio exited (status {proc.returncode}); see {log_path}")
        if time.perf_counter() - started > START_TIMEOUT_S:
            stop_server(proc)
            raise RuntimeError(f"Label Studio did not start in {START_TIMEOUT_S} s; see {log_path}")
        time.sleep(1)
    print(f"Label Studio up in {time.perf_counter() - started:.0f} s at {server.url}")
    return proc, server


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (Label Studio ignores SIGINT in the background), then a kill after 20 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


@pytest.fixture(scope="session")
def labelstudio_server() -> Iterator[LabelStudioServer]:
    """One real Label Studio for the session (skips when it is not installed)."""
    if not LS_BIN.exists():
        pytest.skip("Label Studio is not installed: run `make labelstudio-install`")
    base = Path(os.environ.get("ALNSFW_LS_TEST_DIR") or LS_DIR)
    base.mkdir(parents=True, exist_ok=True)
    proc, server = start_server(base, base / "test-server.log")
    try:
        yield server
    finally:
        stop_server(proc)
