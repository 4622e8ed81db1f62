"""Retention on real PostgreSQL: old bookkeeping rows go, anything still in use stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from include.db.models import Job, JobAttempt, JobStatus, LsWebhook
from include.db.session import session_scope
from include.pipelines.housekeeping import run_housekeeping
from include.pipelines.runner import RunRef, tracked_job
from include.services.housekeeping import RetentionPolicy


def test_old_rows_go_and_live_ones_stay(db) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=200)
    for run_id in ("old", "old-running", "recent"):
        with tracked_job(db, "ls_export", RunRef("ls_export", run_id)) as job:
            job.done("exported 0 labeled tasks")
    with session_scope(db) as s:
        jobs = {j.run_id: j for j in s.scalars(select(Job))}
        jobs["old"].created_at = jobs["old"].finished_at = long_ago
        jobs["old-running"].created_at, jobs["old-running"].status = long_ago, JobStatus.RUNNING
        s.add_all(
            [
                LsWebhook(
                    body_sha256="a" * 64, ls_project_id=1, action="A", received_at=long_ago, signalled_at=long_ago
                ),
                LsWebhook(body_sha256="b" * 64, ls_project_id=1, action="B", received_at=long_ago),  # not yet told
                LsWebhook(body_sha256="c" * 64, ls_project_id=1, action="C", signalled_at=datetime.now(UTC)),
            ]
        )
    result = run_housekeeping(db, None, RunRef(), RetentionPolicy(job_days=90, webhook_days=14))
    assert (result["jobs"], result["webhook_events"]) == (1, 1)
    with session_scope(db) as s:
        left = {j.run_id for j in s.scalars(select(Job).where(Job.step == "ls_export"))}
        actions = {w.action for w in s.scalars(select(LsWebhook))}
        orphans = s.scalars(select(JobAttempt).where(JobAttempt.job_id.not_in(select(Job.id)))).all()
        message = s.scalar(select(Job.message).where(Job.step == "housekeeping"))
    assert left == {"old-running", "recent"} and actions == {"B", "C"} and not orphans
    assert message == "removed 1 webhook events, 1 jobs"
