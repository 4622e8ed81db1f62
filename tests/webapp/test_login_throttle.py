"""Login throttling holds across web processes, and never locks the owner out of an account."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from include.db.session import session_scope
from include.runtime.embedded_pg import free_port
from include.services import login_throttle
from tests.webapp.conftest import PASSWORD, make_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def gunicorn(db, users) -> Iterator[str]:
    """The web app as `make run` serves it: gunicorn, 2 workers, 4 threads, on the test database."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "SECRET_KEY": "gunicorn-test-secret-key-0123456789",
        "AIRFLOW_API_PASSWORD": "unused",
    }
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--workers",
            "2",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "webapp.wsgi:app",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{url}/livez", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
        time.sleep(0.3)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _csrf(session: requests.Session, url: str) -> str:
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', session.get(f"{url}/login").text)
    assert match
    return match.group(1)


def _attempt(url: str, username: str, password: str) -> int:
    """One login from a fresh browser (its own cookies and CSRF token)."""
    with requests.Session() as browser:
        token = _csrf(browser, url)
        response = browser.post(
            f"{url}/login",
            data={"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
            timeout=10,
        )
        return response.status_code


def test_the_address_limit_holds_across_gunicorn_workers(gunicorn: str) -> None:
    # Many connections in parallel land on both workers; each counts against the same budget.
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda i: _attempt(gunicorn, f"nobody{i}", "wrong-password"), range(16)))
    assert codes.count(401) == login_throttle.ADDRESS_LIMIT, codes
    assert codes.count(429) == 16 - login_throttle.ADDRESS_LIMIT
    # The right password is refused too while the address is blocked, on the page and the API.
    assert _attempt(gunicorn, "admin", PASSWORD) == 429
    api = requests.post(f"{gunicorn}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=10)
    assert api.status_code == 429 and int(api.headers["Retry-After"]) >= 1


def _expire(db: str, key: str) -> None:
    """Let time pass for one counter (the tests do not sleep a minute)."""
    with session_scope(db) as s:
        s.execute(
            text(
                "UPDATE login_throttle SET window_start = window_start - interval '1 hour', "
                "blocked_until = blocked_until - interval '1 hour' WHERE key = :k"
            ),
            {"k": key},
        )


def test_an_account_backs_off_but_its_owner_gets_in_from_a_known_browser(db, users) -> None:
    app = make_app(db, LOGIN_THROTTLE_ENABLED=True)
    owner = app.test_client()
    assert owner.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 302
    owner.post("/logout")  # the browser keeps its device cookie

    attacker = app.test_client()
    for _ in range(login_throttle.ACCOUNT_FREE):
        assert attacker.post("/login", data={"username": "alice", "password": "guess"}).status_code == 401
    _expire(db, "ip:127.0.0.1")  # pretend the guesses came from many addresses
    blocked = attacker.post("/login", data={"username": "alice", "password": PASSWORD})
    assert blocked.status_code == 429 and b"too many failed logins for this account" in blocked.data.lower()

    # The owner's browser is known to the account: the account delay does not apply to it.
    assert owner.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 302
    # A success clears the account's counter for everyone.
    assert attacker.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 302


def test_account_delays_grow_and_are_capped() -> None:
    delays = [login_throttle.account_delay(n) for n in range(1, login_throttle.ACCOUNT_FREE + 40)]
    assert delays[: login_throttle.ACCOUNT_FREE - 1] == [None] * (login_throttle.ACCOUNT_FREE - 1)
    waits = [d.total_seconds() for d in delays if d is not None]
    assert waits[:4] == [1, 2, 4, 8] and waits == sorted(waits)
    assert max(waits) == login_throttle.ACCOUNT_MAX_DELAY.total_seconds()


def test_parallel_guesses_at_one_account_get_one_try_per_delay(db, users) -> None:
    """Counting before the password check: a burst cannot slip through while the block is set."""
    with session_scope(db) as s:
        for i in range(login_throttle.ACCOUNT_FREE - 1):
            assert login_throttle.reserve(s, f"10.0.0.{i}", "bob", trusted_device=False) is None

    def one(i: int) -> bool:
        with session_scope(db) as s:
            return login_throttle.reserve(s, f"10.1.0.{i}", "bob", trusted_device=False) is None

    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = list(pool.map(one, range(8)))
    assert allowed.count(True) == 1  # the attempt that set the delay; the rest wait for it
    with session_scope(db) as s:
        failures, blocked = s.execute(
            text("SELECT failures, blocked_until IS NOT NULL FROM login_throttle WHERE key = 'user:bob'")
        ).one()
        assert (failures, blocked) == (login_throttle.ACCOUNT_FREE, True)  # refused ones were not guesses
        assert login_throttle.reserve(s, "10.2.0.2", "bob", trusted_device=True) is None
