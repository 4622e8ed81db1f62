"""
## batch_inference

Run a registered model version (the dataset's promoted one by default) over a dataset, or over
an uploaded file the web app prepared as a run. Writes predictions with probabilities and
uncertainty per text, shows progress on the job, and resumes after the last written row when a
try is retried. Runs on queue and pool `gpu`.

* **Reads/writes**: `models`, `items`, `embeddings`, `inference_runs`, `inference_inputs`,
  `inference_results`, `jobs`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from include.pipelines import entrypoints
from include.pipelines.catalog import PIPELINES
from include.pipelines.dag_defaults import START_DATE, default_args, on_gpu


@dag(
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    tags=["labelops", "ml"],
    doc_md=PIPELINES["batch_inference"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["batch_inference"].airflow_params(),
)
def batch_inference():
    @task(**on_gpu(execution_timeout=timedelta(hours=4)))
    def batch_inference() -> dict:
        return entrypoints.batch_inference(get_current_context())

    batch_inference()


batch_inference_dag = batch_inference()

if __name__ == "__main__":
    batch_inference_dag.test()
