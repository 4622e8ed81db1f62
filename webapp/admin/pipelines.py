"""Admin: pipeline cards that trigger Airflow runs, and the jobs they produce."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from include.airflow_client import AirflowError
from include.db.models import Dataset
from include.params import ParamError
from include.pipelines.catalog import ADVANCED, PIPELINES
from include.services.datasets import list_datasets
from include.services.embedding_models import embedding_model_names
from include.services.jobs import ACTIVE, attempts_of, recent_jobs
from webapp.admin import bp
from webapp.args import int_arg
from webapp.clients import NotConfigured
from webapp.extensions import db
from webapp.forms import CsrfForm
from webapp.runs import refresh_active_jobs, trigger_pipeline
from webapp.security import admin_required
from webapp.serializers import job_json


@bp.get("/pipelines")
@admin_required
def pipelines() -> Any:
    """A card per pipeline, its form built from the pipeline's declared parameters."""
    return render_template(
        "admin/pipelines.html",
        pipelines=PIPELINES.values(),
        advanced=ADVANCED,
        datasets=list_datasets(db.session()),
        embedding_models=embedding_model_names(db.session(), current_app.config.get("OPENAI_EMBEDDING_MODEL")),
        csrf_form=CsrfForm(),
        selected=int_arg("dataset_id"),
        airflow_url=current_app.config.get("AIRFLOW_PUBLIC_URL"),
    )


@bp.post("/pipelines/<name>/run")
@admin_required
def run_pipeline(name: str) -> Any:
    """Trigger one pipeline run; Airflow being down is reported, not a crash."""
    pipeline = PIPELINES.get(name) or abort(404)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        conf = pipeline.build_conf(request.form.to_dict(), form=True)
    except ParamError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.pipelines", dataset_id=request.form.get("dataset_id") or None))
    dataset_id = conf.get("dataset_id")
    if dataset_id is not None and db.session.get(Dataset, dataset_id) is None:
        flash("That dataset no longer exists.", "error")
        return redirect(url_for("admin.pipelines"))
    try:
        job = trigger_pipeline(pipeline, conf, current_user)
    except (AirflowError, NotConfigured) as exc:
        flash(f"Could not start {pipeline.title}: {exc}", "error")
        return redirect(url_for("admin.pipelines", dataset_id=dataset_id))
    flash(f"{pipeline.title} started (job {job.id}).", "success")
    return redirect(url_for("admin.jobs"))


@bp.get("/jobs")
@admin_required
def jobs() -> Any:
    """Pipeline runs with state and message; refreshes itself while any is active."""
    refresh_active_jobs()
    rows = recent_jobs(db.session(), 100, dataset_id=int_arg("dataset_id"))
    active = any(j.status in ACTIVE for j in rows)
    return render_template(
        "admin/jobs.html",
        jobs=rows,
        attempts=attempts_of(db.session(), [j.id for j in rows]),
        active=active,
        refresh=current_app.config["JOBS_REFRESH_SECONDS"],
    )


@bp.get("/jobs.json")
@admin_required
def jobs_json() -> Any:
    """The jobs page's data, polled by its script while runs are active."""
    refresh_active_jobs()
    rows = recent_jobs(db.session(), 100, dataset_id=int_arg("dataset_id"))
    tries = attempts_of(db.session(), [j.id for j in rows])
    return jsonify(
        {"active": any(j.status in ACTIVE for j in rows), "jobs": [job_json(j, tries.get(j.id)) for j in rows]}
    )
