"""
## finetune_encoder

Fine-tune the sentence encoder on a dataset's labels (SetFit-style contrastive pairs: same label
close, different labels apart), register it as a new embedding model (`ft:ds<id>-<run>`, weights
in its registry row so any worker can load it), re-embed the dataset with it and train the
default head on top. Then `gate`: promoted only if it beats the dataset's current model on the
frozen evaluation set, which the encoder never saw.

* **Routing**: tuning runs on `queue="gpu"`, `pool="gpu"`; CUDA when present, CPU otherwise
  (minutes for a few hundred labels on a GPU, much longer on a CPU).
* **Reads/writes**: `tasks`, `items`, `embedding_models`, `embeddings`, `experiments`,
  `experiment_epochs` (the loss curve, live), `models`, `jobs`.
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
    doc_md=PIPELINES["finetune_encoder"].doc_md(__doc__),
    default_args=default_args(1),
    params=PIPELINES["finetune_encoder"].airflow_params(),
)
def finetune_encoder():
    @task(**on_gpu(max_active_tis_per_dag=1, execution_timeout=timedelta(hours=8)))
    def finetune_encoder() -> dict:
        return entrypoints.finetune_encoder(get_current_context())

    @task
    def gate(tuned: dict) -> dict:
        return entrypoints.gate(get_current_context(), tuned)

    gate(finetune_encoder())


finetune_encoder_dag = finetune_encoder()

if __name__ == "__main__":
    finetune_encoder_dag.test()
