"""Admin: batch inference over a dataset or an uploaded file, its progress and downloads."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.db.models import Job, ModelStatus, ModelVersion
from include.services import inference
from include.services.datasets import list_datasets
from include.services.inference import InferenceRequest
from webapp.admin import bp
from webapp.clients import pii_key, wake_reconciler
from webapp.downloads import inference_response
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.runs import start_inference_run
from webapp.security import admin_required


def inference_view() -> Any:
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
        retention_days=inference.RETENTION.days,
    )


@bp.get("/inference")
@admin_required
def inference_page() -> Any:
    """Runs with their progress, and a form to start one."""
    wake_reconciler()
    return inference_view()


@bp.post("/inference")
@admin_required
@shown_on(inference_view)
def start_inference() -> Any:
    """Start a run over a dataset, or over an uploaded file."""
    checked(CsrfForm())
    values = InferenceRequest.parse(request.form.to_dict(), form=True)
    upload = request.files.get("file")
    given = (upload.filename, upload.read()) if upload is not None and upload.filename else None
    if given is not None:
        values = values.replace(dataset_id=None)
    run = inference.create_run(db.session(), values, given, current_user, key=pii_key())
    db.session.commit()
    start_inference_run(run, current_user)
    flash(_("Batch inference run %(id)s started; it shows its progress below.", id=run.id), "success")
    return redirect(url_for("admin.inference_page"))


@bp.get("/inference/<id:run_id>/results.<fmt>")
@admin_required
@shown_on(lambda run_id, fmt: inference_view())
def inference_download(run_id: int, fmt: str) -> Any:
    return inference_response(inference.get_run(db.session(), run_id), fmt)


@bp.post("/inference/<id:run_id>/delete")
@admin_required
@shown_on(lambda run_id: inference_view())
def delete_inference(run_id: int) -> Any:
    """Delete a run with its inputs and results."""
    checked(CsrfForm())
    inference.delete_run(db.session(), inference.get_run(db.session(), run_id))
    db.session.commit()
    flash(_("Run %(id)s and its inputs and results are deleted.", id=run_id), "success")
    return redirect(url_for("admin.inference_page"))
