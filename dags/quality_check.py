"""
## quality_check

The dataset quality gate: exact and near-duplicates (through the pgvector index), empty, short
and long texts, the mix of scripts, label balance, suspected label errors (confident learning
on out-of-fold probabilities) and annotator agreement (Cohen's and Fleiss' kappa). The report
has pass or fail per check with examples; a failing report blocks `ls_import` and
`train_classifier` until the data is fixed or an admin overrides it with a reason.

* **Reads/writes**: `items`, `tasks`, `annotations`, `embeddings`, `quality_reports`, `jobs`.
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
    tags=["labelops", "quality"],
    doc_md=PIPELINES["quality_check"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["quality_check"].airflow_params(),
)
def quality_check():
    @task(execution_timeout=timedelta(hours=2))
    def quality_check() -> dict:
        return entrypoints.quality_check(get_current_context())

    quality_check()


quality_check_dag = quality_check()

if __name__ == "__main__":
    quality_check_dag.test()
