"""
## rotate_pii_key

Re-encrypt every de-identification mapping with a new `PII_KEY`. Set the new key as `PII_KEY`
and the old one in `PII_KEY_PREVIOUS` on every web and Airflow process, run this, then remove
`PII_KEY_PREVIOUS`. Meanwhile mappings open with either key, so nothing stops. Idempotent and
committed batch by batch; the new key's fingerprint is recorded when every mapping is done.

* **Needs**: `PII_KEY` and `PII_KEY_PREVIOUS`.
* **Reads/writes**: `pii_mappings`, `key_fingerprints`, `jobs`.
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
    doc_md=PIPELINES["rotate_pii_key"].doc_md(__doc__),
    default_args=default_args(),
    params=PIPELINES["rotate_pii_key"].airflow_params(),
)
def rotate_pii_key():
    @task(execution_timeout=timedelta(hours=4))
    def rotate_pii_key() -> dict:
        return entrypoints.rotate_pii_key(get_current_context())

    rotate_pii_key()


rotate_pii_key_dag = rotate_pii_key()

if __name__ == "__main__":
    rotate_pii_key_dag.test()
