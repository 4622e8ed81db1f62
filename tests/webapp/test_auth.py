"""Login, logout, redirects, cookies, CSRF and rate limiting."""

from __future__ import annotations

import pytest

from tests.webapp.conftest import PASSWORD, csrf_token, login, make_app


def test_login_sends_each_role_home(client) -> None:
    assert login(client, "admin").headers["Location"] == "/admin/"
    assert login(client, "alice").headers["Location"] == "/me/tasks"


def test_wrong_password_is_refused_without_saying_which_part(client) -> None:
    response = login(client, "admin", "wrong-password-here")
    assert response.status_code == 401
    assert b"Wrong username or password." in response.data
    response = login(client, "nobody", "wrong-password-here")
    assert response.status_code == 401 and b"Wrong username or password." in response.data


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/tasks?status=labeled", "/admin/tasks?status=labeled"),
        ("https://evil.example/phish", "/admin/"),
        ("//evil.example/x", "/admin/"),
        ("/\\evil.example", "/admin/"),
        ("javascript:alert(1)", "/admin/"),
        ("", "/admin/"),
    ],
)
def test_next_only_redirects_within_the_site(client, target: str, expected: str) -> None:
    response = client.post("/login", data={"username": "admin", "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_login_required_keeps_the_page_asked_for(client) -> None:
    response = client.get("/admin/tasks")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_session_cookie_is_httponly_and_samesite(client) -> None:
    response = login(client, "admin")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_logout_is_a_post(client) -> None:
    login(client, "admin")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").headers["Location"] == "/login"
    assert client.get("/admin/").status_code == 302


def test_deactivated_users_cannot_log_in(db, client) -> None:
    from include.db.models import User
    from include.db.session import session_scope

    with session_scope(db) as s:
        s.query(User).filter_by(username="bob").update({"active": False})
    assert login(client, "bob").status_code == 401


def test_forms_need_a_csrf_token(db, users) -> None:
    app = make_app(db, WTF_CSRF_ENABLED=True)
    with app.test_client() as c:
        assert c.post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 400
        page = c.get("/login").get_data(as_text=True)
        ok = c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_token(page)})
        assert ok.status_code == 302
        assert c.post("/admin/datasets/new", data={"name": "no-token", "source": "empty"}).status_code == 400
