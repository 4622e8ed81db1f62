"""Job rows, with status, message and progress counts: one per triggered run (kind "run"),
and one per step and map index of it (kind "step").

The run's row is queued by whoever triggers it and closed from the DAG run's state (the
reconciler, or the trigger that waits): a step never adopts it, so a run whose first step shares
its name does not read success before its later steps (the gate) have run.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import JOB_RUN, JOB_STEP, AttemptState, Dataset, Job, JobAttempt, JobStatus
from include.errors import NotFound
from include.services.paging import DatasetPageQuery, Page, paginate

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def _now() -> datetime:
    return datetime.now(UTC)


def queue_job(
    session: Session,
    *,
    step: str,
    dag_id: str | None = None,
    run_id: str | None = None,
    dataset_id: int | None = None,
    params: dict[str, Any] | None = None,
    triggered_by: int | None = None,
) -> Job:
    """Record a run that was asked for but has not started (the web app's trigger)."""
    job = Job(
        step=step,
        kind=JOB_RUN if run_id else JOB_STEP,
        dag_id=dag_id,
        run_id=run_id,
        dataset_id=dataset_id,
        params=params or {},
        triggered_by=triggered_by,
        status=JobStatus.QUEUED,
        message="queued",
    )
    session.add(job)
    session.flush()
    return job


def start_job(
    session: Session,
    *,
    step: str,
    dag_id: str | None,
    run_id: str | None,
    dataset_id: int | None = None,
    params: dict[str, Any] | None = None,
    map_index: int = -1,
) -> int:
    """Mark the job of (dag_id, run_id, step, map_index) running, creating it if needed. A retry
    of the same task reuses the row; the run's own row (if one was queued) shows it running.
    Returns the job id."""
    # A job for a dataset id that does not exist is still recorded (it will fail, visibly).
    existing_dataset = select(Dataset.id).where(Dataset.id == dataset_id).scalar_subquery() if dataset_id else None
    values = {
        "step": step,
        "kind": JOB_STEP,
        "map_index": map_index,
        "dag_id": dag_id,
        "run_id": run_id,
        "dataset_id": existing_dataset,
        "params": params or {},
        "status": JobStatus.RUNNING.value,
        "message": "running",
        "started_at": _now(),
        "finished_at": None,
    }
    if dag_id is None or run_id is None:
        return int(session.execute(insert(Job).values(**values).returning(Job.id)).scalar_one())
    session.execute(
        update(Job)
        .where(Job.dag_id == dag_id, Job.run_id == run_id, Job.kind == JOB_RUN, Job.status.in_(ACTIVE))
        .values(status=JobStatus.RUNNING, started_at=func.coalesce(Job.started_at, _now()), message=f"running {step}")
    )
    base = insert(Job).values(**values)
    stmt = base.on_conflict_do_update(
        constraint="uq_jobs_dag_run_step_map",
        set_={
            "status": base.excluded.status,
            "message": base.excluded.message,
            "started_at": base.excluded.started_at,
            "finished_at": None,
            "dataset_id": base.excluded.dataset_id,
            "params": base.excluded.params,  # what the step runs with, its defaults filled in
        },
    ).returning(Job.id)
    return int(session.execute(stmt).scalar_one())


KILLED = (
    "try {n} ended without reporting: its process was killed (out of memory, SIGKILL, or its machine went away){then}"
)


def start_attempt(
    session: Session, job_id: int, *, try_number: int | None, task_id: str | None = None, map_index: int = -1
) -> int:
    """Record that a try of the job's step is running; returns the attempt's id.

    Earlier tries still marked running never reported an end: their process died. They are
    closed as failed here, so the history keeps every attempt.
    """
    now = _now()
    if try_number is None:  # outside Airflow: the next number
        last = session.scalar(select(func.max(JobAttempt.try_number)).where(JobAttempt.job_id == job_id))
        try_number = int(last or 0) + 1
    for earlier in session.scalars(
        select(JobAttempt).where(
            JobAttempt.job_id == job_id, JobAttempt.ended_at.is_(None), JobAttempt.try_number < try_number
        )
    ):
        earlier.state, earlier.ended_at = AttemptState.FAILED, now
        earlier.message = KILLED.format(n=earlier.try_number, then=f"; Airflow retried it as try {try_number}")
    stmt = insert(JobAttempt).values(
        job_id=job_id,
        try_number=try_number,
        state=AttemptState.RUNNING.value,
        task_id=task_id,
        map_index=map_index,
        hostname=socket.gethostname()[:255],
        pid=os.getpid(),
        started_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        constraint="uq_job_attempts_job_id",
        set_={
            "state": AttemptState.RUNNING.value,
            "started_at": now,
            "ended_at": None,
            "message": "",
            "hostname": stmt.excluded.hostname,
            "pid": stmt.excluded.pid,
        },
    )
    return int(session.execute(stmt.returning(JobAttempt.id)).scalar_one())


def newer_try(session: Session, attempt_id: int) -> int | None:
    """The number of a later try of the same task (same job and map index), if one has started.

    A try Airflow gave up on can outlive its verdict (a worker cut off from the scheduler, a
    SIGKILL that missed a child): when it ends, the later try owns the job's status.
    """
    attempt = session.get(JobAttempt, attempt_id)
    if attempt is None:
        return None
    later = session.scalar(
        select(func.max(JobAttempt.try_number)).where(
            JobAttempt.job_id == attempt.job_id,
            JobAttempt.map_index == attempt.map_index,
            JobAttempt.try_number > attempt.try_number,
        )
    )
    return int(later) if later is not None else None


def finish_attempt(session: Session, attempt_id: int, state: AttemptState, message: str) -> None:
    attempt = session.get(JobAttempt, attempt_id)
    if attempt is not None:
        attempt.state, attempt.message, attempt.ended_at = state, message[:4000], _now()


def attempts_of(session: Session, job_ids: list[int]) -> dict[int, list[JobAttempt]]:
    """Each job's attempts, oldest first (the jobs page shows retries)."""
    out: dict[int, list[JobAttempt]] = {}
    if job_ids:
        rows = session.scalars(
            select(JobAttempt).where(JobAttempt.job_id.in_(job_ids)).order_by(JobAttempt.job_id, JobAttempt.try_number)
        )
        for attempt in rows:
            out.setdefault(attempt.job_id, []).append(attempt)
    return out


def open_attempts(session: Session, *, started_before: datetime, limit: int = 50) -> list[tuple[Job, JobAttempt]]:
    """Attempts still marked running that began before ``started_before`` (for the reconciler)."""
    rows = session.execute(
        select(Job, JobAttempt)
        .join(JobAttempt, JobAttempt.job_id == Job.id)
        .where(JobAttempt.ended_at.is_(None), JobAttempt.started_at < started_before, Job.run_id.is_not(None))
        .order_by(JobAttempt.id)
        .limit(limit)
    ).all()
    return [(job, attempt) for job, attempt in rows]


def close_attempt_from_airflow(
    session: Session, job: Job, attempt: JobAttempt, airflow_state: str, *, last_try: bool = True
) -> bool:
    """Close an attempt whose Airflow try has ended in ``airflow_state``; True if it changed.

    A try that ended without our step reporting was killed; if it was the last try, the job
    ends failed too. ``last_try`` False: Airflow already has a later try of the task (a retry
    running or done), which owns the job's status.
    """
    if airflow_state in ("running", "queued", "scheduled", "deferred", "restarting", "None", ""):
        return False
    now = _now()
    succeeded = airflow_state == "success"
    attempt.state = AttemptState.SUCCESS if succeeded else AttemptState.FAILED
    attempt.ended_at = now
    attempt.message = (
        "Airflow reports success"
        if succeeded
        else KILLED.format(n=attempt.try_number, then=f"; Airflow: {airflow_state}")
    )
    if last_try and job.status == JobStatus.RUNNING and airflow_state in ("failed", "upstream_failed", "removed"):
        update_job(session, job.id, status=JobStatus.FAILED, message=attempt.message)
    return True


def update_job(
    session: Session,
    job_id: int,
    *,
    status: JobStatus | None = None,
    message: str | None = None,
    counts: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    job = session.get(Job, job_id)
    if job is None:
        return
    if params is not None:
        job.params = params
    if status is not None:
        job.status = status
        if status not in ACTIVE:
            job.finished_at = _now()
    if message is not None:
        job.message = message[:4000]
    if counts is not None:
        job.counts = {**(job.counts or {}), **counts}


def recent_jobs(
    session: Session, limit: int = 50, *, step: str | None = None, dataset_id: int | None = None
) -> list[Job]:
    """Newest jobs first, optionally of one step or dataset."""
    stmt = select(Job).order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)
    if step:
        stmt = stmt.where(Job.step == step)
    if dataset_id is not None:
        stmt = stmt.where(Job.dataset_id == dataset_id)
    return list(session.scalars(stmt))


def job_page(session: Session, query: DatasetPageQuery) -> Page[Job]:
    """Pipeline runs, newest first, of one dataset or all."""
    stmt = select(Job).order_by(Job.created_at.desc(), Job.id.desc())
    if query.dataset_id is not None:
        stmt = stmt.where(Job.dataset_id == query.dataset_id)
    return paginate(session, stmt, query.page, query.limit, count=True)


class JobNotFound(NotFound):
    """The job id names no job."""


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"job {job_id} not found")
    return job


