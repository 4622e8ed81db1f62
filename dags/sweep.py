"""
## sweep

Hyperparameter sweep from a dataset's training config (its `sweep` section: a grid of values,
or random draws from values and ranges). `plan_sweep` lists the trials; `sweep_trial` is mapped
over them, each a full training run (experiment, candidate model) on `queue="gpu"`,
`pool="gpu"`; `pick_best` keeps the trial with the best validation macro F1 and rejects the
others with the reason; `gate` judges the best on the evaluation set like any candidate.

* **Compare**: the trials' experiments side by side on the dataset page's config list.
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
    max_active_runs=1,
    tags=["labelops", "ml"],
    doc_md=PIPELINES["sweep"].doc_md(__doc__),
    default_args=default_args(1),
    params=PIPELINES["sweep"].airflow_params(),
)
def sweep():
    @task
    def plan_sweep() -> list[dict]:
        return entrypoints.plan_sweep(get_current_context())

    @task(**on_gpu(execution_timeout=timedelta(hours=4)))
    def sweep_trial(trial: dict) -> dict:
        return entrypoints.sweep_trial(get_current_context(), trial)

    @task
    def pick_best(results: list[dict]) -> dict:
        return entrypoints.pick_best(get_current_context(), results)

    @task
    def gate(best: dict) -> dict:
        return entrypoints.gate(get_current_context(), best)

    gate(pick_best(sweep_trial.expand(trial=plan_sweep())))


sweep_dag = sweep()

if __name__ == "__main__":
    sweep_dag.test()
