"""
## embed_items

Embed dataset texts into PostgreSQL + pgvector: each text once per embedding model (keyed by its
sha256), in batches, written with binary COPY; every model has its own HNSW index.

* **Routing**: `embed` on `queue="gpu"`, `pool="gpu"` (the GPU Celery worker; CUDA when present,
  else CPU); `build_index` (the HNSW rebuild after a bulk load, on the database) on the default queue.
* **Reads/writes**: `items`, `embedding_models`, `embeddings`, `jobs`.
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
    doc_md=PIPELINES["embed_items"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["embed_items"].airflow_params(),
)
def embed_items():
    @task(**on_gpu(execution_timeout=timedelta(hours=4)))
    def embed_items() -> dict:
        return entrypoints.embed_items(get_current_context())

    @task(execution_timeout=timedelta(hours=4))
    def build_index(_: dict) -> dict:
        return entrypoints.build_index(get_current_context())

    build_index(embed_items())


embed_items_dag = embed_items()

if __name__ == "__main__":
    embed_items_dag.test()
