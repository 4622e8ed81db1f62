"""Label Studio on SQLite vs on PostgreSQL (issue 13 part 6): import and incremental export at 100,000 tasks.

Both Label Studios run from the same .venv-ls, one after the other in this process, against the
same embedded PostgreSQL that holds the platform's shadow index (on the PostgreSQL side Label
Studio's own database is a second database on that server, as ``LS_DATABASE=postgresql`` runs it).
For each: the platform's ``ls_import`` of 100,000 items, then its incremental ``ls_export`` after
100 and after 1,000 new annotations made through Label Studio's API, and a full ``ls_export``.

Environment: BENCH_LS_DB_N (default 100000), BENCH_LS_DB_ORDER (default "sqlite,postgresql").
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any

from bench._env import label_studio, postgres, save, timed
from bench.ls_sync import _dataset
from include.pipelines.catalog import ExportValues, ImportValues


def _annotate(client: Any, ls_ids: list[int], label: str) -> None:
    from include.labelstudio.label_config import choice_result

    for ls_id in ls_ids:
        client.create_annotation(ls_id, choice_result(label))


def run_backend(db: str, backend: str, n: int) -> dict[str, Any]:
    from include.db.models import Dataset
    from include.db.session import session_scope
    from include.labelstudio.client import LabelStudioClient
    from include.pipelines.ls_export import run_ls_export
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.runner import RunRef
    from include.runtime.labelstudio_server import PostgresDatabase

    database = None
    if backend == "postgresql":
        database = PostgresDatabase.from_url(_create_database(db, "labelstudio_bench"), without_contrib=True)
    with ExitStack() as stack:
        started, (url, token) = timed(lambda: stack.enter_context(label_studio(database)))
        client = LabelStudioClient(url, token, timeout=900)
        dataset_id = _dataset(db, n)
        import_s, result = timed(lambda: run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id)))
        assert result["imported"] == n, result
        with session_scope(db) as s:
            project_id = int(s.get_one(Dataset, dataset_id).ls_project_id or 0)
        first_s, _ = timed(lambda: run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id)))
        ls_ids = [t["id"] for t in client.iter_tasks(project_id, fields="task_only", include=["id"])]
        exports: dict[str, Any] = {}
        offset = 0
        for new in (100, 1_000):
            annotate_s, _ = timed(lambda new=new, offset=offset: _annotate(client, ls_ids[offset : offset + new], "OK"))
            offset += new
            export_s, res = timed(lambda: run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id)))
            assert res["labeled"] == new, res
            exports[f"incremental_after_{new}"] = {"export_s": export_s, "annotate_via_api_s": annotate_s}
        full_s, res = timed(lambda: run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id, full=True)))
        exports["full_export_s"] = full_s
        return {
            "start_s": started,
            "import_s": import_s,
            "import_items_per_s": n / import_s,
            "first_export_s": first_s,
            **exports,
        }


def _create_database(platform_url: str, name: str) -> str:
    """A second database on the platform's PostgreSQL server, for Label Studio."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    url = make_url(platform_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)


def main() -> None:
    n = int(os.environ.get("BENCH_LS_DB_N", "100000"))
    order = os.environ.get("BENCH_LS_DB_ORDER", "sqlite,postgresql").split(",")
    results: dict[str, Any] = {}
    for backend in order:
        # A fresh platform database each: both Label Studios number their first project 1, and
        # the shadow index keys a project's export watermark by that id.
        with postgres(f"bench_ls_db_{backend}") as db:
            results[backend] = run_backend(db, backend, n)
        print(backend, results[backend], flush=True)
    sqlite, pg = results.get("sqlite"), results.get("postgresql")
    ratios = {}
    if sqlite and pg:
        ratios = {
            "import": pg["import_s"] / sqlite["import_s"],
            "incremental_after_100": pg["incremental_after_100"]["export_s"]
            / sqlite["incremental_after_100"]["export_s"],
            "incremental_after_1000": pg["incremental_after_1000"]["export_s"]
            / sqlite["incremental_after_1000"]["export_s"],
            "full_export": pg["full_export_s"] / sqlite["full_export_s"],
        }
    save(
        "ls_database",
        {
            "tasks": n,
            "order": order,
            **results,
            "postgresql_over_sqlite": ratios,
            "rule": "PostgreSQL becomes the default unless it is more than 10 % slower",
        },
    )


if __name__ == "__main__":
    main()
