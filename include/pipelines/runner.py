"""Job tracking around a pipeline step: running -> success | skipped | failed, with progress.

Progress and status are committed in their own short transactions so the web app sees them
while the work runs; the work itself commits batch by batch so a crash loses at most one batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from include.db.models import AttemptState, JobStatus
from include.db.session import session_scope
from include.params import Values
from include.services.jobs import finish_attempt, newer_try, start_attempt, start_job, update_job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRef:
    """Which orchestrator run (and try) a step belongs to; all None outside Airflow."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int = -1
    try_number: int | None = None


class SkipStep(Exception):
    """Raised by a step with nothing to do; the job ends as ``skipped`` with this message and the
    step returns ``{"skipped": True, "reason": ...}`` (see ``JobHandle.result``)."""


@dataclass
class JobHandle:
    db_url: str
    job_id: int
    counts: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    # What the step returns to its caller (a DAG task's XCom): set by the step, or on skip.
    result: dict[str, Any] = field(default_factory=dict)

    def progress(self, message: str, **counts: Any) -> None:
        """Record progress (committed at once) and log it."""
        self.counts.update(counts)
        self.message = message
        log.info("%s", message)
        with session_scope(self.db_url) as session:
            update_job(session, self.job_id, message=message, counts=counts)

    def record_values(self, values: Values, **extra: Any) -> None:
        """What the step ended up running with (a training config's values applied, say)."""
        with session_scope(self.db_url) as session:
            update_job(session, self.job_id, params={**values.as_params(), **extra})

    def done(self, message: str, **counts: Any) -> None:
        """Set the final message and counts; committed when the step ends."""
        self.counts.update(counts)
        self.message = message


@contextmanager
def tracked_job(
    db_url: str,
    step: str,
    run: RunRef,
    values: Values | None = None,
    *,
    dataset_id: int | None = None,
    params: dict[str, Any] | None = None,
) -> Iterator[JobHandle]:
    """Run a step as a job, each try of it as an attempt. Exceptions mark both failed with their
    message and propagate. A try killed before it could report is closed by the next one.

    ``values``: the step's typed values; the job row records exactly these (and their dataset).
    """
    if values is not None:
        params = {**values.as_params(), **(params or {})}
        dataset_id = dataset_id if dataset_id is not None else params.get("dataset_id")
    with session_scope(db_url) as session:
        job_id = start_job(
            session,
            step=step,
            dag_id=run.dag_id,
            run_id=run.run_id,
            dataset_id=dataset_id,
            params=params,
            map_index=run.map_index,
        )
        attempt_id = start_attempt(
            session, job_id, try_number=run.try_number, task_id=run.task_id, map_index=run.map_index
        )
    handle = JobHandle(db_url, job_id)

    def finish(status: JobStatus, state: AttemptState, message: str) -> None:
        with session_scope(db_url) as session:
            later = newer_try(session, attempt_id)
            if later is None:
                update_job(session, job_id, status=status, message=message, counts=handle.counts)
            else:  # Airflow already retried this try: the retry owns the job's status
                message = f"{message} (ended after try {later} had started; try {later} decides the job)"
            finish_attempt(session, attempt_id, state, message)

    try:
        yield handle
    except SkipStep as skip:
        log.info("%s skipped: %s", step, skip)
        handle.message = str(skip)
        handle.result = {"skipped": True, "reason": str(skip), **handle.result}
        finish(JobStatus.SKIPPED, AttemptState.SKIPPED, str(skip))
    except BaseException as exc:
        message = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
        log.error("%s failed: %s", step, message)
        finish(JobStatus.FAILED, AttemptState.FAILED, message)
        raise
    else:
        finish(JobStatus.SUCCESS, AttemptState.SUCCESS, handle.message or "done")
