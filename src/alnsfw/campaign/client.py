"""Where tasks go and labels come from: a Label Studio server (REST API) or files (no server).

Both give the campaign the same three calls: `push(tasks)` (idempotent: rows already sent are
not sent again), `pull()` (every task of the project with its annotations, in Label Studio's
JSON export format) and `sent_rows()`. Errors that a person can fix (server down, token wrong,
file missing) become a `ClientError` whose message says what to do; nothing has changed then.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from alnsfw.campaign.labels import LABEL_CONFIG
from alnsfw.io import write_json


class ClientError(RuntimeError):
    """Label Studio could not be reached or refused; says what to do. Nothing was changed."""


class LabelClient(Protocol):
    """What the campaign needs from a source of labels."""

    def push(self, tasks: Sequence[dict[str, Any]], round_no: int) -> dict[int, int]:
        """Send tasks; returns row -> task id for the ones that got an id (file route: none)."""
        ...

    def pull(self) -> tuple[list[dict[str, Any]], bool]:
        """All tasks with their annotations, and whether that is every task of the project
        (then annotations missing from the pull were deleted)."""
        ...

    def sent_rows(self) -> set[int] | None:
        """Rows that already have a task (None: not knowable, e.g. the file route)."""
        ...


class FileClient:
    """No server: tasks are written as Label Studio task-import JSON, labels read from a JSON
    export file that Label Studio wrote (Export -> JSON), accepted as is."""

    def __init__(self, task_dir: str | Path, export_file: str | Path | None = None) -> None:
        self.task_dir = Path(task_dir)
        self.export_file = None if export_file is None else Path(export_file)

    def push(self, tasks: Sequence[dict[str, Any]], round_no: int) -> dict[int, int]:
        write_json(self.task_dir / f"round-{round_no:04d}.json", list(tasks))
        return {}

    def pull(self) -> tuple[list[dict[str, Any]], bool]:
        if self.export_file is None:
            return [], False
        try:
            data = json.loads(self.export_file.read_text())
        except FileNotFoundError as err:
            raise ClientError(f"label file {self.export_file} does not exist") from err
        except json.JSONDecodeError as err:
            raise ClientError(
                f"{self.export_file} is not JSON ({err}): give Label Studio's JSON export "
                "(Export -> JSON), not JSON_MIN or CSV"
            ) from err
        if not isinstance(data, list) or not all(isinstance(t, dict) for t in data):
            raise ClientError(
                f"{self.export_file} is not a Label Studio JSON export (a list of tasks): "
                "use Export -> JSON in Label Studio"
            )
        # An export lists every annotated task; tasks it leaves out had no annotation left.
        return data, True

    def sent_rows(self) -> set[int] | None:
        return None


class LabelStudioClient:
    """A Label Studio server (1.23.2 checked) through its REST API, with `requests`.

    The same endpoints label-studio-sdk 2.1.2 calls (projects, localfiles storage, import,
    export); the SDK itself cannot share this environment (pyproject.toml, extra `campaign`).
    The token comes from the environment variable `token_env` only; it is never written to
    config, logs or results. A legacy token is sent as `Token ...`; a personal access token (a
    JWT refresh token) is exchanged at /api/token/refresh/ for an access token, as the SDK does.
    """

    def __init__(
        self,
        url: str,
        token_env: str,
        title: str,
        image_dir: str | Path,
        timeout: float = 30.0,
        project_id: int | None = None,
    ) -> None:
        import requests

        token = os.environ.get(token_env)
        if not token:
            raise ClientError(
                f"no Label Studio token: set the environment variable {token_env} to your "
                "API token (Label Studio -> Account & Settings) and run the command again"
            )
        self.url, self.title, self.image_dir = url.rstrip("/"), title, Path(image_dir)
        self.timeout, self.project_id = float(timeout), project_id
        self.http = requests.Session()
        self._token = token
        self._auth: str | None = None

    def _header(self) -> dict[str, str]:
        if self._auth is None:
            if self._token.count(".") == 2:  # a JWT: personal access token (refresh token)
                answer = self._send(
                    "POST",
                    "/api/token/refresh/",
                    "exchange the token",
                    json={"refresh": self._token},
                    auth=False,
                )
                self._auth = f"Bearer {answer['access']}"
            else:
                self._auth = f"Token {self._token}"
        return {"Authorization": self._auth}

    def _send(self, method: str, path: str, what: str, auth: bool = True, **kwargs: Any) -> Any:  # noqa: ANN401
        """One request; failures become ClientErrors that say what to do."""
        import requests

        headers = self._header() if auth else {}
        try:
            response = self.http.request(
                method, self.url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.RequestException as err:
            raise ClientError(
                f"Label Studio at {self.url} is not reachable ({type(err).__name__}) while "
                f"trying to {what}: start it (make labelstudio-start) or fix "
                "campaign.labelstudio.url, then run the command again; nothing was changed"
            ) from err
        if response.status_code == 401:
            raise ClientError(
                f"Label Studio at {self.url} refused the token (401) while trying to {what}: "
                "set the token's environment variable (campaign.labelstudio.token_env) to a "
                "valid token and run the command again; nothing was changed"
            )
        if response.status_code == 404 and self.project_id is not None:
            raise ClientError(
                f"Label Studio at {self.url}: project {self.project_id} not found while trying "
                f"to {what} (deleted, or another server?)"
            )
        if response.status_code >= 400:
            raise ClientError(
                f"Label Studio at {self.url} failed to {what}: HTTP {response.status_code} "
                f"{response.text[:300]}"
            )
        return response.json() if response.content else None

    def ensure_project(self, document_root: Path) -> int:
        """The campaign's project id, creating project and local storage the first time."""
        if self.project_id is not None:
            return self.project_id
        project = self._send(
            "POST",
            "/api/projects",
            "create the project",
            json={"title": self.title, "label_config": LABEL_CONFIG, "show_skip_button": True},
        )
        self.project_id = int(project["id"])
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self._send(
            "POST",
            "/api/storages/localfiles/",
            "add the local import storage",
            json={
                "project": self.project_id,
                "path": str(self.image_dir.resolve()),
                "use_blob_urls": True,
                "title": "alnsfw task images",
            },
        )
        return self.project_id

    def _export(self) -> list[dict[str, Any]]:
        """Every task with its annotations: the JSON export with download_all_tasks."""
        tasks = self._send(
            "GET",
            f"/api/projects/{self.project_id}/export",
            "export the project's tasks",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )
        for task in tasks or []:
            task.setdefault("project", self.project_id)
        return list(tasks or [])

    def sent_rows(self) -> set[int] | None:
        return {
            int(t["data"]["alnsfw_row"])
            for t in self._export()
            if isinstance((t.get("data") or {}).get("alnsfw_row"), int)
        }

    def push(self, tasks: Sequence[dict[str, Any]], round_no: int) -> dict[int, int]:
        if not tasks:
            return {}
        answer = self._send(
            "POST",
            f"/api/projects/{self.project_id}/import",
            "import the tasks",
            params={"return_task_ids": "true"},
            json=list(tasks),
        )
        ids = list((answer or {}).get("task_ids") or [])
        if len(ids) != len(tasks):  # servers that do not return ids: look them up by row
            by_row = {int(t["data"]["alnsfw_row"]): int(t["id"]) for t in self._export()}
            return {
                int(t["data"]["alnsfw_row"]): by_row[int(t["data"]["alnsfw_row"])] for t in tasks
            }
        return {int(t["data"]["alnsfw_row"]): int(i) for t, i in zip(tasks, ids)}

    def pull(self) -> tuple[list[dict[str, Any]], bool]:
        return self._export(), True

    def set_model_version(self, version: str) -> None:
        """The project's model_version: Label Studio shows, and its uncertainty sampling ranks
        by, only predictions of this version."""
        self._send(
            "PATCH",
            f"/api/projects/{self.project_id}",
            "set the project's model version",
            json={"model_version": version},
        )

    def connect_backend(self, url: str, title: str, user: str, password: str) -> int:
        """Connect the campaign's model server to the project (once; later calls update it).
        Label Studio then calls its /setup and /health, adds the project webhook <url>/webhook,
        and sends basic auth on every call."""
        body = {
            "project": self.project_id,
            "url": url,
            "title": title,
            "is_interactive": False,
            "auth_method": "BASIC_AUTH",
            "basic_auth_user": user,
            "basic_auth_pass": password,
        }
        known = self._send(
            "GET", "/api/ml", "list the model servers", params={"project": self.project_id}
        )
        for backend in known or []:
            if backend.get("url") == url:
                self._send(
                    "PATCH", f"/api/ml/{backend['id']}", "update the model server", json=body
                )
                return int(backend["id"])
        made = self._send("POST", "/api/ml", "connect the model server", json=body)
        return int(made["id"])
