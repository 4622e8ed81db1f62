"""
## active_learning_nightly

The loop, every night: export annotations from Label Studio, then for each dataset in Label
Studio embed new texts (and rebuild the HNSW index after a bulk load), train a candidate, gate
it (or, with `retune_at_labels`, fine-tune the encoder when the labels reach it and each time
they double, and train later heads on the tuned encoder), then pre-label unlabeled tasks and
score their uncertainty (after the pre-labels: before any model, the scores are read from the
pre-labels of the same run). Live too: when `ls_export` finds a
dataset with `retrain_after_labels` new labels it emits `labels_ready`, and the loop runs for
that dataset alone (the nightly run stays as reconciliation). Each step skips cleanly when it has
nothing to do (no new labels: no training; no candidate: nothing to gate). Every step commits
batch by batch and is idempotent, so a failure leaves the data consistent and the next run
completes the work.

* **Routing**: embedding and training on `queue="gpu"`, `pool="gpu"`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task, task_group

from include.pipelines import entrypoints
from include.pipelines.catalog import PIPELINES
from include.pipelines.dag_defaults import LABELS_READY, START_DATE, default_args, on_clock_or, on_gpu


@dag(
    schedule=on_clock_or("0 3 * * *", LABELS_READY),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["labelops", "ml", "labelstudio"],
    doc_md=PIPELINES["active_learning_nightly"].doc_md(__doc__),
    default_args=default_args(2),
    params=PIPELINES["active_learning_nightly"].airflow_params(),
)
def active_learning_nightly():
    @task
    def ls_export() -> dict:
        return entrypoints.ls_export(get_current_context())

    @task
    def loop_datasets(_: dict) -> list[int]:
        return entrypoints.loop_datasets(get_current_context())

    @task_group
    def loop(dataset_id: int):
        @task(**on_gpu())
        def embed_items(dataset_id: int) -> dict:
            return entrypoints.embed_items(get_current_context(), dataset_id)

        @task
        def build_index(_: dict) -> dict:
            return entrypoints.build_index(get_current_context())

        @task(**on_gpu(execution_timeout=timedelta(hours=4)))
        def train_classifier(dataset_id: int, _: dict) -> dict:
            return entrypoints.loop_train(get_current_context(), dataset_id)

        @task
        def gate(dataset_id: int, trained: dict) -> dict:
            return entrypoints.gate(get_current_context(), trained, dataset_id)

        @task
        def prelabel(dataset_id: int, _: dict) -> dict:
            return entrypoints.prelabel(get_current_context(), dataset_id)

        @task(trigger_rule="all_done")  # a failed pre-label run (Label Studio away) must not stop scoring
        def score_uncertainty(dataset_id: int, _: dict) -> dict:
            return entrypoints.score_uncertainty(get_current_context(), dataset_id)

        indexed = build_index(embed_items(dataset_id))
        gated = gate(dataset_id, train_classifier(dataset_id, indexed))
        # Scoring after pre-labeling: a dataset with no model yet scores from the pre-labels
        # (cold start), which must be this run's, or the first "hardest first" has nothing to go on.
        score_uncertainty(dataset_id, prelabel(dataset_id, gated))

    loop.expand(dataset_id=loop_datasets(ls_export()))


active_learning_nightly_dag = active_learning_nightly()

if __name__ == "__main__":
    active_learning_nightly_dag.test()
