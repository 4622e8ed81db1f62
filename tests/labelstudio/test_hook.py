"""Label Studio as the Airflow connection ``labelstudio_default``: a real ls_import run through
dag.test() that knows Label Studio only from the connection (no LS_URL / LS_API_TOKEN)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from airflow.utils.state import DagRunState
from sqlalchemy import func, select

from include.db.models import Task
from include.db.session import session_scope
from include.labelstudio.hook import connection_url
from include.pipelines.resources import ls_client
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC

pytestmark = [pytest.mark.labelstudio, pytest.mark.airflow]


@pytest.mark.parametrize(
    ("host", "schema", "port", "url"),
    [
        ("http://ls.internal:8081", None, None, "http://ls.internal:8081"),
        ("https://ls.example.com", None, 443, "https://ls.example.com:443"),
        ("ls.internal", "https", 8443, "https://ls.internal:8443"),
        ("ls.internal", None, None, "http://ls.internal"),
    ],
)
def test_the_url_comes_from_the_connection(host: str, schema: str | None, port: int | None, url: str) -> None:
    assert connection_url(SimpleNamespace(host=host, schema=schema, port=port)) == url


def test_an_import_run_reads_label_studio_from_the_connection(db, ls, run_dag, monkeypatch) -> None:
    monkeypatch.delenv("LS_URL")
    monkeypatch.delenv("LS_API_TOKEN")
    conn = {"conn_type": "http", "host": ls.url, "password": ls.token, "extra": {"timeout": 30}}
    monkeypatch.setenv("AIRFLOW_CONN_LABELSTUDIO_DEFAULT", json.dumps(conn))
    client = ls_client()
    assert (client.base_url, client.timeout[1]) == (ls.url, 30.0)
    with session_scope(db) as s:
        dataset = create_dataset(s, "via-connection", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, [(f"connection text {i}", {}) for i in range(12)])
        dataset_id = dataset.id
    run = run_dag("ls_import", {"dataset_id": dataset_id})
    assert run.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        assert s.scalar(select(func.count()).where(Task.dataset_id == dataset_id)) == 12
    monkeypatch.setenv("AIRFLOW_CONN_LABELSTUDIO_DEFAULT", json.dumps({"conn_type": "http", "host": ls.url}))
    with pytest.raises(ValueError, match=r"needs a host .* and a password"):
        ls_client()
