"""The Label Studio client against a real label-studio 1.23.2 (and a faulty proxy in front of it)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from include.labelstudio.client import (
    LabelStudioAuthError,
    LabelStudioClient,
    LabelStudioConfigError,
    LabelStudioNotFound,
    LabelStudioUnavailable,
)
from include.labelstudio.label_config import build_label_config, choice_result, label_of, validate_project_config
from include.runtime.embedded_pg import free_port
from tests.helpers.proxy import FaultyProxy

pytestmark = pytest.mark.labelstudio


def test_pat_is_exchanged_and_refreshed_on_401(ls) -> None:
    client = ls.client()
    client.check_access()
    assert client._access is not None
    client._access = "expired.access.token"  # as if 5 minutes had passed
    client.check_access()
    assert client._access != "expired.access.token"


def test_bad_legacy_token_names_url_and_variable(ls) -> None:
    client = LabelStudioClient(ls.url, "0123456789abcdef0123456789abcdef", retries=0)
    with pytest.raises(LabelStudioAuthError) as err:
        client.check_access()
    message = str(err.value)
    assert ls.url in message and "LS_API_TOKEN" in message and "401" in message


def test_bad_pat_is_rejected_clearly(ls) -> None:
    client = LabelStudioClient(ls.url, "aaa.bbb.ccc", retries=0)
    with pytest.raises(LabelStudioAuthError, match="Personal Access Token"):
        client.check_access()


def test_missing_project_is_a_clear_404(ls) -> None:
    with pytest.raises(LabelStudioNotFound) as err:
        ls.client().get_project(987654)
    assert "project 987654" in str(err.value) and "LS_PROJECT_ID" in str(err.value)


def test_invalid_label_config_is_rejected(ls) -> None:
    with pytest.raises(LabelStudioConfigError, match="label_config"):
        ls.client().create_project("broken config", "<View><Text name='t' value='$text'/>")


def test_project_config_round_trip_and_validation(ls) -> None:
    client = ls.client()
    project = client.create_project("config check", build_label_config(["OK", "NG", "Unsure"]))
    project = client.get_project(project["id"])
    validate_project_config(project, ["OK", "NG"])
    with pytest.raises(LabelStudioConfigError, match=r"lacks the labels \['Spam'\]"):
        validate_project_config(project, ["OK", "Spam"])
    other = client.create_project(
        "wrong shape",
        '<View><Text name="t" value="$body"/><Choices name="c" toName="t"><Choice value="A"/></Choices></View>',
    )
    with pytest.raises(LabelStudioConfigError, match='no <Choices name="label">'):
        validate_project_config(client.get_project(other["id"]), ["OK", "NG"])


def test_import_returns_ids_in_order_and_lists_by_keyset(ls) -> None:
    client = ls.client()
    project = client.create_project("keyset paging", build_label_config(["OK", "NG"]))
    ids = client.import_tasks(project["id"], [{"data": {"text": f"t{i}", "item_id": i}} for i in range(25)])
    assert ids == sorted(ids) and len(set(ids)) == 25
    listed = list(client.iter_tasks(project["id"], page_size=10, fields="task_only", include=["id", "data"]))
    assert [t["id"] for t in listed] == ids
    assert [t["data"]["item_id"] for t in listed] == list(range(25))


def test_annotation_result_round_trip(ls) -> None:
    client = ls.client()
    project = client.create_project("annotation shape", build_label_config(["OK", "NG"]))
    (task_id,) = client.import_tasks(project["id"], [{"data": {"text": "x"}}])
    created = client.create_annotation(task_id, choice_result("NG"))
    assert label_of(created["result"]) == "NG"


def test_connection_refused_is_retried_then_reported(ls) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    client = LabelStudioClient(dead, ls.token, retries=2, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(LabelStudioUnavailable, match="cannot reach Label Studio"):
        client.check_access()
    assert time.monotonic() - started < 10


def test_5xx_on_reads_is_retried(ls) -> None:
    with FaultyProxy(ls.url) as proxy:
        client = LabelStudioClient(proxy.url, ls.token, retries=3, backoff=0.01)
        client.check_access()
        proxy.fail_next_status = [502, 503]
        client.check_access()
        assert proxy.fail_next_status == []


def test_5xx_on_import_is_not_retried(ls) -> None:
    """A retried bulk POST could create the tasks twice: the client reports instead."""
    client_direct = ls.client()
    project = client_direct.create_project("no blind retries", build_label_config(["OK", "NG"]))
    with FaultyProxy(ls.url) as proxy:
        client = LabelStudioClient(proxy.url, ls.token, retries=3, backoff=0.01)
        client.check_access()
        proxy.fail_next_status = [502]
        with pytest.raises(LabelStudioUnavailable, match="502"):
            client.import_tasks(project["id"], [{"data": {"text": "once"}}])
        posts = [r for r in proxy.requests if r[0] == "POST" and "/import" in r[1]]
        assert len(posts) == 1


def test_the_embedded_label_studio_sends_nothing_out(ls) -> None:
    """No Sentry error reports, no usage analytics, no version check: checked on the running server."""
    import requests

    from include.runtime.labelstudio_server import PRIVACY_ENV

    browser = requests.Session()
    login_page = browser.get(f"{ls.url}/user/login/", timeout=10).text
    assert "collect_analytics = false" in login_page
    browser.post(
        f"{ls.url}/user/login/",
        data={
            "email": "admin@example.com",
            "password": "admin-pass-123",
            "csrfmiddlewaretoken": browser.cookies.get("csrftoken"),
        },
        headers={"Referer": f"{ls.url}/user/login/"},
        timeout=10,
    )
    app_page = browser.get(f"{ls.url}/projects/", timeout=10).text
    assert "sentry_dsn: null" in app_page and "collect_analytics: false" in app_page
    assert "sentry.io" not in login_page + app_page
    environ = Path(f"/proc/{ls.server.process.pid}/environ").read_bytes().split(b"\0")
    for key, value in PRIVACY_ENV.items():
        assert f"{key}={value}".encode() in environ, key


def test_the_embedded_label_studio_inherits_none_of_the_platforms_secrets(ls, tmp_path, monkeypatch) -> None:
    """Only the system's basics pass from the launcher (checked on the running server, and on
    what a server started now would get while the launcher holds the platform's secrets)."""
    from include.runtime.labelstudio_server import (
        LOOPBACK_ML_ENV,
        PERFORMANCE_ENV,
        PRIVACY_ENV,
        SYSTEM_ENV,
        LabelStudioServer,
    )

    ours = set(PRIVACY_ENV) | set(LOOPBACK_ML_ENV) | set(PERFORMANCE_ENV) | {"LABEL_STUDIO_BASE_DATA_DIR", "PYTHONPATH"}
    ours |= {"LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK"}
    environ = Path(f"/proc/{ls.server.process.pid}/environ").read_bytes().split(b"\0")
    names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
    passed = {n for n in names - ours if not n.startswith("LC_")}
    assert passed <= set(SYSTEM_ENV) | {"DJANGO_SETTINGS_MODULE"}, passed - set(SYSTEM_ENV)

    secrets = {"PII_KEY": "k", "SECRET_KEY": "s", "OPENAI_API_KEY": "o", "DATABASE_URL": "postgresql://u:p@h/db"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "j")
    env = LabelStudioServer(tmp_path / "ls", 1, admin_email="a@example.com")._env()
    assert not set(secrets) & set(env) and "AIRFLOW__API_AUTH__JWT_SECRET" not in env
    assert env["PATH"] == os.environ["PATH"]
