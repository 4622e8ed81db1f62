"""Who may see what: every page and API route against every role."""

from __future__ import annotations

import pytest

from tests.webapp.conftest import api_token, login
from tests.webapp.factories import dataset_with_tasks

ADMIN_PAGES = [
    "/admin/",
    "/admin/datasets/new",
    "/admin/datasets/{ds}",
    "/admin/tasks",
    "/admin/users",
    "/admin/pipelines",
    "/admin/jobs",
    "/admin/jobs.json",
    "/admin/tasks/{task}/resolve",
    "/admin/models",
    "/admin/experiments/1",
]
ADMIN_POSTS = [
    "/admin/datasets/{ds}/delete",
    "/admin/datasets/{ds}/auto-assign",
    "/admin/datasets/{ds}/upload",
    "/admin/tasks/{task}/assign",
    "/admin/tasks/{task}/unassign",
    "/admin/pipelines/ls_import/run",
    "/admin/users/{alice}/reset-password",
    "/admin/users/{alice}/toggle-active",
]
ANNOTATOR_PAGES = ["/me/tasks", "/me/next"]
ADMIN_API = [
    ("GET", "/api/v1/datasets"),
    ("POST", "/api/v1/datasets"),
    ("GET", "/api/v1/datasets/{ds}/stats"),
    ("GET", "/api/v1/datasets/{ds}/priority_tasks"),
    ("POST", "/api/v1/datasets/{ds}/auto_assign"),
    ("POST", "/api/v1/tasks/{task}/assign/alice"),
    ("POST", "/api/v1/tasks/{task}/unassign"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/1"),
    ("POST", "/api/v1/pipelines/ls_import"),
    ("POST", "/api/v1/datasets/{ds}/import_to_ls"),
    ("POST", "/api/v1/datasets/{ds}/export_from_ls"),
]
ANNOTATOR_API = [("GET", "/api/v1/annotator/tasks"), ("GET", "/api/v1/annotator/stats")]


@pytest.fixture
def ids(db, users) -> dict[str, int]:
    ds, tasks = dataset_with_tasks(db, "perm", 3)
    return {"ds": ds, "task": tasks[0], "alice": users["alice"]}


def fill(path: str, ids: dict[str, int]) -> str:
    return path.format(**ids)


def test_anonymous_is_sent_to_login(client, ids) -> None:
    for path in ADMIN_PAGES + ANNOTATOR_PAGES + ["/me/tasks/{task}"]:
        response = client.get(fill(path, ids))
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    for path in ADMIN_POSTS:
        assert client.post(fill(path, ids)).status_code == 302, path


def test_annotators_get_403_on_admin_pages(client, ids) -> None:
    login(client, "alice")
    for path in ADMIN_PAGES:
        response = client.get(fill(path, ids))
        assert response.status_code == 403, path
        assert b"perm text" not in response.data and b"Traceback" not in response.data
    for path in ADMIN_POSTS:
        assert client.post(fill(path, ids)).status_code == 403, path


def test_admins_get_403_on_annotator_pages(client, ids) -> None:
    login(client, "admin")
    for path in [*ANNOTATOR_PAGES, "/me/tasks/{task}"]:
        assert client.get(fill(path, ids)).status_code == 403, path


def test_another_annotators_task_is_404(db, client, ids) -> None:
    from include.db.models import Task, TaskStatus
    from include.db.session import session_scope

    with session_scope(db) as s:
        s.query(Task).filter_by(id=ids["task"]).update({"assigned_to": ids["alice"], "status": TaskStatus.ASSIGNED})
    login(client, "bob")
    for response in (
        client.get(f"/me/tasks/{ids['task']}"),
        client.post(f"/me/tasks/{ids['task']}/label", data={"label": "OK"}),
        client.get("/me/tasks/999999"),
    ):
        assert response.status_code == 404
        assert b"perm text" not in response.data
    login(client, "alice")
    assert client.get(f"/me/tasks/{ids['task']}").status_code == 200


def test_api_needs_a_valid_token(client, ids) -> None:
    for method, path in ADMIN_API + ANNOTATOR_API:
        response = client.open(fill(path, ids), method=method)
        assert response.status_code == 401 and "token" in response.json["error"], path
    bad = {"Authorization": "Bearer not-a-token"}
    assert client.get("/api/v1/me", headers=bad).status_code == 401


def test_api_roles(client, ids) -> None:
    annotator = api_token(client, "alice")
    admin = api_token(client, "admin")
    for method, path in ADMIN_API:
        response = client.open(fill(path, ids), method=method, headers=annotator, json={})
        assert response.status_code == 403, path
    for method, path in ANNOTATOR_API:
        assert client.open(fill(path, ids), method=method, headers=admin).status_code == 403, path


def test_a_password_change_revokes_api_tokens(db, client, ids) -> None:
    from include.db.models import User
    from include.db.session import session_scope
    from include.services.users import set_password

    headers = api_token(client, "alice")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    with session_scope(db) as s:
        set_password(s.query(User).filter_by(username="alice").one(), "another-password-1")
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_errors_show_no_internals(app, client, monkeypatch) -> None:
    login(client, "admin")
    import webapp.admin.pipelines as routes

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(routes, "recent_jobs", boom)
    response = client.get("/admin/jobs")
    assert response.status_code == 500
    assert b"secret internal detail" not in response.data and b"Traceback" not in response.data
    assert b"Something went wrong on our side" in response.data
    assert client.get("/nope").status_code == 404
