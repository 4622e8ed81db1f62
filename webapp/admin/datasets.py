"""Admin: the dashboard, datasets (create, upload, delete) and auto-assignment."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from include.demo.texts import generate_demo_texts
from include.labelstudio.client import LabelStudioError
from include.ml.batch import BATCH_STRATEGY
from include.params import ParamError
from include.pipelines.catalog import PIPELINES
from include.services import eval_set, live_loop, pii, quality, training_configs
from include.services.assignment import AssignmentError, auto_assign
from include.services.datasets import DatasetError, add_items, create_dataset, list_datasets, parse_upload
from include.services.deletion import delete_dataset
from include.services.eval_set import EVAL_POLICY
from include.services.evaluations import learning_curve
from include.services.export import FORMATS as EXPORT_FORMATS
from include.services.jobs import recent_jobs
from include.services.label_outbox import summary as outbox_summary
from include.services.ls_projects import served_model_version
from include.services.snapshots import list_snapshots
from include.services.stats import dataset_stats, labels_per_day, per_annotator_stats
from include.services.users import find_user
from webapp.admin import bp
from webapp.admin.common import annotator_choices, dataset_or_404, flash_report
from webapp.admin.forms import AutoAssignForm, DatasetForm, DeleteDatasetForm, TrainingConfigForm, UploadForm
from webapp.charts import draw
from webapp.clients import NotConfigured, ls_client
from webapp.extensions import db
from webapp.forms import CsrfForm
from webapp.security import admin_required
from webapp.serializers import svg_response

# The pipelines a dataset page offers as one-click buttons (all of them are on the pipelines page).
DATASET_BUTTONS = ("ls_import", "ls_export", "quality_check", "prelabel", "score_uncertainty")


@bp.get("/")
@admin_required
def dashboard() -> Any:
    """Datasets with their progress, and the latest jobs."""
    rows = [(d, dataset_stats(db.session(), d)) for d in list_datasets(db.session(), newest_first=True)]
    return render_template(
        "admin/dashboard.html", rows=rows, jobs=recent_jobs(db.session(), 8), outbox=outbox_summary(db.session())
    )


@bp.route("/datasets/new", methods=["GET", "POST"])
@admin_required
def new_dataset() -> Any:
    """Create a dataset from an upload, the demo generator, or empty."""
    form = DatasetForm()
    if request.method == "GET":
        form.labels.data = ", ".join(current_app.config["DEFAULT_LABELS"])
    if form.validate_on_submit():
        try:
            labels = [part.strip() for part in (form.labels.data or "").split(",")]
            rows: list[tuple[str, dict[str, Any]]] = []
            if form.source.data == "upload":
                if not form.file.data:
                    raise DatasetError("choose a file to upload, or pick another source")
                rows = parse_upload(
                    form.file.data.read(),
                    form.file.data.filename or "upload",
                    text_column=form.text_column.data or "text",
                    max_rows=current_app.config["UPLOAD_MAX_ROWS"],
                )
            elif form.source.data == "demo":
                rows = [(t.text, {"demo": True}) for t in generate_demo_texts(form.demo_count.data or 100)]
            dataset = create_dataset(
                db.session(),
                form.name.data or "",
                labels=labels,
                description=form.description.data or "",
                label_descriptions=form.label_descriptions.data or None,
                created_by=current_user,
            )
            report = add_items(db.session(), dataset, rows)
            db.session.commit()
        except DatasetError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return render_template("admin/dataset_new.html", form=form), 400
        flash(f"Dataset “{dataset.name}” created.", "success")
        if rows:
            flash_report(report)
        return redirect(url_for("admin.dataset", dataset_id=dataset.id))
    return render_template("admin/dataset_new.html", form=form), 400 if request.method == "POST" else 200


@bp.get("/datasets/<id:dataset_id>")
@admin_required
def dataset(dataset_id: int) -> Any:
    """One dataset: statistics, per-annotator progress, actions."""
    ds = dataset_or_404(dataset_id)
    report = quality.latest(db.session(), ds.id)
    auto_form = AutoAssignForm()
    auto_form.username.choices = annotator_choices()
    return render_template(
        "admin/dataset.html",
        dataset=ds,
        stats=dataset_stats(db.session(), ds),
        annotators=per_annotator_stats(db.session(), ds.id),
        auto_form=auto_form,
        upload_form=UploadForm(),
        delete_form=DeleteDatasetForm(),
        csrf_form=CsrfForm(),
        jobs=recent_jobs(db.session(), 5, dataset_id=ds.id),
        buttons=[PIPELINES[name] for name in DATASET_BUTTONS],
        served_version=served_model_version(db.session(), ds.ls_project_id),
        ls_public_url=current_app.config.get("LS_PUBLIC_URL"),
        evaluation=eval_set.current_set(db.session(), ds),
        policy=EVAL_POLICY,
        pii_policies=pii.list_policies(db.session()),
        pii_pending=pii.pending_count(db.session(), ds.id) if ds.pii_policy_id else 0,
        pii_key_set=bool(current_app.config.get("PII_KEY")),
        report=report,
        failed=quality.failed_checks(report) if report else [],
        agreement=quality.agreement(db.session(), ds),
        live=live_loop.status(db.session(), ds),
        snapshots=list_snapshots(db.session(), ds.id)[:5],
        export_formats=list(EXPORT_FORMATS),
        training_configs=training_configs.list_configs(db.session(), ds.id),
        config_form=TrainingConfigForm(),
    )


@bp.post("/datasets/<id:dataset_id>/eval-policy")
@admin_required
def eval_policy(dataset_id: int) -> Any:
    """Change how much of the labeled data is reserved for evaluation (members stay members)."""
    ds = dataset_or_404(dataset_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        values = {spec.name: spec.parse(request.form.get(spec.name)) for spec in EVAL_POLICY}
        eval_set.set_policy(db.session(), ds, values["eval_fraction"], values["eval_min_per_label"], values["eval_cap"])
        evaluation = eval_set.refresh(db.session(), ds)
        db.session.commit()
    except ParamError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(f"Evaluation policy saved: {evaluation.size} evaluation items, version {evaluation.version}.", "success")
    return redirect(url_for("admin.dataset", dataset_id=ds.id) + "#evaluation")


@bp.get("/datasets/<id:dataset_id>/charts/<name>.svg")
@admin_required
def dataset_chart(dataset_id: int, name: str) -> Any:
    """The dataset's pictures: learning curve, label distribution, labels per day per annotator."""
    ds = dataset_or_404(dataset_id)
    if name == "learning":
        data: Any = learning_curve(db.session(), ds.id)
    elif name == "labels":
        data = dataset_stats(db.session(), ds)["labels"]
    elif name == "daily":
        data = labels_per_day(db.session(), ds.id)
    else:
        abort(404)
    return svg_response(draw(name, data))


