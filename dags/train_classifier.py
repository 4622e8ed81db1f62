"""
## train_classifier

Train a torch classifier head (logistic or MLP) on the embeddings of a dataset's labeled,
non-conflict tasks, with a stratified split (fixed seed), class weights and early stopping;
record the experiment (per-epoch metrics) and a candidate in the model registry; then `gate` it:
promoted only if it beats the promoted model on the same held-out set (or, the first time,
reaches `min_f1`), otherwise rejected with the reason.

* **Routing**: training runs on `queue="gpu"`, `pool="gpu"`; CUDA when present, CPU otherwise.
* **Reads/writes**: `tasks`, `embeddings`, `experiments`, `experiment_epochs`, `models` (the head
  itself is stored in its registry row, so any worker can read it), `jobs`.
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
    doc_md=PIPELINES["train_classifier"].doc_md(__doc__),
    default_args=default_args(1),
    params=PIPELINES["train_classifier"].airflow_params(),
)
def train_classifier():
    @task(**on_gpu(max_active_tis_per_dag=1, execution_timeout=timedelta(hours=4)))
    def train_classifier() -> dict:
        return entrypoints.train_classifier(get_current_context())

    @task
    def gate(trained: dict) -> dict:
        return entrypoints.gate(get_current_context(), trained)

    gate(train_classifier())


train_classifier_dag = train_classifier()

if __name__ == "__main__":
    train_classifier_dag.test()
