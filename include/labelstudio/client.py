"""A small Label Studio REST client over ``requests``.

Why not label-studio-sdk: the SDK's 2.x API changed incompatibly from 1.x, pulls a large
dependency tree (pydantic models for every endpoint) into the Airflow environment, and hides
the two things this platform needs to control exactly: which calls are retried (a retried bulk
import POST would duplicate tasks) and the Data Manager query used for incremental export.

Behaviour:
* A Personal Access Token (a JWT refresh token) is exchanged at ``/api/token/refresh/`` for a
  short-lived access token, sent as ``Bearer``; a 401 refreshes once and retries. A legacy
  token is sent as ``Token``.
* Every call has a timeout. Connection failures are retried with exponential backoff for every
  method (the request never reached the server); 5xx and read timeouts only for idempotent
  methods. POSTs that create things are never blindly re-sent.
* 401/403/404 and invalid label configs raise errors that name the URL, the project and the fix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from include.errors import Unavailable

log = logging.getLogger(__name__)

RETRY_STATUSES = (500, 502, 503, 504)


class LabelStudioError(Unavailable, RuntimeError):
    """Any failure talking to Label Studio; the message says what to fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.ls_status = status


class LabelStudioAuthError(LabelStudioError):
    """The token was rejected (401) or lacks permission (403)."""


class LabelStudioNotFound(LabelStudioError):
    """The project, task or annotation does not exist (404)."""


class LabelStudioConfigError(LabelStudioError):
    """A label config is invalid or does not match what the platform needs."""


class LabelStudioUnavailable(LabelStudioError):
    """Label Studio could not be reached or kept failing (connection errors, timeouts, 5xx)."""


def is_jwt(token: str) -> bool:
    """Personal Access Tokens are JWTs (three dot-separated parts); legacy tokens are hex."""
    return token.count(".") == 2


