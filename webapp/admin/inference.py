"""Admin: batch inference over a dataset or an uploaded file, its progress and downloads."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from include.airflow_client import AirflowError
from include.db.models import Dataset, InferenceRun, Job, ModelStatus, ModelVersion
from include.services import inference
from include.services.datasets import DatasetError, list_datasets
from webapp.admin import bp
from webapp.clients import NotConfigured
from webapp.downloads import DownloadRefused, inference_response
from webapp.extensions import db
from webapp.forms import CsrfForm
from webapp.runs import refresh_active_jobs, start_inference_run
from webapp.security import admin_required


@bp.get("/inference")
@admin_required
def inference_page() -> Any:
    """Runs with their progress, and a form to start one."""
    refresh_active_jobs()
    runs = inference.list_runs(db.session())
    jobs = {j.id: j for j in db.session.query(Job).filter(Job.id.in_([r.job_id for r in runs if r.job_id]))}
    models = (
        db.session.query(ModelVersion)
        .filter(ModelVersion.status.in_([ModelStatus.PROMOTED, ModelStatus.CANDIDATE, ModelStatus.RETIRED]))
        .order_by(ModelVersion.id.desc())
        .limit(100)
        .all()
    )
    return render_template(
        "admin/inference.html",
        runs=runs,
        jobs=jobs,
        models=models,
        datasets=list_datasets(db.session()),
        model_names={m.id: m.version for m in models},
        csrf_form=CsrfForm(),
        refresh=any(r.status in ("queued", "running") for r in runs),
    )


@bp.post("/inference")
@admin_required
def start_inference() -> Any:
    if not CsrfForm().validate_on_submit():
        abort(400)
    raw_model = request.form.get("model_id", "")
    model_id = int(raw_model) if raw_model.isdigit() else None
    upload = request.files.get("file")
    try:
        if upload is not None and upload.filename:
            run = inference.create_for_upload(db.session(), upload.filename, upload.read(), model_id, current_user)
        else:
            dataset = db.session.get(Dataset, request.form.get("dataset_id", type=int) or 0)
            if dataset is None:
                raise inference.InferenceError("choose a dataset, or upload a file")
            run = inference.create_for_dataset(db.session(), dataset, model_id, current_user)
        db.session.commit()
        start_inference_run(run, current_user)
    except (inference.InferenceError, DatasetError) as exc:
        db.session.rollback()
        flash(str(exc), "error")
    except (AirflowError, NotConfigured) as exc:
        flash(f"Airflow did not take the run: {exc}", "error")
    else:
        flash(f"Batch inference run {run.id} started; it shows its progress below.", "success")
    return redirect(url_for("admin.inference_page"))


@bp.get("/inference/<id:run_id>/results.<fmt>")
@admin_required
def inference_download(run_id: int, fmt: str) -> Any:
    run = db.session.get(InferenceRun, run_id) or abort(404)
    try:
        return inference_response(run, fmt)
    except DownloadRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.inference_page"))
