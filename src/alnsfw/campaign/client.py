"""Where tasks go and labels come from: a Label Studio server (REST API) or files (no server).

Both give the campaign the same calls: `push(tasks)` (idempotent: rows already sent are not sent
again), `pull()` (every task of the project with its annotations, in Label Studio's JSON export
format), `sent_rows()`, `users()` (user id -> email) and `scheme` (how choices map to the two
classes). The server client also keeps Label Studio's queue on our ranking
(`set_model_version`, `replace_predictions`), sends tied items back to the queue (`requeue`) and
exports the project once per round: `pull()` exports, and `sent_rows()` / `push()` answer from
that pull. Errors that a person can fix (server down, token wrong, file missing) become a
`ClientError` whose message says what to do; nothing has changed then.

An export FILE never tells which tasks were deleted: it may be older than the last pull or
filtered (Export of a Data Manager tab). So the file route reports its pull as incomplete
(`pull()[1] is False`): tasks missing from the file keep their labels and are never taken as
deleted, annotation deletions are read only inside the tasks the file holds, and only when the
file is not older than the logged annotation (labels.LabelLog.diff, `not_after`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from alnsfw.campaign.labels import LabelInputError, LabelScheme, label_config, task_rows
from alnsfw.io import write_json

# Data fields the Data Manager shows as numbers (its column type comes from the tab's
# `columnsDisplayType`; data fields outside the labelling config are 'Unknown' otherwise).
NUMBER_COLUMNS = ("al_rank", "al_score", "time_s", "frame", "round", "alnsfw_row", "confidence")
VIEW_TITLE = "alnsfw"
PROJECT_SETTINGS = {
    "show_skip_button": True,
    "enable_empty_annotation": False,  # the web page refuses an empty Submit (the API does not)
    "sampling": "Uncertainty sampling",  # lowest prediction score of the project's version first
}


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

    def users(self) -> dict[int, str]:
        """user id -> email (else username) of the people who may have annotated."""
        ...


@dataclass(frozen=True)
class PredictionItem:
    """The model's answer for one open task: class 0/1 (None: show no guess), and the score
    Label Studio's "Uncertainty sampling" orders by (lowest first)."""

    task_id: int
    label: int | None
    score: float
    labels: tuple[int | None, ...] | None = None  # a unit task: one guess per keyframe


class FileClient:
    """No server: tasks are written as Label Studio task-import JSON, labels read from a JSON
    export file that Label Studio wrote (Export -> JSON), accepted as is."""

    def __init__(
        self,
        task_dir: str | Path,
        export_file: str | Path | None = None,
        scheme: LabelScheme | None = None,
    ) -> None:
        self.task_dir = Path(task_dir)
        self.export_file = None if export_file is None else Path(export_file)
        self.scheme = scheme or LabelScheme()

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
        # A file may be older than the last pull, or filtered: never read absence as deletion.
        return data, False

    def sent_rows(self) -> set[int] | None:
        return None

    def users(self) -> dict[int, str]:
        """An export names annotators by user id only."""
        return {}


