"""Admin: pipeline cards that trigger Airflow runs, and the jobs they produce."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.pipelines.catalog import ADVANCED, PIPELINES
from include.services.datasets import list_datasets
from include.services.embedding_models import embedding_model_names
from include.services.jobs import ACTIVE, attempts_of, recent_jobs
from webapp.admin import bp
from webapp.args import int_arg
from webapp.clients import wake_reconciler
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.runs import start_pipeline
from webapp.security import admin_required
from webapp.serializers import job_json


def pipelines_view(selected: int | None = None) -> Any:
    return render_template(
        "admin/pipelines.html",
        pipelines=PIPELINES.values(),
        advanced=ADVANCED,
        datasets=list_datasets(db.session()),
        embedding_models=embedding_model_names(db.session(), current_app.config.get("OPENAI_EMBEDDING_MODEL")),
        csrf_form=CsrfForm(),
        selected=selected,
        airflow_url=current_app.config.get("AIRFLOW_PUBLIC_URL"),
    )


@bp.get("/pipelines")
@admin_required
def pipelines() -> Any:
    """A card per pipeline, its form built from the pipeline's declared parameters."""
    return pipelines_view(int_arg("dataset_id"))


@bp.post("/pipelines/<name>/run")
@admin_required
@shown_on(lambda name: pipelines_view(request.form.get("dataset_id", type=int)))
def run_pipeline(name: str) -> Any:
    """Trigger one pipeline run; Airflow being down is reported, not a crash."""
    checked(CsrfForm())
    pipeline, job = start_pipeline(name, request.form.to_dict(), current_user, form=True)
    flash(_("%(pipeline)s started (job %(id)s).", pipeline=_(pipeline.title), id=job.id), "success")
    return redirect(url_for("admin.jobs"))


@bp.get("/jobs")
@admin_required
def jobs() -> Any:
    """Pipeline runs with state and message; refreshes itself while any is active."""
    wake_reconciler()
    rows = recent_jobs(db.session(), 100, dataset_id=int_arg("dataset_id"))
    return render_template(
        "admin/jobs.html",
        jobs=rows,
        attempts=attempts_of(db.session(), [j.id for j in rows]),
        active=any(j.status in ACTIVE for j in rows),
        refresh=current_app.config["JOBS_REFRESH_SECONDS"],
    )


@bp.get("/jobs.json")
@admin_required
def jobs_json() -> Any:
    """The jobs page's data, polled by its script while runs are active."""
    wake_reconciler()
    rows = recent_jobs(db.session(), 100, dataset_id=int_arg("dataset_id"))
    tries = attempts_of(db.session(), [j.id for j in rows])
    return jsonify(
        {"active": any(j.status in ACTIVE for j in rows), "jobs": [job_json(j, tries.get(j.id)) for j in rows]}
    )
