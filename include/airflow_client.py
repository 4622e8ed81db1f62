"""Airflow 3 REST client (``/auth/token`` + ``/api/v2``) used by the web app and the launcher."""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any
from urllib.parse import quote

import requests

from include.errors import Unavailable


class AirflowError(Unavailable, RuntimeError):
    """Airflow refused or failed a call; the message is safe to show to an admin."""


class AirflowUnavailable(AirflowError):
    """Airflow could not be reached."""


TERMINAL_STATES = ("success", "failed")


class AirflowClient:
    """Triggers DAG runs and reads their state as a SimpleAuthManager user."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self._token: str | None = None
        self._expires = 0.0
        self._asset_ids: dict[str, int] = {}
        self.session = requests.Session()

    def _auth(self) -> dict[str, str]:
        if self._token is None or time.time() > self._expires - 300:
            try:
                response = self.session.post(
                    f"{self.base_url}/auth/token",
                    json={"username": self.username, "password": self.password},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise AirflowUnavailable(
                    f"Airflow at {self.base_url} is not reachable ({exc.__class__.__name__})"
                ) from exc
            if response.status_code in (401, 403):
                raise AirflowError(
                    f"Airflow at {self.base_url} rejected user {self.username!r}: "
                    "check AIRFLOW_API_USER / AIRFLOW_API_PASSWORD"
                )
            if not response.ok:
                raise AirflowError(f"Airflow at {self.base_url} could not issue a token ({response.status_code})")
            self._token = response.json()["access_token"]
            self._expires = time.time() + 3600
        return {"Authorization": f"Bearer {self._token}"}

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}/api/v2{path}"
        for attempt in range(2):
            try:
                response = self.session.request(method, url, headers=self._auth(), timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                raise AirflowUnavailable(
                    f"Airflow at {self.base_url} is not reachable ({exc.__class__.__name__})"
                ) from exc
            if response.status_code == 401 and attempt == 0:
                self._token = None
                continue
            break
        if response.status_code == 404:
            raise AirflowError(
                f"Airflow has no {path.split('/')[2] if path.count('/') > 1 else path} ({response.status_code})"
            )
        if not response.ok:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:300]
            raise AirflowError(f"Airflow refused {method} {path} ({response.status_code}): {detail}")
        return response.json() if response.content else None

    def health(self) -> dict[str, str]:
        """Each component's status ("healthy", "unhealthy", ...) from ``/api/v2/monitor/health``.

        That endpoint answers 200 even when it reports the metadata database unhealthy: read
        the statuses, not the status code.

        Raises:
            AirflowUnavailable: the api-server does not answer.
        """
        try:
            response = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=self.timeout)
            body = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise AirflowUnavailable(f"Airflow at {self.base_url} is not reachable ({exc.__class__.__name__})") from exc
        if not isinstance(body, dict):
            raise AirflowUnavailable(f"Airflow at {self.base_url} answered {response.status_code} without a report")
        return {name: str((part or {}).get("status")) for name, part in body.items() if isinstance(part, dict | None)}

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        """Every try of one task instance (finished ones from its history, and the current one)."""
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id)}"
        if map_index >= 0:
            path += f"/{map_index}"
        body = self._request("GET", f"{path}/tries")
        return list((body or {}).get("task_instances", []))

    def trigger(
        self, dag_id: str, conf: dict[str, Any] | None = None, run_id: str | None = None, note: str | None = None
    ) -> dict[str, Any]:
        """Start a run now (``logical_date: null`` allows several at once); returns the DagRun."""
        body: dict[str, Any] = {"logical_date": None, "conf": conf or {}, "dag_run_id": run_id or new_run_id()}
        if note:
            body["note"] = note
        return dict(self._request("POST", f"/dags/{quote(dag_id)}/dagRuns", json=body))

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}"))

    def stop_run(self, dag_id: str, run_id: str, note: str) -> dict[str, Any]:
        """Mark a run failed: Airflow terminates its running tasks and schedules no more of them."""
        path = f"/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}"
        self._request("PATCH", path, json={"state": "failed"})
        with contextlib.suppress(AirflowError):  # the note is for people; the state change is what matters
            self._request("PATCH", path, json={"note": note}, params={"update_mask": "note"})
        return self.get_run(dag_id, run_id)

    def asset_event(self, uri: str, extra: dict[str, Any]) -> dict[str, Any]:
        """Record an event on the asset with this URI (the DAGs scheduled on it run); needs a user
        with the ``op`` role or higher.

        Raises:
            AirflowError: no DAG declares the asset yet (the DAG files are not parsed), or refused.
        """
        asset_id = self._asset_ids.get(uri)
        if asset_id is None:
            body = self._request("GET", "/assets", params={"uri_pattern": uri, "limit": 100})
            matches = [a for a in (body or {}).get("assets", []) if a.get("uri") == uri]
            if not matches:
                raise AirflowError(f"Airflow knows no asset {uri!r} yet (are the LabelOps DAGs parsed?)")
            asset_id = self._asset_ids[uri] = int(matches[0]["id"])
        return dict(self._request("POST", "/assets/events", json={"asset_id": asset_id, "extra": extra}))

    def unpause(self, dag_id: str) -> None:
        self._request("PATCH", f"/dags/{quote(dag_id)}", json={"is_paused": False})

    def dag_ids(self) -> list[str]:
        body = self._request("GET", "/dags", params={"limit": 100})
        return [d["dag_id"] for d in body.get("dags", [])]

    def wait(self, dag_id: str, run_id: str, timeout: float = 600, poll: float = 2) -> str:
        """Poll until the run ends; returns its final state."""
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.get_run(dag_id, run_id).get("state"))
            if state in TERMINAL_STATES:
                return state
            if time.monotonic() > deadline:
                raise AirflowError(f"{dag_id} run {run_id} still {state} after {timeout:.0f} s")
            time.sleep(poll)


def new_run_id(prefix: str = "webapp") -> str:
    """Our own run ids make retried triggers idempotent (a duplicate is answered 409)."""
    return f"{prefix}__{uuid.uuid4().hex[:16]}"
