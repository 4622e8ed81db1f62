"""Job rows: a step's lifecycle, and closing the rows of runs that ended outside any step."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from include.db.models import Job, JobStatus
from include.db.session import session_scope
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.services.jobs import queue_job, settle_run


def test_tracked_job_records_success_skip_and_failure(db) -> None:
    with tracked_job(db, "demo", RunRef("d", "r1")) as job:
        job.progress("halfway", done=1)
        job.done("all done", done=2)
    with tracked_job(db, "demo", RunRef("d", "r2")) as job:
        raise SkipStep("nothing to do")
    assert job.result == {"skipped": True, "reason": "nothing to do"}
    with pytest.raises(ValueError), tracked_job(db, "demo", RunRef("d", "r3")):
        raise ValueError("bad input")
    with session_scope(db) as s:
        rows = {j.run_id: j for j in s.scalars(select(Job))}
    assert (rows["r1"].status, rows["r1"].message, rows["r1"].counts) == (JobStatus.SUCCESS, "all done", {"done": 2})
    assert (rows["r2"].status, rows["r2"].message) == (JobStatus.SKIPPED, "nothing to do")
    assert (rows["r3"].status, rows["r3"].message) == (JobStatus.FAILED, "ValueError: bad input")
    assert all(r.finished_at is not None and r.started_at is not None for r in rows.values())


def test_a_retried_step_reuses_its_row(db) -> None:
    with session_scope(db) as s:
        queue_job(s, step="ls_import", dag_id="ls_import", run_id="retry")
    with pytest.raises(RuntimeError), tracked_job(db, "ls_import", RunRef("ls_import", "retry")):
        raise RuntimeError("first try")
    with tracked_job(db, "ls_import", RunRef("ls_import", "retry")) as job:
        job.done("imported 5 tasks")
    with session_scope(db) as s:
        rows = {j.kind: j for j in s.scalars(select(Job))}
    assert set(rows) == {"run", "step"}  # the run's own row and one row for the retried step
    assert (rows["step"].status, rows["step"].message) == (JobStatus.SUCCESS, "imported 5 tasks")
    assert rows["run"].status == JobStatus.RUNNING  # until the DAG run's state closes it


def test_settle_run_closes_umbrella_and_orphan_rows(db) -> None:
    with session_scope(db) as s:
        queue_job(s, step="active_learning_nightly", dag_id="active_learning_nightly", run_id="n1")
        queue_job(s, step="active_learning_nightly", dag_id="active_learning_nightly", run_id="n2")
        queue_job(s, step="ls_import", dag_id="ls_import", run_id="i1")
    with tracked_job(db, "ls_export", RunRef("active_learning_nightly", "n1")) as job:
        job.done("exported 0 labeled tasks")
    with pytest.raises(RuntimeError), tracked_job(db, "train_classifier", RunRef("active_learning_nightly", "n2")):
        raise RuntimeError("CUDA out of memory")
    with session_scope(db) as s:
        assert settle_run(s, "active_learning_nightly", "n1", "success") == 1
        assert settle_run(s, "active_learning_nightly", "n2", "failed") == 1
        assert settle_run(s, "ls_import", "i1", "failed") == 1
        assert settle_run(s, "ls_import", "i1", "running") == 0
    with session_scope(db) as s:
        rows = {(j.run_id, j.step): (j.status, j.message) for j in s.scalars(select(Job))}
    assert rows[("n1", "active_learning_nightly")] == (JobStatus.SUCCESS, "finished: exported 0 labeled tasks")
    assert rows[("n2", "active_learning_nightly")] == (JobStatus.FAILED, "the Airflow run failed at train_classifier")
    assert rows[("i1", "ls_import")][1].startswith("the Airflow run failed before its steps could report")


def test_a_killed_try_fails_its_job_only_when_no_retry_follows(db) -> None:
    """The reconciler reads a killed try as failed in Airflow's history; while a later try
    exists, that try owns the job's status (a retry must not be shown failed)."""
    from include.db.models import AttemptState, JobAttempt
    from include.services.jobs import close_attempt_from_airflow, start_attempt, start_job

    with session_scope(db) as s:
        job_id = start_job(
            s, step="train_classifier", dag_id="train_classifier", run_id="r", dataset_id=None, params={}
        )
        first = start_attempt(s, job_id, try_number=1, task_id="train_classifier")
    with session_scope(db) as s:
        job, attempt = s.get_one(Job, job_id), s.get_one(JobAttempt, first)
        job.status = JobStatus.RUNNING
        assert close_attempt_from_airflow(s, job, attempt, "failed", last_try=False)
        assert (attempt.state, job.status) == (AttemptState.FAILED, JobStatus.RUNNING)
    with session_scope(db) as s:
        job, attempt = s.get_one(Job, job_id), s.get_one(JobAttempt, first)
        attempt.state, attempt.ended_at = AttemptState.RUNNING, None
        assert close_attempt_from_airflow(s, job, attempt, "failed")  # the last try: the job failed
        assert job.status == JobStatus.FAILED