def jobs_of_run(session: Session, run_id: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.run_id == run_id).order_by(Job.id)))


def open_runs(session: Session, *, older_than: datetime, limit: int = 20) -> list[Job]:
    """Rows of triggered runs not closed yet (queued or running), created before ``older_than``,
    oldest first: the reconciler closes them from the DAG run's state."""
    return list(
        session.scalars(
            select(Job)
            .where(Job.kind == JOB_RUN, Job.status.in_(ACTIVE), Job.run_id.is_not(None), Job.created_at < older_than)
            .order_by(Job.id)
            .limit(limit)
        )
    )


def settle_run(session: Session, dag_id: str, run_id: str, state: str) -> int:
    """Close the run's own row from the DAG run's final state; returns how many rows were closed.

    Its message sums up the steps (each has a row of its own, listed with the same run).
    """
    if state not in ("success", "failed"):
        return 0
    rows = list(session.scalars(select(Job).where(Job.dag_id == dag_id, Job.run_id == run_id).order_by(Job.id)))
    steps = [j for j in rows if j.kind == JOB_STEP]
    open_rows = [j for j in rows if j.kind == JOB_RUN and j.status in ACTIVE]
    for job in open_rows:
        if state == "success":
            if len(steps) == 1:
                message = f"finished: {steps[0].message}"
            else:
                message = f"finished: {len(steps)} steps, listed with the same run" if steps else "finished"
            update_job(session, job.id, status=JobStatus.SUCCESS, message=message)
        else:
            failed = sorted({j.step for j in steps if j.status == JobStatus.FAILED})
            message = (
                f"the Airflow run failed at {', '.join(failed)}"
                if failed
                else "the Airflow run failed before its steps could report; see the Airflow UI"
            )
            update_job(session, job.id, status=JobStatus.FAILED, message=message)
    return len(open_rows)
