"""
## ls_import

De-identify the dataset's new items when its policy requires it, then send them to Label Studio
as tasks, in bulk batches, and record the Label Studio task ids in the platform's shadow index
(`tasks`). Idempotent: a re-run imports nothing twice,
also after a crash between the Label Studio call and the database write.

* **Reads/writes**: `items`, `tasks`, `jobs` ("imported 100 tasks"); Label Studio projects and tasks.
* **Needs**: `labelops_db` connection or `DATABASE_URL`; `LS_URL`, `LS_API_TOKEN`, optional `LS_PROJECT_ID`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from include.pipelines import entrypoints
from include.pipelines.catalog import PIPELINES
from include.pipelines.dag_defaults import START_DATE, default_args


@dag(
    schedule="0 1 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["labelops", "labelstudio"],
    doc_md=PIPELINES["ls_import"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["ls_import"].airflow_params(),
)
def ls_import():
    @task(execution_timeout=timedelta(hours=2))
    def deidentify() -> dict:
        return entrypoints.deidentify(get_current_context())

    @task(execution_timeout=timedelta(hours=2))
    def ls_import(_: dict) -> dict:
        return entrypoints.ls_import(get_current_context())

    ls_import(deidentify())


ls_import_dag = ls_import()

if __name__ == "__main__":
    ls_import_dag.test()