def test_a_try_that_outlives_its_retry_does_not_decide_the_job(db) -> None:
    """A try Airflow gave up on (a SIGKILL that missed its process, a worker cut off from the
    scheduler) may end after its retry started, or after the retry succeeded: only the latest
    try sets the job's status; the old one keeps its own end in its attempt."""
    from include.db.models import AttemptState, JobAttempt

    ref = {"dag_id": "train_classifier", "run_id": "zombie", "task_id": "train_classifier"}
    zombie = tracked_job(db, "train_classifier", RunRef(**ref, try_number=1))
    zombie.__enter__()  # try 1 is running ...
    with tracked_job(db, "train_classifier", RunRef(**ref, try_number=2)) as retry:  # ... when try 2 starts
        retry.done("trained on try 2")
    error = LookupError("No row was found")  # ... and try 1 dies late, its experiment gone
    assert zombie.__exit__(LookupError, error, None) is False  # the error propagates
    with session_scope(db) as s:
        (row,) = s.scalars(select(Job).where(Job.run_id == "zombie")).all()
        attempts = {a.try_number: a for a in s.scalars(select(JobAttempt).where(JobAttempt.job_id == row.id))}
    assert (row.status, row.message) == (JobStatus.SUCCESS, "trained on try 2")
    assert attempts[2].state == AttemptState.SUCCESS
    assert attempts[1].state == AttemptState.FAILED and "try 2 decides the job" in attempts[1].message


def test_a_mapped_step_has_one_row_per_map_index(db) -> None:
    """The nightly loop over two datasets: one dataset's failure is not overwritten by the
    other's success, and each row keeps its own dataset."""
    from include.db.models import Dataset

    with session_scope(db) as s:
        datasets = [Dataset(name=f"mapped-{k}", labels=["OK", "NG"]) for k in range(2)]
        s.add_all(datasets)
        s.flush()
        ids = [d.id for d in datasets]
    ref = {"dag_id": "active_learning_nightly", "run_id": "mapped", "task_id": "loop.train_classifier"}
    with (
        pytest.raises(RuntimeError),
        tracked_job(db, "train_classifier", RunRef(**ref, map_index=0), dataset_id=ids[0]),
    ):
        raise RuntimeError("CUDA out of memory")
    with tracked_job(db, "train_classifier", RunRef(**ref, map_index=1), dataset_id=ids[1]) as job:
        job.done("trained")
    with session_scope(db) as s:
        rows = {j.map_index: (j.status, j.dataset_id) for j in s.scalars(select(Job).where(Job.run_id == "mapped"))}
    assert rows == {0: (JobStatus.FAILED, ids[0]), 1: (JobStatus.SUCCESS, ids[1])}


def test_a_run_does_not_read_success_before_its_gate_ran(db) -> None:
    """train_classifier's run and its first step share a name: the step never adopts the run's
    row, which is running while the gate is still to come and closes from the DAG run's state."""
    with session_scope(db) as s:
        run_row = queue_job(s, step="train_classifier", dag_id="train_classifier", run_id="t1").id
    with tracked_job(db, "train_classifier", RunRef("train_classifier", "t1")) as job:
        job.done("trained logistic-ds1-e1")
    with session_scope(db) as s:
        assert s.get_one(Job, run_row).status == JobStatus.RUNNING
        assert s.get_one(Job, run_row).message == "running train_classifier"
    with pytest.raises(RuntimeError), tracked_job(db, "gate", RunRef("train_classifier", "t1")):
        raise RuntimeError("evaluation vectors missing")
    with session_scope(db) as s:
        assert s.get_one(Job, run_row).status == JobStatus.RUNNING
        assert settle_run(s, "train_classifier", "t1", "failed") == 1
        row = s.get_one(Job, run_row)
        assert (row.status, row.message) == (JobStatus.FAILED, "the Airflow run failed at gate")
