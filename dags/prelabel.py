"""
## prelabel

Suggest labels for a dataset's unlabeled tasks and write them to the shadow index
(`prelabel_label`, `prelabel_score`, `prelabel_json`, `model_version`) and to Label Studio as bulk
predictions (`score` = confidence, `model_version` on predictions and on the project).

* **Needs**: `LS_URL`, `LS_API_TOKEN`; `OLLAMA_BASE_URL`/`OLLAMA_MODEL`/`OLLAMA_TIMEOUT` or
  `OPENAI_BASE_URL`/`OPENAI_API_KEY`/`OPENAI_MODEL`/`OPENAI_TIMEOUT` for the LLM backends.
* **Reads/writes**: `tasks`, `embeddings`, `models`, `jobs`; Label Studio predictions.
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
    tags=["labelops", "ml", "labelstudio"],
    doc_md=PIPELINES["prelabel"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["prelabel"].airflow_params(),
)
def prelabel():
    @task(execution_timeout=timedelta(hours=6))
    def prelabel() -> dict:
        return entrypoints.prelabel(get_current_context())

    prelabel()


prelabel_dag = prelabel()

if __name__ == "__main__":
    prelabel_dag.test()
