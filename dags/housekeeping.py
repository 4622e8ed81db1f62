"""
## housekeeping

Daily retention for the bookkeeping tables: delivered label-outbox entries, handled Label Studio
webhook events, finished job rows (with their attempts) and the inputs and results of expired
batch-inference runs, each kept for the days its parameter says. Labels, tasks, snapshots,
experiments and models are never touched. With `WEBHOOK_URL` set it also re-checks the webhook
of every project the platform owns, so a rotated `WEBHOOK_SECRET` reaches them all.

* **Reads/writes**: `label_outbox`, `ls_webhooks`, `jobs`, `job_attempts`, `inference_*`; Label
  Studio's webhooks.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from include.pipelines import entrypoints
from include.pipelines.catalog import PIPELINES
from include.pipelines.dag_defaults import START_DATE, default_args


@dag(
    schedule=CronTriggerTimetable("30 4 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["labelops", "maintenance"],
    doc_md=PIPELINES["housekeeping"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["housekeeping"].airflow_params(),
)
def housekeeping():
    @task(execution_timeout=timedelta(hours=1))
    def housekeeping() -> dict:
        return entrypoints.housekeeping(get_current_context())

    housekeeping()


housekeeping_dag = housekeeping()

if __name__ == "__main__":
    housekeeping_dag.test()
