"""Start pipeline runs and stop training runs through Airflow's REST API (job rows are kept in
step with Airflow by ``include.workers.job_reconciler``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from include.airflow_client import AirflowError, new_run_id
from include.db.models import InferenceRun, Job, User
from include.pipelines.catalog import PIPELINES, Pipeline
from include.pipelines.catalog import pipeline as catalog_pipeline
from include.services.datasets import get_dataset
from include.services.experiments import experiment_dag_id, request_stop
from include.services.jobs import queue_job
from webapp.clients import NotConfigured, airflow_client
from webapp.extensions import db

log = logging.getLogger(__name__)


def start_pipeline(name: str, raw: Mapping[str, Any], user: User, *, form: bool = False) -> tuple[Pipeline, Job]:
    """Validate what a person sent against the pipeline's declaration and start a run.

    Raises:
        NotFound: no such pipeline, or the dataset it names. ParamError: a bad parameter.
        AirflowError, NotConfigured: Airflow refused the run or cannot be reached.
    """
    pipeline = catalog_pipeline(name)
    conf = pipeline.build_conf(raw, form=form)
    dataset_id = conf.get("dataset_id")
    if dataset_id is not None:
        get_dataset(db.session(), dataset_id)
    try:
        return pipeline, trigger_pipeline(pipeline, conf, user)
    except AirflowError as exc:  # the same meaning, saying which pipeline did not start
        raise AirflowError(f"Could not start {pipeline.title}: {exc}") from exc


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
