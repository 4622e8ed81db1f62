"""
## baseline_probe

Ask the configured LLM (an OpenAI-compatible server or Ollama), zero-shot, to label the
dataset's evaluation set. The answers are recorded as a *baseline* model version with the same
evaluation report as any classifier, so the gate can require a classifier to beat it
(`require_baseline`). The probe also checks the answer contract (JSON, a label of the dataset,
a confidence in [0, 1]) and reports latency percentiles.

* **Needs**: `OPENAI_BASE_URL`/`OPENAI_MODEL` or `OLLAMA_BASE_URL`/`OLLAMA_MODEL`.
* **Reads/writes**: `eval_items`, `tasks`, `models` (status `baseline`), `model_evaluations`, `jobs`.
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
    doc_md=PIPELINES["baseline_probe"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["baseline_probe"].airflow_params(),
)
def baseline_probe():
    @task(execution_timeout=timedelta(hours=2))
    def baseline_probe() -> dict:
        return entrypoints.baseline_probe(get_current_context())

    baseline_probe()


baseline_probe_dag = baseline_probe()

if __name__ == "__main__":
    baseline_probe_dag.test()
