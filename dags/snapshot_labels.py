"""
## snapshot_labels

Freeze the dataset's labels (text hash, label, eval-set membership) as an immutable, versioned
snapshot with a content hash and counts per label. A training run records the snapshot it used,
so a model traces to exactly the labels it saw. Nothing new is written when nothing changed.

* **Reads/writes**: `tasks`, `items`, `eval_items`, `snapshots`, `snapshot_items`, `jobs`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from include.pipelines import entrypoints
from include.pipelines.catalog import PIPELINES
from include.pipelines.dag_defaults import START_DATE, default_args


@dag(
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["labelops", "data"],
    doc_md=PIPELINES["snapshot_labels"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["snapshot_labels"].airflow_params(),
)
def snapshot_labels():
    @task(execution_timeout=timedelta(hours=1))
    def snapshot_labels() -> dict:
        return entrypoints.snapshot_labels(get_current_context())

    snapshot_labels()


snapshot_labels_dag = snapshot_labels()

if __name__ == "__main__":
    snapshot_labels_dag.test()
