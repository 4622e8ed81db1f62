"""Trigger pipelines through Airflow's REST API and keep the jobs page in step with Airflow."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from include.airflow_client import AirflowError, new_run_id
from include.db.models import Job, JobStatus, User
from include.pipelines.catalog import PIPELINES, build_conf
from include.services.jobs import queue_job, settle_run
from webapp.extensions import db
from webapp.services import airflow_client

log = logging.getLogger(__name__)


def trigger_pipeline(kind: str, dataset_id: int | None, raw_params: dict[str, Any], user: User) -> Job:
    """Record a queued job, then ask Airflow for the run; nothing is left behind if Airflow refuses.

    Raises:
        KeyError: unknown pipeline. ParamError: bad parameters. AirflowError / NotConfigured.
    """
    spec = PIPELINES[kind]
    conf = build_conf(spec, dataset_id, raw_params)
    client = airflow_client()
    run_id = new_run_id()
    job = queue_job(
        db.session(),
        kind=kind,
        dag_id=spec.dag_id,
        run_id=run_id,
        dataset_id=dataset_id,
        params=conf,
        triggered_by=user.id,
    )
    db.session.commit()  # the DAG task finds and updates this row
    try:
        client.trigger(spec.dag_id, conf, run_id=run_id, note=f"triggered by {user.username} from the web app")
    except AirflowError:
        db.session.delete(job)
        db.session.commit()
        raise
    return job


def refresh_active_jobs(limit: int = 20) -> None:
    """Mark queued jobs whose Airflow run already ended (e.g. failed before its task started)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=10)
    jobs = db.session.scalars(
        select(Job)
        .where(Job.status == JobStatus.QUEUED, Job.run_id.is_not(None), Job.created_at < cutoff)
        .order_by(Job.id.desc())
        .limit(limit)
    ).all()
    if not jobs:
        return
    try:
        client = airflow_client()
        for job in jobs:
            dag_id = job.dag_id or job.kind
            state = str(client.get_run(dag_id, job.run_id or "").get("state"))
            settle_run(db.session(), dag_id, job.run_id or "", state)
        db.session.commit()
    except Exception as exc:  # the page still shows what the database knows
        db.session.rollback()
        log.info("could not refresh job states from Airflow: %s", exc)
