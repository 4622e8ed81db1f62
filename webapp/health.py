"""``/healthz``: each dependency checked on its own, and ``/livez``: the process answers.

``/healthz`` also says how far Label Studio is behind (labels waiting in the outbox, the age of
the oldest, the last minute's delivery rate); that part never changes the status code.

Checks run side by side with short timeouts, so the answer comes within about a second even
when a dependency hangs. The status code is 200 only when every configured dependency is
healthy (503 otherwise); the body says which one is not and why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from include.airflow_client import AirflowClient, AirflowError, AirflowUnavailable
from include.services import label_outbox, webhooks
from webapp.extensions import db

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
TIMEOUT = 1.0
# Airflow components whose health the platform needs to run its pipelines.
AIRFLOW_REQUIRED = ("metadatabase", "scheduler")


def _timed(name: str, check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:
        log.warning("health check of %s failed: %s: %s", name, exc.__class__.__name__, exc)
        result = {"ok": False, "error": _reason(exc)}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _reason(exc: BaseException) -> str:
    """A fixed phrase for what went wrong, safe to answer to anyone."""
    if isinstance(exc, requests.Timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, requests.ConnectionError | ConnectionError | AirflowUnavailable | OperationalError):
        return "not reachable"
    if isinstance(exc, AirflowError):
        return "refused the platform's request (see the web app's log)"
    return "failed (see the web app's log)"


def _database() -> dict[str, Any]:
    db.session.execute(text("SELECT 1"))
    return {"ok": True}


def _lag() -> dict[str, Any]:
    """How far Label Studio is behind the platform: labels on their way and webhooks not yet
    told to Airflow. Informational: a lagging Label Studio delays only its own views, so it
    never turns the answer to 503 (a load balancer would take the web app away for it)."""
    outbox = label_outbox.summary(db.session())
    return {
        "label_outbox": {
            "waiting": outbox.waiting,
            "oldest_waiting_s": round(outbox.lag_seconds(), 1),
            "failing": outbox.failing,
            "undeliverable": outbox.dead,
            "delivered_last_minute": outbox.sent_last_minute,
        },
        "webhooks_waiting": webhooks.pending_count(db.session()),
    }


def _label_studio(url: str) -> dict[str, Any]:
    response = requests.get(f"{url}/health", timeout=TIMEOUT)
    return {"ok": response.ok, **({} if response.ok else {"error": f"answered {response.status_code}"})}


def _airflow(url: str, user: str, password: str) -> dict[str, Any]:
    components = AirflowClient(url, user, password, timeout=TIMEOUT).health()
    unhealthy = [name for name in AIRFLOW_REQUIRED if components.get(name) != "healthy"]
    report: dict[str, Any] = {"ok": not unhealthy, "components": components}
    if unhealthy:
        report["error"] = "unhealthy: " + ", ".join(f"{n} ({components.get(n)})" for n in unhealthy)
    return report


@bp.get("/healthz")
def healthz() -> Any:
    """Database, Label Studio and Airflow, each with ok, error and milliseconds."""
    cfg = current_app.config
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    remote: dict[str, Callable[[], dict[str, Any]]] = {}
    if cfg.get("LS_URL"):
        remote["label_studio"] = lambda: _label_studio(cfg["LS_URL"])
    if cfg.get("AIRFLOW_API_URL") and cfg.get("AIRFLOW_API_PASSWORD"):
        remote["airflow"] = lambda: _airflow(
            cfg["AIRFLOW_API_URL"], cfg.get("AIRFLOW_API_USER") or "webapp", cfg["AIRFLOW_API_PASSWORD"]
        )
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_timed, name, check) for name, check in remote.items()}
        with app.app_context():
            checks = {"database": _timed("database", _database)}
            lag: dict[str, Any] = {}
            if checks["database"]["ok"]:
                try:
                    lag = _lag()
                except Exception as exc:  # the answer about the dependencies comes first
                    log.warning("health: the outbox lag could not be read: %s", exc)
        if not checks["database"]["ok"]:
            db.session.rollback()
        checks.update({name: future.result() for name, future in futures.items()})
    healthy = all(check["ok"] for check in checks.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "degraded", "checks": checks, **lag}
    if not checks["database"]["ok"]:
        body["status"] = "down"
    return jsonify(body), 200 if healthy else 503


@bp.get("/livez")
def livez() -> Any:
    """The process is up and serving (no dependency is checked)."""
    return {"status": "alive"}
