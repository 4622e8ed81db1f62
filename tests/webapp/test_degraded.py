"""With the database down, every page and API route answers the app's own 503 at once, and
everything works again when it returns, without restarting anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from include.db.migrate import upgrade
from include.db.models import Role
from include.db.session import session_scope
from include.runtime.embedded_pg import EmbeddedPostgres, free_port
from include.services.users import create_user
from tests.webapp.conftest import PASSWORD, make_app


@pytest.fixture
def own_postgres(tmp_path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of this test's own, so stopping it disturbs no other test."""
    server = EmbeddedPostgres(tmp_path / "pg", free_port())
    server.start()
    url = server.ensure_database("degraded")
    upgrade(url)
    with session_scope(url) as s:
        create_user(s, "admin", "admin@degraded.test", PASSWORD, Role.ADMIN)
        create_user(s, "alice", "alice@degraded.test", PASSWORD, Role.ANNOTATOR)
    try:
        yield server, url
    finally:
        server.stop()


def _timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_pages_and_api_answer_503_and_recover(own_postgres) -> None:
    server, url = own_postgres
    app = make_app(url)
    admin, annotator, api = app.test_client(), app.test_client(), app.test_client()
    admin.post("/login", data={"username": "admin", "password": PASSWORD})
    annotator.post("/login", data={"username": "alice", "password": PASSWORD})
    token = api.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).json["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert admin.get("/admin/").status_code == 200

    server.stop()
    checks = [
        (admin, "/admin/", {}),
        (admin, "/admin/tasks", {}),
        (admin, "/admin/nothing-here", {}),  # a 404 page needs the user too
        (annotator, "/me/tasks", {}),
        (api, "/api/v1/jobs", {"headers": headers}),
        (api, "/api/v1/datasets", {"headers": headers}),
    ]
    for client, path, kwargs in checks:
        response, seconds = _timed(lambda c=client, p=path, k=kwargs: c.get(p, **k))
        assert response.status_code == 503, (path, response.status_code)
        assert seconds < 1.0, (path, seconds)
        assert response.headers["Retry-After"] == "5"
        if path.startswith("/api/"):
            assert response.json == {
                "error": "The database is unavailable right now. Try again in a few seconds; nothing was changed.",
                "status": 503,
            }
        else:
            assert b"Database unavailable" in response.data and b"Traceback" not in response.data
    login, seconds = _timed(lambda: app.test_client().post("/login", data={"username": "alice", "password": PASSWORD}))
    assert login.status_code == 503 and seconds < 1.0
    health = app.test_client().get("/healthz")
    assert health.status_code == 503 and health.json["status"] == "down"
    # Public: a fixed phrase, never the driver's message (hosts, ports, users).
    assert health.json["checks"]["database"]["error"] == "not reachable"
    assert "127.0.0.1" not in health.get_data(as_text=True) and "psycopg" not in health.get_data(as_text=True)
    assert app.test_client().get("/livez").status_code == 200

    server.start()
    assert admin.get("/admin/").status_code == 200  # the same app, not restarted
    assert annotator.get("/me/tasks").status_code == 200
    assert api.get("/api/v1/jobs", headers=headers).status_code == 200