class LabelStudioClient:
    """A Label Studio server (1.23.2 checked) through its REST API, with `requests`.

    The same endpoints label-studio-sdk 2.1.2 calls (projects, localfiles storage, import,
    export, predictions, Data Manager views); the SDK itself cannot share this environment
    (pyproject.toml, extra `campaign`). The token comes from the environment variable
    `token_env` only; it is never written to config, logs or results. A legacy token is sent as
    `Token ...`; a personal access token (a JWT refresh token) is exchanged at
    /api/token/refresh/ for an access token, as the SDK does.

    `project_id` is the campaign's project once made (campaign.json); `existing_project` a
    team's project to use instead of making one (campaign.labelstudio.project_id): its labelling
    config is checked against `scheme`, and the local-files storage added if missing.
    """

    def __init__(
        self,
        url: str,
        token_env: str,
        title: str,
        image_dir: str | Path,
        timeout: float = 30.0,
        project_id: int | None = None,
        scheme: LabelScheme | None = None,
        existing_project: int | None = None,
        blur: str = "none",
        unit: bool = False,
    ) -> None:
        import requests

        self.blur = blur
        self.unit = unit  # al.unit shot / video: a new project gets the Repeater config

        token = os.environ.get(token_env)
        if not token:
            raise ClientError(
                f"no Label Studio token: set the environment variable {token_env} to your "
                "API token (Label Studio -> Account & Settings) and run the command again"
            )
        self.url, self.title, self.image_dir = url.rstrip("/"), title, Path(image_dir)
        self.timeout, self.project_id = float(timeout), project_id
        self.existing_project = existing_project
        self.base_scheme = scheme or LabelScheme()
        self.scheme = self.base_scheme
        self.http = requests.Session()
        self._token = token
        self._auth: str | None = None
        self.last_pull: list[dict[str, Any]] | None = None  # the round's one export
        self._pushed: set[int] = set()  # rows sent since that export
        self._users: dict[int, str] | None = None

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

    # ------------------------------------------------------------------ project
    def ensure_project(self, document_root: Path) -> int:
        """The campaign's project id: the one made before, else the team's project
        (`existing_project`, checked and given our storage and Data Manager tab), else a new
        project with empty submissions off, the choice required, Skip on and Uncertainty
        sampling."""
        if self.project_id is not None:
            return self.project_id
        if self.existing_project is not None:
            self.project_id = int(self.existing_project)
            self._check_project()
        else:
            project = self._send(
                "POST",
                "/api/projects",
                "create the project",
                json={
                    "title": self.title,
                    "label_config": label_config(self.blur, self.unit),
                    **PROJECT_SETTINGS,
                },
            )
            self.project_id = int(project["id"])
        self._ensure_storage()
        self._ensure_view()
        return self.project_id

    def _check_project(self) -> dict[str, Any]:
        """The project, its labelling config checked against the choice mapping."""
        project = self._send("GET", f"/api/projects/{self.project_id}", "read the project")
        try:
            self.scheme = self.base_scheme.for_label_config(str(project.get("label_config") or ""))
        except LabelInputError as err:
            raise ClientError(f"Label Studio project {self.project_id}: {err}") from err
        return project

    def _ensure_storage(self) -> None:
        """A local-files import storage over image_dir, unless one covers it already."""
        self.image_dir.mkdir(parents=True, exist_ok=True)
        # absolute, symlinks kept: Label Studio compares the path as a string with its
        # LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT, which is given unresolved too
        target = Path(os.path.abspath(self.image_dir))
        storages = self._send(
            "GET",
            "/api/storages/localfiles/",
            "list the local storages",
            params={"project": self.project_id},
        )
        for storage in storages or []:
            path = Path(os.path.abspath(str(storage.get("path") or "/nonexistent")))
            if target == path or path in target.parents:
                return
        self._send(
            "POST",
            "/api/storages/localfiles/",
            "add the local import storage",
            json={
                "project": self.project_id,
                "path": str(target),
                "use_blob_urls": True,
                "title": "alnsfw task images",
            },
        )

    def _ensure_view(self) -> None:
        """A Data Manager tab that shows our numeric fields as numbers (sort, filter)."""
        views = self._send(
            "GET",
            "/api/dm/views/",
            "list the Data Manager tabs",
            params={"project": self.project_id},
        )
        if any((v.get("data") or {}).get("title") == VIEW_TITLE for v in views or []):
            return
        types = {f"tasks:data.{name}": "Number" for name in NUMBER_COLUMNS}
        self._send(
            "POST",
            "/api/dm/views/",
            "add the Data Manager tab",
            json={
                "project": self.project_id,
                "data": {"title": VIEW_TITLE, "columnsDisplayType": types},
            },
        )

    # ------------------------------------------------------------------ pull
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

    def pull(self) -> tuple[list[dict[str, Any]], bool]:
        """Export the project (once per call: call it once per round) and remember it; the
        labelling config is checked against the choice mapping each time (a renamed control is
        named here), and the users are read again."""
        self._check_project()
        self.last_pull = self._export()
        self._pushed = set()
        self._users = None
        return self.last_pull, True

    def users(self) -> dict[int, str]:
        """user id -> email (else username), from GET /api/users once per pull; {} when the
        token may not list users (then people are named `user <id>`)."""
        if self._users is None:
            try:
                answer = self._send("GET", "/api/users/", "list the users")
            except ClientError as err:
                if "401" in str(err) or "not reachable" in str(err):
                    raise
                answer = []
            self._users = {
                int(u["id"]): str(u.get("email") or u.get("username") or f"user {u['id']}")
                for u in answer or []
                if isinstance(u, dict) and "id" in u
            }
        return self._users

    def sent_rows(self) -> set[int] | None:
        """Rows with a task: from this round's pull (exported once, if not pulled yet) and the
        pushes since."""
        if self.last_pull is None:
            self.last_pull = self._export()
        return {
            int(row) for t in self.last_pull for row in (task_rows(t.get("data") or {}) or [])
        } | self._pushed

    # ------------------------------------------------------------------ push
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
        rows = [int(t["data"]["alnsfw_row"]) for t in tasks]
        self._pushed |= {int(r) for t in tasks for r in (task_rows(t["data"]) or [])}
        ids = list((answer or {}).get("task_ids") or [])
        if len(ids) != len(tasks):  # servers that do not return ids: look them up by row
            by_row = {
                int(t["data"]["alnsfw_row"]): int(t["id"])
                for t in self._export()
                if isinstance((t.get("data") or {}).get("alnsfw_row"), int)
            }
            return {r: by_row[r] for r in rows}
        return {r: int(i) for r, i in zip(rows, ids)}

    # ------------------------------------------------------------------ the queue
    def set_model_version(self, version: str) -> None:
        """Make `version` the project's model version: Label Studio shows and samples by the
        predictions of that version only."""
        self._send(
            "PATCH",
            f"/api/projects/{self.project_id}",
            "set the project's model version",
            json={"model_version": str(version)},
        )

    def replace_predictions(
        self,
        items: Sequence[PredictionItem],
        model_version: str,
        previous: str | None = None,
    ) -> int:
        """Give each task of `items` a prediction of `model_version` (one bulk import), make
        it the project's version, then delete the predictions of `previous` (our last round's
        version; a team's own versions are never touched). Returns how many were imported.

        In this order the queue never sees a version without predictions: Label Studio's
        "Uncertainty sampling" serves the lowest `score` among predictions whose model_version
        equals the project's. 1,000 predictions take about 0.5 s on 1.23.2 (docs/campaign.md).
        """
        payload = [
            {
                "task": int(item.task_id),
                "model_version": str(model_version),
                "score": float(item.score),
                "result": self.scheme.result(item.label)
                if item.labels is None
                else self.scheme.results(item.labels),
            }
            for item in items
        ]
        bulk = [p for p, item in zip(payload, items) if item.labels is None]
        if bulk:
            self._send(
                "POST",
                f"/api/projects/{self.project_id}/import/predictions",
                "import the predictions",
                json=bulk,
            )
        # A unit task's guesses are on the Repeater's controls (label_0, ...). Label Studio
        # 1.23.2's bulk import checks each prediction against the config's names, which it
        # reads unexpanded (label_{{idx}}), and silently drops them; POST /api/predictions/
        # checks nothing while fflag_feat_utc_210_prediction_validation_15082025 is off (its
        # default), as do the ML backend's /predict answers. One request per unit task.
        for one in (p for p, item in zip(payload, items) if item.labels is not None):
            self._send("POST", "/api/predictions/", "add a unit task's prediction", json=one)
        self.set_model_version(model_version)
        if previous and previous != model_version:
            self._send(
                "DELETE",
                f"/api/projects/{self.project_id}/model-versions/",
                "delete the last round's predictions",
                json={"model_version": str(previous)},
            )
        return len(items)

    def requeue(self, overlaps: Mapping[int, int]) -> int:
        """Serve tasks again: task id -> the number of annotators it needs (its `overlap`),
        and `is_labeled` false, so the label stream gives it to someone who has not answered
        it (Label Studio does not recompute is_labeled when overlap changes)."""
        for task_id, overlap in sorted(overlaps.items()):
            self._send(
                "PATCH",
                f"/api/tasks/{int(task_id)}",
                f"send task {task_id} back to the queue",
                json={"overlap": int(overlap), "is_labeled": False},
            )
        return len(overlaps)

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
