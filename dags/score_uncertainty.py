"""
## score_uncertainty

Score tasks so the hardest are labeled first: `model_prob` (confidence), `uncertainty_score` and
`priority = int(uncertainty * 1000)`. Least confidence is the seed's `1 - confidence`; margin and
entropy are on the same 0..1 scale. Auto-assign and the priority task list follow `priority desc`.

* **Reads/writes**: `tasks`, `embeddings`, `models`, `jobs`.
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
    tags=["labelops", "ml"],
    doc_md=PIPELINES["score_uncertainty"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["score_uncertainty"].airflow_params(),
)
def score_uncertainty():
    @task(execution_timeout=timedelta(hours=2))
    def score_uncertainty() -> dict:
        return entrypoints.score_uncertainty(get_current_context())

    score_uncertainty()


score_uncertainty_dag = score_uncertainty()

if __name__ == "__main__":
    score_uncertainty_dag.test()
