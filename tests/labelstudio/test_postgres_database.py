"""The embedded Label Studio on PostgreSQL (LS_DATABASE=postgresql): a real Label Studio 1.23.2
initialised in a database of the test PostgreSQL server (pgserver, no contrib extensions), the
platform's import and export against it, and a restart that keeps everything without re-initialising."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from include.labelstudio.client import LabelStudioClient
from include.labelstudio.label_config import choice_result
from include.pipelines.catalog import ExportValues, ImportValues
from include.pipelines.ls_export import run_ls_export
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.runtime.embedded_pg import free_port
from include.runtime.labelstudio_server import LabelStudioServer, PostgresDatabase
from tests.labelstudio.test_sync import db_tasks, make_dataset, project_of

pytestmark = pytest.mark.labelstudio


def _count(database: PostgresDatabase, table: str) -> int:
    with psycopg.connect(host=database.host, port=database.port, user=database.user, dbname=database.name) as conn:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        return int(row[0]) if row else 0


@pytest.fixture
def ls_on_postgres(pg, tmp_path):
    pg.drop_database("labelstudio_test")
    database = PostgresDatabase.from_url(pg.ensure_database("labelstudio_test"), without_contrib=True)
    server = LabelStudioServer(tmp_path / "ls", free_port(), admin_email="admin@example.com", database=database)
    assert not server.is_initialized()
    server.start(timeout=180)
    yield server, database
    server.stop()
    pg.drop_database("labelstudio_test")


def test_label_studio_keeps_its_data_in_postgresql(db, ls_on_postgres, monkeypatch) -> None:
    server, database = ls_on_postgres
    assert server.is_initialized()
    assert not (server.data_dir / "label_studio.sqlite3").exists()
    token = server.mint_token()
    client = LabelStudioClient(server.url, token)

    dataset_id = make_dataset(db, 40)
    result = run_ls_import(db, client, RunRef("ls_import", "pg-import"), ImportValues(dataset_id=dataset_id))
    assert result["imported"] == 40
    assert _count(database, "task") == 40  # in PostgreSQL, not in a file

    project_id = project_of(db, dataset_id)
    ls_ids = [t.ls_task_id for t in db_tasks(db, dataset_id)]
    for ls_id in ls_ids[:5]:
        client.create_annotation(ls_id, choice_result("NG"))
    exported = run_ls_export(db, client, RunRef("ls_export", "pg-export"), ExportValues(dataset_id=dataset_id))
    assert exported["labeled"] == 5
    assert _count(database, "task_completion") == 5
    labels = {t.ls_task_id: t.label for t in db_tasks(db, dataset_id)}
    assert [labels[i] for i in ls_ids[:5]] == ["NG"] * 5

    # A restart finds the initialised database: same project, tasks and token, no second init.
    server.stop()

    def no_init(argv, **kwargs):
        pytest.fail(f"ran {argv} on an initialised database")

    monkeypatch.setattr("include.runtime.labelstudio_server.subprocess.run", no_init)
    server.start(timeout=180)
    again = LabelStudioClient(server.url, token)
    assert int(again.get_project(project_id)["task_number"]) == 40
    client.create_annotation(ls_ids[5], choice_result("OK"))
    assert (
        run_ls_export(db, again, RunRef("ls_export", "pg-export-2"), ExportValues(dataset_id=dataset_id))["labeled"]
        == 1
    )
