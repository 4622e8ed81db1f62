"""
## active_learning_nightly

The loop, every night: export annotations from Label Studio, then for each dataset in Label
Studio embed new texts (and rebuild the HNSW index after a bulk load), train a candidate, gate
it, pre-label unlabeled tasks and score their uncertainty. Each step skips cleanly when it has
nothing to do (no new labels: no training; no candidate: nothing to gate). Every step commits
batch by batch and is idempotent, so a failure leaves the data consistent and the next run
completes the work.

* **Params**: `dataset_id` (empty = every dataset in Label Studio), `model_kind`, `strategy`,
  `backend`, `min_labels`, `min_f1`.
* **Routing**: embedding and training on `queue="gpu"`, `pool="gpu"`.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task, task_group

from include.pipelines import entrypoints
from include.pipelines.dag_defaults import START_DATE, default_args

GPU_EXECUTOR = os.environ.get("GPU_EXECUTOR") or None


@dag(
    schedule="0 3 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["labelops", "ml", "labelstudio"],
    doc_md=__doc__,
    default_args=default_args(2, 2),
    params={
        "dataset_id": Param(None, type=["null", "integer"], minimum=1, description="Dataset; empty for all"),
        "model_kind": Param("mlp", enum=["logistic", "mlp"]),
        "strategy": Param("least_confidence", enum=["least_confidence", "margin", "entropy"]),
        "backend": Param("auto", enum=["auto", "classifier", "similarity", "ollama", "openai"]),
        "min_labels": Param(20, type="integer", minimum=4),
        "min_f1": Param(0.6, type="number", minimum=0, maximum=1),
    },
)
def active_learning_nightly():
    @task
    def export() -> dict:
        return entrypoints.ls_export(get_current_context())

    @task
    def datasets(_: dict) -> list[int]:
        return entrypoints.loop_datasets(get_current_context())

    @task_group
    def loop(dataset_id: int):
        @task(queue="gpu", pool="gpu", executor=GPU_EXECUTOR)
        def embed(dataset_id: int) -> dict:
            return entrypoints.embed_items(get_current_context(), dataset_id)

        @task
        def build_index(_: dict) -> dict:
            return entrypoints.index_embeddings(get_current_context())

        @task(queue="gpu", pool="gpu", executor=GPU_EXECUTOR, execution_timeout=timedelta(hours=4))
        def train(dataset_id: int, _: dict) -> dict:
            return entrypoints.train(get_current_context(), dataset_id)

        @task
        def gate(dataset_id: int, trained: dict) -> dict:
            return entrypoints.gate(get_current_context(), trained, dataset_id)

        @task
        def prelabel(dataset_id: int, _: dict) -> dict:
            return entrypoints.prelabel(get_current_context(), dataset_id)

        @task
        def score(dataset_id: int, _: dict) -> dict:
            return entrypoints.score(get_current_context(), dataset_id)

        embedded = build_index(embed(dataset_id))
        gated = gate(dataset_id, train(dataset_id, embedded))
        score(dataset_id, prelabel(dataset_id, gated))

    loop.expand(dataset_id=datasets(export()))


active_learning_nightly_dag = active_learning_nightly()

if __name__ == "__main__":
    active_learning_nightly_dag.test()
