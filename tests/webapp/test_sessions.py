"""Sessions end when they should: logout, a password change or reset, deactivation.

Replays the cookies a browser held before, as someone who copied them would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from include.db.models import User
from include.db.session import session_scope
from include.services.users import set_active, set_password
from tests.webapp.conftest import PASSWORD, make_app


def _cookies(client: Any) -> dict[str, str]:
    return {c.key: c.value for c in client._cookies.values()}


def _login(client: Any, username: str, remember: bool = True) -> dict[str, str]:
    response = client.post("/login", data={"username": username, "password": PASSWORD, "remember": "y"})
    assert response.status_code == 302
    cookies = _cookies(client)
    assert "session" in cookies and ("remember_token" in cookies) == remember
    return cookies


def _replay(app: Any, cookies: dict[str, str], path: str = "/me/tasks") -> int:
    """A fresh browser that only has these cookies."""
    with app.test_client() as other:
        for key, value in cookies.items():
            other.set_cookie(key, value)
        return other.get(path).status_code


@pytest.fixture
def app(db, users):
    return make_app(db)


def test_logout_ends_the_session_and_the_remember_cookie(app) -> None:
    with app.test_client() as client:
        cookies = _login(client, "alice")
        assert _replay(app, cookies) == 200
        assert client.post("/logout").status_code == 302
    assert _replay(app, cookies) == 302  # to the login page
    assert _replay(app, {"remember_token": cookies["remember_token"]}) == 302
    assert _replay(app, {"session": cookies["session"]}) == 302


def test_a_password_reset_ends_every_session(app, db) -> None:
    with app.test_client() as alice:
        cookies = _login(alice, "alice")
    with app.test_client() as admin:
        _login(admin, "admin")
        with session_scope(db) as s:
            alice_id = s.query(User).filter_by(username="alice").one().id
        assert (
            admin.post(f"/admin/users/{alice_id}/reset-password").status_code == 200
        )  # the new password is on the answer itself
    assert _replay(app, cookies) == 302
    assert _replay(app, {"remember_token": cookies["remember_token"]}) == 302


def test_a_password_change_and_deactivation_end_sessions(app, db) -> None:
    with app.test_client() as alice:
        before_change = _login(alice, "alice")
    with session_scope(db) as s:
        set_password(s.query(User).filter_by(username="alice").one(), "a-brand-new-password")
    assert _replay(app, before_change) == 302

    with app.test_client() as bob:
        before_deactivation = _login(bob, "bob")
    with session_scope(db) as s:
        set_active(s, s.query(User).filter_by(username="bob").one(), False)
    assert _replay(app, before_deactivation) == 302
    with session_scope(db) as s:
        set_active(s, s.query(User).filter_by(username="bob").one(), True)
    assert _replay(app, before_deactivation) == 302  # reactivation does not revive old cookies


def test_other_users_sessions_are_untouched(app) -> None:
    with app.test_client() as bob:
        bob_cookies = _login(bob, "bob")
    with app.test_client() as alice:
        _login(alice, "alice")
        alice.post("/logout")
    assert _replay(app, bob_cookies) == 200


def test_remember_me_lasts_two_weeks_not_a_year(app) -> None:
    assert app.config["REMEMBER_COOKIE_DURATION"] == timedelta(days=14)
    with app.test_client() as client:
        response = client.post("/login", data={"username": "alice", "password": PASSWORD, "remember": "y"})
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("remember_token="))
    expires = parsedate_to_datetime(header.split("Expires=")[1].split(";")[0])
    assert timedelta(days=13) < expires - datetime.now(UTC) <= timedelta(days=14)
    assert "HttpOnly" in header


def test_deactivation_returns_open_tasks_to_the_pool(app, db, users) -> None:
    from include.db.models import Task, TaskStatus
    from include.services.assignment import assign_task
    from tests.webapp.factories import dataset_with_tasks

    _, task_ids = dataset_with_tasks(db, "leaver", 3)
    with session_scope(db) as s:
        bob = s.get(User, users["bob"])
        for task_id in task_ids:
            assign_task(s, task_id, bob)
    with app.test_client() as admin:
        _login(admin, "admin")
        page = admin.post(f"/admin/users/{users['bob']}/toggle-active", follow_redirects=True).get_data(as_text=True)
    assert "bob is now deactivated. 3 unlabeled tasks went back to the pool." in page
    with session_scope(db) as s:
        tasks = [s.get(Task, t) for t in task_ids]
        assert all(t.assigned_to is None and t.status == TaskStatus.IMPORTED for t in tasks)
