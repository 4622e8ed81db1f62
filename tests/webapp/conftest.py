"""Flask app fixtures (flaskr style): app, client, users and a login helper."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from include.db.models import Role
from include.db.session import session_scope
from include.services.users import create_user

PASSWORD = "correct-horse-battery"
# As the launcher always sets one: a dataset with a policy keeps its originals sealed with it.
PII_KEY = Fernet.generate_key().decode()


def make_app(db_url: str, **overrides: Any):
    from webapp import create_app

    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-0123456789",
        "SQLALCHEMY_DATABASE_URI": db_url,
        "WTF_CSRF_ENABLED": False,
        "LOGIN_THROTTLE_ENABLED": False,
        "LS_URL": None,
        "LS_API_TOKEN": None,
        "PII_KEY": PII_KEY,
        "AIRFLOW_API_URL": "http://127.0.0.1:9",  # nothing listens there
        "AIRFLOW_API_USER": "webapp",
        "AIRFLOW_API_PASSWORD": "unused",
        "JOBS_REFRESH_SECONDS": 1,
        "ASSET_SIGNALLER": False,  # tests signal Airflow themselves (signal_pending) unless they turn it on
        "OUTBOX_DISPATCHER": False,  # tests deliver the outbox themselves (deliver_due) unless they turn it on
        "JOB_RECONCILER": False,  # tests reconcile jobs themselves (workers.job_reconciler) unless they turn it on
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture
def users(db: str) -> dict[str, int]:
    with session_scope(db) as s:
        return {
            name: create_user(s, name, f"{name}@labelops.test", PASSWORD, role).id
            for name, role in (("admin", Role.ADMIN), ("alice", Role.ANNOTATOR), ("bob", Role.ANNOTATOR))
        }


@pytest.fixture
def app(db: str, users: dict[str, int]):
    app = make_app(db)
    yield app


@pytest.fixture
def ls_app(db: str, users: dict[str, int], ls):
    """The app wired to the real Label Studio."""
    return make_app(db, LS_URL=ls.url, LS_API_TOKEN=ls.token, LS_PUBLIC_URL=ls.url)


@pytest.fixture
def client(app) -> Iterator[Any]:
    with app.test_client() as c:
        yield c


def login(client: Any, username: str, password: str = PASSWORD) -> Any:
    client.post("/logout")
    return client.post("/login", data={"username": username, "password": password})


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def api_token(client: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}


# -- headless Chromium (Debian's package, driven by Playwright; never a downloaded browser) ----
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
def page(tmp_path) -> Iterator[Any]:
    if not shutil.which("chromium") and not shutil.os.path.exists(CHROMIUM):  # type: ignore[attr-defined]
        pytest.fail("Debian's chromium is missing: apt-get install chromium (make test does this as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        tab.set_default_timeout(20_000)
        yield tab
        shots = os.environ.get("LABELOPS_SCREENSHOTS")
        if shots:
            tab.screenshot(
                path=str(
                    Path(shots) / f"{os.environ.get('PYTEST_CURRENT_TEST', 'page').split(':')[-1].split(' ')[0]}.png"
                ),
                full_page=True,
            )
        browser.close()


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_selector(f"[data-testid=current-user]:has-text('{username}')")


@pytest.fixture
def live_url(db: str, users: dict[str, int]) -> Iterator[str]:
    """The app on a real port for the browser (CSRF on), without Label Studio; test modules that
    need Label Studio define their own."""
    import threading

    from werkzeug.serving import make_server

    app = make_app(db, WTF_CSRF_ENABLED=True)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
