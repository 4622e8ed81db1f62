"""
## deidentify

Replace the personal data of a dataset's new items by its de-identification policy (phone
numbers, resident IDs, bank cards, emails, IPs, URLs, passports; names and addresses through the
optional LLM recognizer), storing the originals encrypted with `PII_KEY`. A dataset with a policy
cannot be imported into Label Studio, embedded or sent to an LLM until this has run.

* **Needs**: `PII_KEY`; an LLM (`OPENAI_*` or `OLLAMA_*`) when the policy names PERSON or ADDRESS.
* **Reads/writes**: `items` (text, pii_status), `pii_mappings`, `jobs`.
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
    tags=["labelops", "privacy"],
    doc_md=PIPELINES["deidentify"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["deidentify"].airflow_params(),
)
def deidentify():
    @task(execution_timeout=timedelta(hours=4))
    def deidentify() -> dict:
        return entrypoints.deidentify(get_current_context())

    deidentify()


deidentify_dag = deidentify()

if __name__ == "__main__":
    deidentify_dag.test()
