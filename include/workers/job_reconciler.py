"""Keep job rows in step with Airflow, away from the pages that show them.

A run's row is closed from the DAG run's state (success, or failed: at a step, before its first
task started, or ended by an operator); an attempt whose process was killed before it could
report is closed from its task instance's state. Both are only visible in Airflow's records. A
round reads them through the REST API and settles the rows; the pages only read the database
and wake the reconciler, so a slow or absent Airflow never holds up a page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from include.airflow_client import AirflowClient
from include.db.session import session_scope
from include.services.jobs import close_attempt_from_airflow, open_attempts, open_runs, settle_run
from include.workers.pump import Pump

log = logging.getLogger(__name__)

QUEUED_GRACE = timedelta(seconds=10)  # a run Airflow has just accepted has not started yet
ATTEMPT_GRACE = timedelta(seconds=30)  # a try that has just started has not reported yet


def reconcile(db_url: str, client: AirflowClient, *, limit: int = 20) -> int:
    """One round; returns how many jobs or attempts it looked up in Airflow."""
    now = datetime.now(UTC)
    with session_scope(db_url) as session:
        jobs = open_runs(session, older_than=now - QUEUED_GRACE, limit=limit)
        stale = open_attempts(session, started_before=now - ATTEMPT_GRACE, limit=limit)
        for job in jobs:
            dag_id = job.dag_id or job.step
            state = str(client.get_run(dag_id, job.run_id or "").get("state"))
            settle_run(session, dag_id, job.run_id or "", state)
        for job, attempt in stale:
            if not job.dag_id or not job.run_id or not attempt.task_id:
                continue
            tries = client.task_tries(job.dag_id, job.run_id, attempt.task_id, attempt.map_index)
            this = next((t for t in tries if t.get("try_number") == attempt.try_number), None)
            if this is not None:
                latest = max(int(t.get("try_number") or 0) for t in tries)
                close_attempt_from_airflow(
                    session, job, attempt, str(this.get("state")), last_try=attempt.try_number >= latest
                )
        return len(jobs) + len(stale)


class JobReconciler(Pump):
    name = "job-reconciler"

    def __init__(self, db_url: str, client_factory: Callable[[], AirflowClient], *, sweep: float = 10.0) -> None:
        super().__init__(sweep)
        self.db_url = db_url
        self.client_factory = client_factory
        self._client: AirflowClient | None = None

    def round(self) -> bool:
        if self._client is None:
            self._client = self.client_factory()
        reconcile(self.db_url, self._client)
        return False