def format_ls_datetime(value: datetime) -> str:
    """The only datetime format Label Studio's Data Manager filters accept."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ls_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        if body.get("validation_errors"):
            return json.dumps(body["validation_errors"])[:500]
        for key in ("detail", "error", "label_config"):
            if body.get(key):
                return str(body[key])[:500]
    return json.dumps(body)[:500]


class LabelStudioClient:
    """Label Studio API calls used by the platform. Thread-unsafe: one per task or request."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        if not token:
            raise LabelStudioAuthError("no Label Studio token given: set LS_API_TOKEN")
        self.base_url = base_url.rstrip("/")
        self.token = token.strip()
        self.timeout = (connect_timeout, timeout)
        self._access: str | None = None
        self.session = requests.Session()
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            backoff_factor=backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    # -- transport -------------------------------------------------------------------------
    def _auth_header(self, refresh: bool = False) -> dict[str, str]:
        if not is_jwt(self.token):
            return {"Authorization": f"Token {self.token}"}
        if self._access is None or refresh:
            self._access = self._refresh_access_token()
        return {"Authorization": f"Bearer {self._access}"}

    def _refresh_access_token(self) -> str:
        url = f"{self.base_url}/api/token/refresh/"
        try:
            response = self.session.post(url, json={"refresh": self.token}, timeout=self.timeout)
        except requests.RequestException as exc:
            raise LabelStudioUnavailable(f"cannot reach Label Studio at {self.base_url}: {exc}") from exc
        if response.status_code in (400, 401, 403):
            raise LabelStudioAuthError(
                f"Label Studio at {self.base_url} rejected the Personal Access Token ({response.status_code}: "
                f"{_detail(response)}). Create a new token in Label Studio (Account & Settings > Personal Access "
                "Token) and set LS_API_TOKEN.",
                status=response.status_code,
            )
        if not response.ok:
            raise LabelStudioUnavailable(
                f"Label Studio at {self.base_url} failed to refresh the token ({response.status_code})",
                status=response.status_code,
            )
        return str(response.json()["access"])

    def request(
        self,
        method: str,
        path: str,
        *,
        project_id: int | None = None,
        params: Any = None,
        json_body: Any = None,
        timeout: float | None = None,
        expected_missing: bool = False,
    ) -> Any:
        """Send one call; return its JSON (or None for 204). Raises a LabelStudioError subclass."""
        url = f"{self.base_url}{path}"
        req_timeout = self.timeout if timeout is None else (self.timeout[0], timeout)
        where = f"Label Studio at {self.base_url}" + (f", project {project_id}" if project_id else "")
        for attempt in range(2):
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=self._auth_header(refresh=attempt > 0),
                    timeout=req_timeout,
                )
            except requests.RequestException as exc:
                raise LabelStudioUnavailable(
                    f"{where}: {method} {path} failed: {exc.__class__.__name__}: {exc}"
                ) from exc
            if response.status_code == 401 and attempt == 0 and is_jwt(self.token):
                continue  # the access token expired: refresh once
            break
        status = response.status_code
        if status in (401, 403):
            raise LabelStudioAuthError(
                f"{where}: {method} {path} was refused ({status}: {_detail(response)}). Check LS_API_TOKEN: "
                "use a Personal Access Token of a user in this project's organization (legacy tokens are "
                "disabled by default since Label Studio 1.22).",
                status=status,
            )
        if status == 404:
            if expected_missing:
                return None
            raise LabelStudioNotFound(
                f"{where}: {method} {path} found nothing (404: {_detail(response)}). "
                + ("Check LS_PROJECT_ID or the dataset's project." if project_id else ""),
                status=status,
            )
        if status >= 500:
            raise LabelStudioUnavailable(
                f"{where}: {method} {path} failed with {status}: {_detail(response)}", status=status
            )
        if status >= 400:
            message = f"{where}: {method} {path} was rejected ({status}): {_detail(response)}"
            if "label_config" in response.text:
                raise LabelStudioConfigError(message, status=status)
            raise LabelStudioError(message, status=status)
        if status == 204 or not response.content:
            return None
        return response.json()

    # -- server ----------------------------------------------------------------------------
    def check_access(self) -> None:
        """Fail early with a clear message when the URL or token is wrong."""
        self.request("GET", "/api/projects", params={"page_size": 1})

    # -- projects --------------------------------------------------------------------------
    def get_project(self, project_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/projects/{project_id}", project_id=project_id))

    def create_project(self, title: str, label_config: str, description: str = "") -> dict[str, Any]:
        body = {"title": title, "label_config": label_config, "description": description}
        return dict(self.request("POST", "/api/projects", json_body=body))

    def update_project(self, project_id: int, **fields: Any) -> dict[str, Any]:
        return dict(self.request("PATCH", f"/api/projects/{project_id}", project_id=project_id, json_body=fields))

    def connect_ml_backend(
        self, project_id: int, url: str, title: str, *, user: str | None = None, password: str | None = None
    ) -> dict[str, Any]:
        """Connect an ML backend to a project (Label Studio calls its /health and /setup first)."""
        body: dict[str, Any] = {"project": project_id, "url": url, "title": title, "is_interactive": False}
        if user or password:
            body.update(auth_method="BASIC_AUTH", basic_auth_user=user or "", basic_auth_pass=password or "")
        return dict(self.request("POST", "/api/ml/", project_id=project_id, json_body=body))

    def delete_project(self, project_id: int) -> None:
        self.request("DELETE", f"/api/projects/{project_id}", project_id=project_id, expected_missing=True)

    # -- tasks -----------------------------------------------------------------------------
    def update_task_data(self, task_id: int, data: dict[str, Any], *, project_id: int | None = None) -> None:
        """Replace a task's data (its text, after a policy de-identified it): ``PATCH /api/tasks/<id>/``.
        Label Studio keeps the task's annotations and predictions."""
        self.request("PATCH", f"/api/tasks/{task_id}/", project_id=project_id, json_body={"data": data})

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]], timeout: float = 600) -> list[int]:
        """Bulk-create tasks; returns their ids in input order. Never retried automatically."""
        body = self.request(
            "POST",
            f"/api/projects/{project_id}/import",
            project_id=project_id,
            params={"return_task_ids": "true"},
            json_body=list(tasks),
            timeout=timeout,
        )
        ids = [int(i) for i in body.get("task_ids", [])]
        if len(ids) != len(tasks):
            raise LabelStudioError(
                f"Label Studio at {self.base_url}, project {project_id}: imported {len(tasks)} tasks but got "
                f"{len(ids)} ids back"
            )
        return ids

    def list_tasks_page(
        self,
        project_id: int,
        *,
        page: int = 1,
        page_size: int = 1000,
        filters: list[dict[str, Any]] | None = None,
        ordering: list[str] | None = None,
        fields: str = "all",
        include: Sequence[str] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the Data Manager task list: (tasks, total). Past the last page: ([], total)."""
        query: dict[str, Any] = {"filters": {"conjunction": "and", "items": filters or []}}
        if ordering:
            query["ordering"] = ordering
        params: dict[str, Any] = {
            "project": project_id,
            "page": page,
            "page_size": page_size,
            "fields": fields,
            "query": json.dumps(query),
        }
        if include:
            params["include"] = ",".join(include)
        body = self.request("GET", "/api/tasks", project_id=project_id, params=params, expected_missing=True)
        if body is None:  # "Invalid page."
            return [], 0
        return list(body.get("tasks", [])), int(body.get("total", 0))

    def iter_tasks(
        self,
        project_id: int,
        *,
        filters: list[dict[str, Any]] | None = None,
        page_size: int = 1000,
        fields: str = "all",
        include: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """All tasks matching ``filters``, ordered by id, page by page (keyset on id, so safe
        against tasks being added or deleted while paging)."""
        last_id = 0
        while True:
            page_filters = [*(filters or []), id_greater_than(last_id)]
            tasks, _ = self.list_tasks_page(
                project_id,
                page_size=page_size,
                filters=page_filters,
                ordering=["tasks:id"],
                fields=fields,
                include=include,
            )
            if not tasks:
                return
            yield from tasks
            last_id = max(int(t["id"]) for t in tasks)
            if len(tasks) < page_size:
                return

    def tasks_updated_since(
        self,
        project_id: int,
        since: datetime | None,
        *,
        filters: list[dict[str, Any]] | None = None,
        page_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Tasks (with annotations) whose ``updated_at`` >= ``since`` (all when None), oldest first.

        Keyset pagination on updated_at: a task updated while we page moves to the end of the
        order and is seen again rather than skipped, which page numbers cannot promise.
        """
        cursor = since
        seen_at_cursor: set[int] = set()
        while True:
            page_filters = list(filters or [])
            if cursor is not None:
                page_filters.append(
                    {
                        "filter": "filter:tasks:updated_at",
                        "operator": "greater_or_equal",
                        "type": "Datetime",
                        "value": format_ls_datetime(cursor),
                    }
                )
            tasks, _ = self.list_tasks_page(
                project_id, page_size=page_size, filters=page_filters, ordering=["tasks:updated_at"], fields="all"
            )
            fresh = [t for t in tasks if int(t["id"]) not in seen_at_cursor]
            if not fresh:
                return
            yield from fresh
            newest = parse_ls_datetime(tasks[-1]["updated_at"])
            if cursor is not None and newest == cursor:
                seen_at_cursor.update(int(t["id"]) for t in tasks)
            else:
                seen_at_cursor = {int(t["id"]) for t in tasks if parse_ls_datetime(t["updated_at"]) == newest}
            cursor = newest
            if len(tasks) < page_size:
                return

    def delete_tasks(self, project_id: int, task_ids: Sequence[int]) -> int:
        """Delete tasks (with their annotations and predictions)."""
        return self._data_manager_action(project_id, "delete_tasks", task_ids)

    def _data_manager_action(self, project_id: int, action: str, task_ids: Sequence[int]) -> int:
        """Run a Data Manager action on selected tasks; returns how many it processed."""
        if not task_ids:
            return 0
        body = self.request(
            "POST",
            "/api/dm/actions",
            project_id=project_id,
            params={"id": action, "project": project_id},
            json_body={"selectedItems": {"all": False, "included": [int(i) for i in task_ids]}},
            timeout=600,
        )
        return int((body or {}).get("processed_items", 0))

    # -- annotations -----------------------------------------------------------------------
    def create_annotation(
        self,
        task_id: int,
        result: list[dict[str, Any]],
        *,
        completed_by: int | None = None,
        ground_truth: bool = False,
        import_id: int | None = None,
        lead_time: float | None = None,
        was_cancelled: bool = False,
    ) -> dict[str, Any]:
        """Create an annotation, attributed to ``completed_by`` (a Label Studio user id) if given.

        ``import_id`` is stored with it: the platform puts its outbox entry id there, so a second
        delivery of the same entry can find the first. ``lead_time``: the seconds it took.
        ``was_cancelled``: a skip (Label Studio's own "Skip" makes the same).
        """
        body: dict[str, Any] = {"result": result}
        if was_cancelled:
            body["was_cancelled"] = True
        if lead_time is not None:
            body["lead_time"] = lead_time
        if completed_by is not None:
            body["completed_by"] = completed_by
        if ground_truth:
            body["ground_truth"] = True
        if import_id is not None:
            body["import_id"] = import_id
        return dict(self.request("POST", f"/api/tasks/{task_id}/annotations", json_body=body))

    def update_annotation(
        self,
        annotation_id: int,
        result: list[dict[str, Any]],
        *,
        lead_time: float | None = None,
        was_cancelled: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"result": result, "was_cancelled": was_cancelled}
        if lead_time is not None:
            body["lead_time"] = lead_time
        return dict(self.request("PATCH", f"/api/annotations/{annotation_id}", json_body=body))

    def tasks_by_id(self, project_id: int, task_ids: Sequence[int]) -> list[dict[str, Any]]:
        """These tasks of the project, with their annotations, in one request."""
        if not task_ids:
            return []
        query = {
            "filters": {"conjunction": "and", "items": []},
            "selectedItems": {"all": False, "included": [int(i) for i in task_ids]},
        }
        body = self.request(
            "GET",
            "/api/tasks",
            project_id=project_id,
            params={"project": project_id, "fields": "all", "page_size": len(task_ids), "query": json.dumps(query)},
        )
        return list((body or {}).get("tasks", []))

    def delete_annotation(self, annotation_id: int) -> None:
        self.request("DELETE", f"/api/annotations/{annotation_id}", expected_missing=True)

    # -- predictions -----------------------------------------------------------------------
    def import_predictions(self, project_id: int, predictions: Sequence[dict[str, Any]]) -> int:
        """Bulk-create predictions; returns how many Label Studio created."""
        if not predictions:
            return 0
        body = self.request(
            "POST",
            f"/api/projects/{project_id}/import/predictions",
            project_id=project_id,
            json_body=list(predictions),
            timeout=600,
        )
        return int(body.get("created", 0))

    def delete_predictions(self, project_id: int, task_ids: Sequence[int]) -> int:
        """Remove all predictions of the given tasks (before writing a fresh set)."""
        return self._data_manager_action(project_id, "delete_tasks_predictions", task_ids)

    # -- users -----------------------------------------------------------------------------
    def list_users(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/users"))

    def create_user(self, email: str, username: str, first_name: str = "", last_name: str = "") -> dict[str, Any]:
        body = {"email": email, "username": username, "first_name": first_name, "last_name": last_name}
        return dict(self.request("POST", "/api/users", json_body=body))


def id_greater_than(task_id: int) -> dict[str, Any]:
    return {"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": int(task_id)}
