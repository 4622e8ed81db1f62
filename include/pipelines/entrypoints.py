"""What each DAG task calls: read settings, resolve the database and Label Studio, run one step.

DAG files stay free of logic and of heavy imports: every function here imports its pipeline
(and torch, sentence-transformers...) only when the task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.pipelines.runner import RunRef


def run_ref(context: Mapping[str, Any]) -> RunRef:
    """The Airflow run a task belongs to, from its context."""
    dag_run = context.get("dag_run")
    if dag_run is None:
        return RunRef()
    return RunRef(dag_id=dag_run.dag_id, run_id=dag_run.run_id)


def _optional_int(params: Mapping[str, Any], key: str) -> int | None:
    value = params.get(key)
    return None if value in (None, "") else int(value)


def ls_import(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.resources import ls_client, platform_db_url

    params = context.get("params") or {}
    settings = load_settings()
    return run_ls_import(
        platform_db_url(settings),
        ls_client(settings),
        run_ref(context),
        dataset_id=_optional_int(params, "dataset_id"),
        limit=_optional_int(params, "limit"),
        batch_size=int(params.get("batch_size") or 5000),
        default_project_id=settings.ls_project_id,
    )


def ls_export(context: Mapping[str, Any]) -> dict[str, Any]:
    from include.config import load_settings
    from include.pipelines.ls_export import run_ls_export
    from include.pipelines.resources import ls_client, platform_db_url

    params = context.get("params") or {}
    settings = load_settings()
    return run_ls_export(
        platform_db_url(settings),
        ls_client(settings),
        run_ref(context),
        dataset_id=_optional_int(params, "dataset_id"),
        full=bool(params.get("full")),
    )
