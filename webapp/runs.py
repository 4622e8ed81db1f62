"""Trigger pipelines through Airflow's REST API and keep the jobs page in step with Airflow."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from include.airflow_client import AirflowError, new_run_id
from include.db.models import InferenceRun, Job, User
from include.pipelines.catalog import PIPELINES, Pipeline
from include.services.experiments import experiment_dag_id, request_stop
from include.services.jobs import close_attempt_from_airflow, open_attempts, queue_job, queued_runs, settle_run
from webapp.clients import NotConfigured, airflow_client
from webapp.extensions import db

log = logging.getLogger(__name__)


def trigger_pipeline(pipeline: Pipeline, conf: dict[str, Any], user: User) -> Job:
    """Record a queued job, then ask Airflow for the run; nothing is left behind if Airflow refuses.

    ``conf`` comes from ``pipeline.build_conf`` (validated and typed).

    Raises:
        AirflowError, NotConfigured: Airflow is not reachable or refused the run.
    """
    client = airflow_client()
    run_id = new_run_id()
    job = queue_job(
        db.session(),
        step=pipeline.name,
        dag_id=pipeline.name,
        run_id=run_id,
        dataset_id=conf.get("dataset_id"),
        params=conf,
        triggered_by=user.id,
    )
    db.session.commit()  # the DAG task finds and updates this row
    try:
        client.trigger(pipeline.name, conf, run_id=run_id, note=f"triggered by {user.username} from the web app")
    except AirflowError:
        db.session.delete(job)
        db.session.commit()
        raise
    return job


def start_inference_run(run: InferenceRun, user: User) -> Job:
    """Trigger batch_inference for a prepared run and link the run to its job (for progress);
    a run Airflow refused is removed again, so nothing waits forever.

    Raises:
        AirflowError, NotConfigured: as :func:`trigger_pipeline`.
    """
    pipeline = PIPELINES["batch_inference"]
    conf = pipeline.build_conf({"inference_run_id": run.id, "dataset_id": run.dataset_id})
    try:
        job = trigger_pipeline(pipeline, conf, user)
    except (AirflowError, NotConfigured):
        db.session.delete(run)
        db.session.commit()
        raise
    run.job_id = job.id
    db.session.commit()
    return job


def refresh_active_jobs(limit: int = 20) -> None:
    """Bring the jobs page in step with Airflow: queued jobs whose run already ended (e.g. failed
    before its task started), and attempts whose process was killed before it could report."""
    now = datetime.now(UTC)
    jobs = queued_runs(db.session(), older_than=now - timedelta(seconds=10), limit=limit)
    stale = open_attempts(db.session(), started_before=now - timedelta(seconds=30), limit=limit)
    if not jobs and not stale:
        return
    try:
        client = airflow_client()
        for job in jobs:
            dag_id = job.dag_id or job.step
            state = str(client.get_run(dag_id, job.run_id or "").get("state"))
            settle_run(db.session(), dag_id, job.run_id or "", state)
        for job, attempt in stale:
            if not job.dag_id or not job.run_id or not attempt.task_id:
                continue
            tries = client.task_tries(job.dag_id, job.run_id, attempt.task_id, attempt.map_index)
            this = next((t for t in tries if t.get("try_number") == attempt.try_number), None)
            if this is not None:
                latest = max(int(t.get("try_number") or 0) for t in tries)
                close_attempt_from_airflow(
                    db.session(), job, attempt, str(this.get("state")), last_try=attempt.try_number >= latest
                )
        db.session.commit()
    except Exception as exc:  # the page still shows what the database knows
        db.session.rollback()
        log.info("could not refresh job states from Airflow: %s", exc)


def stop_experiment(experiment_id: int, user: User) -> str:
    """Stop a running training: mark the experiment stopped, then ask Airflow to end its run.

    The mark is committed first, so the run's epochs are kept and no model is registered even
    if Airflow kills the task before it notices; the message says what happened on each side.

    Raises:
        ExperimentNotRunning: no such experiment, or it is not running.
    """
    experiment = request_stop(db.session(), experiment_id)
    dag_id, run_id = experiment_dag_id(db.session(), experiment), experiment.run_id
    db.session.commit()
    if not dag_id or not run_id:
        return f"Experiment {experiment_id} stopped; it will end after its current epoch."
    try:
        run = airflow_client().stop_run(dag_id, run_id, note=f"stopped by {user.username} from the web app")
    except (AirflowError, NotConfigured) as exc:
        return f"Experiment {experiment_id} stopped after its current epoch; Airflow's run was not changed: {exc}"
    return f"Experiment {experiment_id} stopped; Airflow's run {run_id} is {run.get('state')}."
