"""Settings: good values parse, bad ones fail naming the variable and what is expected."""

from __future__ import annotations

import pytest

from include.config import SettingsError, load_settings


def test_defaults_need_nothing() -> None:
    settings = load_settings({})
    assert settings.database_url is None  # embedded PostgreSQL
    assert settings.labels == ("OK", "NG")
    assert settings.ollama_timeout == 120.0
    assert settings.openai_timeout == 120.0
    assert settings.airflow_api_url == "http://127.0.0.1:8080"


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
