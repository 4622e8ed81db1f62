"""
## train_classifier

Train a torch classifier head (logistic or MLP) on the embeddings of a dataset's labeled,
non-conflict tasks, with a stratified split (fixed seed), class weights and early stopping;
record the experiment (per-epoch metrics) and a candidate in the model registry; then `gate` it:
promoted only if it beats the promoted model on the same held-out set (or, the first time,
reaches `min_f1`), otherwise rejected with the reason.

* **Params**: `dataset_id`, `model_kind`, `epochs`, `lr`, `batch_size`, `patience`, `val_fraction`,
  `seed`, `min_labels`, `min_f1`, `embedding_model`, `force`.
* **Routing**: training runs on `queue="gpu"`, `pool="gpu"`; CUDA when present, CPU otherwise.
* **Reads/writes**: `tasks`, `embeddings`, `experiments`, `experiment_epochs`, `models`, `jobs`;
  artifacts under `MODEL_DIR`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from include.pipelines import entrypoints
from include.pipelines.dag_defaults import START_DATE, default_args

# Set GPU_EXECUTOR (e.g. "CeleryExecutor") when the GPU workers use a different executor than the default.
GPU_EXECUTOR = os.environ.get("GPU_EXECUTOR") or None


@dag(
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["labelops", "ml"],
    doc_md=__doc__,
    default_args=default_args(1, 2),
    params={
        "dataset_id": Param(1, type="integer", minimum=1),
        "model_kind": Param("mlp", enum=["logistic", "mlp"]),
        "epochs": Param(200, type="integer", minimum=1, maximum=1000),
        "lr": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            maximum=1,
            description="Learning rate; empty: 0.05 for logistic, 0.003 for MLP",
        ),
        "batch_size": Param(64, type="integer", minimum=1, maximum=8192),
        "patience": Param(8, type="integer", minimum=1, maximum=100),
        "val_fraction": Param(0.2, type="number", minimum=0.05, maximum=0.5),
        "seed": Param(0, type="integer", minimum=0),
        "min_labels": Param(20, type="integer", minimum=4),
        "min_f1": Param(0.6, type="number", minimum=0, maximum=1),
        "embedding_model": Param("all-MiniLM-L6-v2", type="string", minLength=1),
        "force": Param(False, type="boolean", description="Train even if no labels changed"),
    },
)
def train_classifier():
    @task(
        queue="gpu", pool="gpu", executor=GPU_EXECUTOR, max_active_tis_per_dag=1, execution_timeout=timedelta(hours=4)
    )
    def train() -> dict:
        return entrypoints.train(get_current_context())

    @task
    def gate(trained: dict) -> dict:
        return entrypoints.gate(get_current_context(), trained)

    gate(train())


train_classifier_dag = train_classifier()

if __name__ == "__main__":
    train_classifier_dag.test()
