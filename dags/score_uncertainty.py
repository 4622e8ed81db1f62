"""
## score_uncertainty

Score tasks so the hardest are labeled first: `model_prob` (confidence), `uncertainty_score` and
`priority = int(uncertainty * 1000)`. Least confidence is the seed's `1 - confidence`; margin and
entropy are on the same 0..1 scale. Auto-assign and the priority task list follow `priority desc`.

* **Params**: `dataset_id`, `strategy`, `limit`, `only_unlabeled`.
* **Reads/writes**: `tasks`, `embeddings`, `models`, `jobs`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from include.pipelines import entrypoints
from include.pipelines.dag_defaults import START_DATE, default_args


@dag(
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["labelops", "ml"],
    doc_md=__doc__,
    default_args=default_args(),
    params={
        "dataset_id": Param(1, type="integer", minimum=1),
        "strategy": Param("least_confidence", enum=["least_confidence", "margin", "entropy"]),
        "limit": Param(None, type=["null", "integer"], minimum=1),
        "only_unlabeled": Param(True, type="boolean"),
    },
)
def score_uncertainty():
    @task(execution_timeout=timedelta(hours=2))
    def score() -> dict:
        return entrypoints.score(get_current_context())

    score()


score_uncertainty_dag = score_uncertainty()

if __name__ == "__main__":
    score_uncertainty_dag.test()
