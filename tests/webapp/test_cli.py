"""Account commands: create-user, reset-password, seed-demo."""

from __future__ import annotations

import re

from sqlalchemy import select

from include.db.models import Dataset, Role, User
from include.db.session import session_scope
from include.services.users import authenticate


def test_create_user_and_reset_password(db, app) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "dave", "dave@example.com", "--role", "admin"])
    assert result.exit_code == 0
    password = re.search(r"password: (\S+)", result.output).group(1)
    with session_scope(db) as s:
        assert authenticate(s, "dave", password).role == Role.ADMIN
    result = runner.invoke(args=["reset-password", "dave", "--password", "a-new-password-1"])
    assert result.exit_code == 0
    with session_scope(db) as s:
        assert authenticate(s, "dave", password) is None
        assert authenticate(s, "dave", "a-new-password-1") is not None
    assert "already in use" in runner.invoke(args=["create-user", "dave", "d2@example.com"]).output
    assert "no user named 'ghost'" in runner.invoke(args=["reset-password", "ghost"]).output
    assert "at least 10 characters" in runner.invoke(args=["reset-password", "dave", "--password", "short"]).output


def test_seed_demo_prints_passwords_once(db) -> None:
    from tests.webapp.conftest import make_app

    runner = make_app(db).test_cli_runner()
    first = runner.invoke(args=["seed-demo"]).output
    created = dict(re.findall(r"created (\w+); password: (\S+)", first))
    assert set(created) == {"admin", "alice", "bob"}
    second = runner.invoke(args=["seed-demo"]).output
    assert "demo users already exist" in second and not re.search(r"password: ", second)
    with session_scope(db) as s:
        assert s.scalar(select(Dataset.item_count).where(Dataset.name == "demo")) == 100
        for name, password in created.items():
            assert authenticate(s, name, password) is not None
        assert s.scalar(select(User.role).where(User.username == "bob")) == Role.ANNOTATOR
