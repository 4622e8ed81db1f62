"""Settings: good values parse, bad ones fail naming the variable and what is expected."""

from __future__ import annotations

import os

import pytest

from include.config import SettingsError, load_settings


def test_defaults_need_nothing() -> None:
    settings = load_settings({})
    assert settings.database_url is None  # embedded PostgreSQL
    assert settings.labels == ("OK", "NG")
    assert settings.ollama_timeout == 120.0
    assert settings.openai_timeout == 120.0
    assert settings.airflow_api_url == "http://127.0.0.1:8080"


def test_label_studio_database_choice() -> None:
    from include.config import LS_DATABASE_DEFAULT

    assert load_settings({}).ls_database == LS_DATABASE_DEFAULT
    assert load_settings({"LS_DATABASE": "PostgreSQL"}).ls_database == "postgresql"
    assert load_settings({"LS_DATABASE": "sqlite"}).ls_database == "sqlite"


def test_plain_postgres_url_uses_psycopg3() -> None:
    settings = load_settings({"DATABASE_URL": "postgresql://u:p@db:5432/labelops"})
    assert settings.database_url == "postgresql+psycopg://u:p@db:5432/labelops"


@pytest.mark.parametrize(
    ("env", "variable", "expected"),
    [
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL", "PostgreSQL URL"),
        ({"LS_URL": "localhost:8080", "LS_API_TOKEN": "t"}, "LS_URL", "http:// or https:// URL"),
        ({"LS_URL": "http://ls:8080"}, "LS_API_TOKEN", "token"),
        ({"LS_PROJECT_ID": "abc"}, "LS_PROJECT_ID", "positive integer"),
        ({"LS_PROJECT_ID": "0"}, "LS_PROJECT_ID", "positive integer"),
        ({"OLLAMA_TIMEOUT": "soon"}, "OLLAMA_TIMEOUT", "number of seconds"),
        ({"OLLAMA_TIMEOUT": "-5"}, "OLLAMA_TIMEOUT", "greater than 0"),
        ({"OLLAMA_BASE_URL": "ollama:11434"}, "OLLAMA_BASE_URL", "URL"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL", "URL"),
        ({"OPENAI_TIMEOUT": "0"}, "OPENAI_TIMEOUT", "greater than 0"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY", "16 characters"),
        ({"LABELS": "OK"}, "LABELS", "two or more"),
        ({"LABELS": "OK,OK"}, "LABELS", "distinct"),
        ({"AIRFLOW_API_URL": "nope"}, "AIRFLOW_API_URL", "URL"),
        ({"COOKIE_SECURE": "maybe"}, "COOKIE_SECURE", "1 or 0"),
        ({"LS_PUBLIC_URL": "ls.example.com"}, "LS_PUBLIC_URL", "URL"),
        ({"AIRFLOW_PUBLIC_URL": "/airflow"}, "AIRFLOW_PUBLIC_URL", "URL"),
        ({"PG_PORT": "eighty"}, "PG_PORT", "TCP port"),
        ({"LS_PORT": "70000"}, "LS_PORT", "TCP port"),
        ({"AIRFLOW_PORT": "0"}, "AIRFLOW_PORT", "TCP port"),
        ({"WEBAPP_PORT": "５０００"}, "WEBAPP_PORT", "TCP port"),  # full-width digits pass str.isdigit()
        ({"LS_PROJECT_ID": "²"}, "LS_PROJECT_ID", "positive integer"),
        ({"LS_DATABASE": "mysql"}, "LS_DATABASE", "sqlite or postgresql"),
    ],
)
def test_malformed_settings_name_the_variable(env: dict[str, str], variable: str, expected: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(env)
    assert err.value.variable == variable
    assert str(err.value).startswith(f"{variable}: expected")
    assert expected in str(err.value)


def test_secret_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"SECRET_KEY": "tiny-secret"})
    assert "tiny-secret" not in str(err.value)


def test_require_names_missing_variable() -> None:
    with pytest.raises(SettingsError, match=r"^LS_URL: expected the Label Studio base URL"):
        load_settings({}).require("ls_url")


def test_web_settings_are_settings_too() -> None:
    settings = load_settings(
        {
            "LS_URL": "http://ls:8080",
            "LS_API_TOKEN": "t",
            "COOKIE_SECURE": "true",
            "AIRFLOW_PUBLIC_URL": "https://airflow.example.com/",
            "WEBAPP_PORT": "5050",
        }
    )
    assert settings.cookie_secure is True
    assert settings.ls_public_url == "http://ls:8080"  # defaults to LS_URL
    assert settings.airflow_public_url == "https://airflow.example.com"
    assert (settings.pg_port, settings.ls_port, settings.airflow_port, settings.webapp_port) == (
        54329,
        8081,
        8080,
        5050,
    )


def test_web_sizing_and_label_studio_writers_are_settings() -> None:
    """WEB_THREADS sizes each worker's request pool (threads + 2 connections); the webhook
    receiver has a port of its own; LS_WRITE_CONCURRENCY bounds the outbox's writers."""
    from webapp.config import Config

    defaults = load_settings({})
    assert (defaults.web_threads, defaults.webhook_port, defaults.ls_write_concurrency) == (8, 5001, 1)
    settings = load_settings(
        {
            "WEB_THREADS": "4",
            "WEBHOOK_PORT": "5055",
            "LS_WRITE_CONCURRENCY": "2",
            "SECRET_KEY": "s" * 32,
            "DATABASE_URL": "postgresql://app@db/labelops",
        }
    )
    assert (settings.web_threads, settings.webhook_port, settings.ls_write_concurrency) == (4, 5055, 2)
    pool = Config.from_settings(settings)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert (pool["pool_size"], pool["max_overflow"], pool["pool_pre_ping"]) == (4, 2, True)
    with pytest.raises(SettingsError, match="LS_WRITE_CONCURRENCY"):
        load_settings({"LS_WRITE_CONCURRENCY": "zero"})


def test_repr_shows_no_secrets() -> None:
    secrets = {
        "DATABASE_URL": "postgresql://app:db-password-123@db/labelops",
        "LS_URL": "http://ls:8080",
        "LS_API_TOKEN": "ls-token-456",
        "OPENAI_API_KEY": "sk-openai-789",
        "SECRET_KEY": "session-secret-0123456789",
        "AIRFLOW_API_PASSWORD": "airflow-pass-000",
    }
    settings = load_settings(secrets)
    shown = repr(settings) + str(settings)
    for name, value in secrets.items():
        if name != "LS_URL":
            assert value not in shown and value.split("@")[0].split(":")[-1] not in shown, name
    assert "ls_url='http://ls:8080'" in shown  # what is not secret still helps debugging


def test_the_web_app_reads_its_settings_through_settings(monkeypatch) -> None:
    from webapp.config import load_config

    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    monkeypatch.setenv("COOKIE_SECURE", "1")
    monkeypatch.setenv("LABELS", "a,b")
    config = load_config()
    assert config["SESSION_COOKIE_SECURE"] is True and config["REMEMBER_COOKIE_SECURE"] is True
    assert config["DEFAULT_LABELS"] == ["a", "b"]
    monkeypatch.setenv("COOKIE_SECURE", "sometimes")
    with pytest.raises(SettingsError, match=r"^COOKIE_SECURE: expected"):
        load_config()


def test_importing_the_benchmarks_leaves_nothing_behind(tmp_path) -> None:
    """No I/O at import time under bench/ either (it used to make a temporary folder)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    names = sorted(p.stem for p in (repo / "bench").glob("*.py") if p.stem != "__main__")
    code = "import importlib, sys; [importlib.import_module('bench.' + n) for n in sys.argv[1:]]"
    subprocess.run(
        [sys.executable, "-c", code, *names],
        cwd=repo,
        env={"TMPDIR": str(tmp_path), "PATH": ""},
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert list(tmp_path.iterdir()) == []


def test_the_migration_needs_only_the_database(pg, monkeypatch) -> None:
    """docker compose's first ``up``: migrations run before Label Studio's token is minted, with
    LS_URL set and LS_API_TOKEN not yet; they need DATABASE_URL only, and name it when absent."""
    import subprocess
    import sys

    url = pg.ensure_database("migrate_only_db")
    env = {"PATH": os.environ["PATH"], "DATABASE_URL": url, "LS_URL": "http://labelstudio:8080"}
    done = subprocess.run(
        [sys.executable, "-m", "include.db.migrate", "upgrade"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    env.pop("DATABASE_URL")
    refused = subprocess.run(
        [sys.executable, "-m", "include.db.migrate", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode != 0 and "DATABASE_URL" in refused.stderr
    pg.drop_database("migrate_only_db")