@bp.post("/datasets/<id:dataset_id>/upload")
@admin_required
def upload(dataset_id: int) -> Any:
    """Add items to a dataset from a CSV or JSONL file."""
    ds = dataset_or_404(dataset_id)
    form = UploadForm()
    if not form.validate_on_submit():
        flash(" ".join(e for errs in form.errors.values() for e in errs) or "Choose a file.", "error")
        return redirect(url_for("admin.dataset", dataset_id=ds.id))
    try:
        rows = parse_upload(
            form.file.data.read(),
            form.file.data.filename or "upload",
            text_column=form.text_column.data or "text",
            max_rows=current_app.config["UPLOAD_MAX_ROWS"],
        )
        report = add_items(db.session(), ds, rows)
        db.session.commit()
    except DatasetError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return dataset(dataset_id), 400  # the page again, with the reason; nothing was added
    flash_report(report)
    return redirect(url_for("admin.dataset", dataset_id=ds.id))


@bp.post("/datasets/<id:dataset_id>/delete")
@admin_required
def delete(dataset_id: int) -> Any:
    """Delete a dataset here and its tasks in Label Studio (after typing its name)."""
    ds = dataset_or_404(dataset_id)
    form = DeleteDatasetForm()
    if not form.validate_on_submit() or (form.confirm_name.data or "").strip() != ds.name:
        flash("Type the exact name of the dataset to delete it.", "error")
        return redirect(url_for("admin.dataset", dataset_id=ds.id))
    try:
        client = ls_client() if ds.ls_project_id is not None else None
        removed = delete_dataset(db.session(), client, ds)
        db.session.commit()
    except (LabelStudioError, NotConfigured, RuntimeError) as exc:
        db.session.rollback()
        flash(f"Nothing was deleted: {exc}", "error")
        return redirect(url_for("admin.dataset", dataset_id=dataset_id))
    flash(f"Deleted dataset “{ds.name}” and {removed} Label Studio tasks.", "success")
    return redirect(url_for("admin.dashboard"))


@bp.post("/datasets/<id:dataset_id>/auto-assign")
@admin_required
def auto_assign_view(dataset_id: int) -> Any:
    """Assign the hardest unassigned tasks to an annotator (diverse or strictly by priority)."""
    ds = dataset_or_404(dataset_id)
    form = AutoAssignForm()
    form.username.choices = annotator_choices()
    if not form.validate_on_submit():
        flash(" ".join(e for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for("admin.dataset", dataset_id=ds.id))
    try:
        annotator = find_user(db.session(), form.username.data or "")
        ids = auto_assign(
            db.session(),
            ds.id,
            annotator,
            form.count.data or 0,
            overlap_share=ds.overlap_share,
            strategy=form.strategy.data or BATCH_STRATEGY.default,
        )
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if ids:
            flash(f"Assigned {len(ids)} tasks to {form.username.data}, hardest first.", "success")
        else:
            flash("No unassigned, unlabeled tasks left in this dataset.", "info")
    return redirect(url_for("admin.dataset", dataset_id=ds.id))
