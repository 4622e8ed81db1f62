"""
## ls_export

Pull annotations that changed in Label Studio since the last watermark into the shadow index:
store each annotation, set the task's label and status (`labeled`, or `conflict` when annotators
disagree), reflect updated and deleted annotations and tasks deleted in Label Studio.
Incremental: never the full export, never one request per task.

Runs every hour over all datasets, and at once for one dataset when Label Studio's webhooks
report new annotations (asset `labelstudio_annotations`, posted by the web app). Then
`live_loop_due` emits `labels_ready` for each dataset with `retrain_after_labels` new labels,
which starts the loop for that dataset alone (and skips when none is due).

* **Reads/writes**: `tasks`, `annotations`, `ls_projects` (watermarks), `jobs`.
* **Needs**: `labelops_db` connection or `DATABASE_URL`; `LS_URL`, `LS_API_TOKEN`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from include.pipelines import entrypoints
from include.pipelines.catalog import PIPELINES
from include.pipelines.dag_defaults import ANNOTATIONS_CHANGED, LABELS_READY, START_DATE, default_args, on_clock_or


@dag(
    schedule=on_clock_or("0 * * * *", ANNOTATIONS_CHANGED),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["labelops", "labelstudio"],
    doc_md=PIPELINES["ls_export"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["ls_export"].airflow_params(),
)
def ls_export():
    @task(execution_timeout=timedelta(hours=1))
    def ls_export() -> dict:
        return entrypoints.ls_export(get_current_context())

    @task(outlets=[LABELS_READY])
    def live_loop_due(exported: dict) -> list[int]:
        return entrypoints.live_loop_due(get_current_context(), exported, LABELS_READY)

    live_loop_due(ls_export())


ls_export_dag = ls_export()

if __name__ == "__main__":
    ls_export_dag.test()
