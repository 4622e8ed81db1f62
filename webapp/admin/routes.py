"""Admin pages: datasets, tasks, assignment, users, pipelines and jobs."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from include.airflow_client import AirflowError
from include.db.models import Annotation, Dataset, Job, JobStatus, Role, Task, TaskStatus, User
from include.demo.texts import generate_demo_texts
from include.labelstudio.client import LabelStudioError
from include.pipelines.catalog import PIPELINES, ParamError
from include.services.assignment import AssignmentError, assign_task, auto_assign, unassign_task, user_by_name
from include.services.datasets import DatasetError, ItemsReport, add_items, create_dataset, parse_upload
from include.services.deletion import delete_dataset
from include.services.jobs import ACTIVE, recent_jobs
from include.services.labeling import LabelingError, resolve_conflict
from include.services.stats import dataset_stats, per_annotator_stats
from include.services.task_queries import admin_tasks, parse_status
from include.services.users import UserError, annotators, create_user, generate_password, set_password
from webapp.admin import bp
from webapp.admin.forms import (
    AssignForm,
    AutoAssignForm,
    CsrfForm,
    DatasetForm,
    DeleteDatasetForm,
    ResolveForm,
    UploadForm,
    UserForm,
)
from webapp.extensions import db
from webapp.pipelines import refresh_active_jobs, trigger_pipeline
from webapp.security import admin_required
from webapp.services import NotConfigured, ls_client

log = logging.getLogger(__name__)


def _dataset_or_404(dataset_id: int) -> Dataset:
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None:
        abort(404)
    return dataset


def _annotator_choices() -> list[tuple[str, str]]:
    return [(u.username, u.username) for u in annotators(db.session())]


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() else None


def _flash_report(report: ItemsReport) -> None:
    flash(report.summary + ".", "success" if report.added else "info")
    if report.duplicate_examples:
        flash("Duplicates skipped, e.g.: " + "; ".join(f"“{t}”" for t in report.duplicate_examples[:3]), "info")


# -- dashboard and datasets ------------------------------------------------------------------
@bp.get("/")
@admin_required
def dashboard() -> Any:
    """Datasets with their progress, and the latest jobs."""
    datasets = db.session.scalars(select(Dataset).order_by(Dataset.created_at.desc())).all()
    rows = [(d, dataset_stats(db.session(), d)) for d in datasets]
    return render_template("admin/dashboard.html", rows=rows, jobs=recent_jobs(db.session(), 8))


@bp.route("/datasets/new", methods=["GET", "POST"])
@admin_required
def new_dataset() -> Any:
    """Create a dataset from an upload, the demo generator, or empty."""
    form = DatasetForm()
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
                description=form.description.data or "",
                labels=labels,
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
            _flash_report(report)
        return redirect(url_for("admin.dataset", dataset_id=dataset.id))
    return render_template("admin/dataset_new.html", form=form), 400 if request.method == "POST" else 200


@bp.get("/datasets/<int:dataset_id>")
@admin_required
def dataset(dataset_id: int) -> Any:
    """One dataset: statistics, per-annotator progress, actions."""
    ds = _dataset_or_404(dataset_id)
    auto_form = AutoAssignForm()
    auto_form.username.choices = _annotator_choices()
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
        pipelines=PIPELINES,
        ls_public_url=current_app.config.get("LS_PUBLIC_URL"),
    )


@bp.post("/datasets/<int:dataset_id>/upload")
@admin_required
def upload(dataset_id: int) -> Any:
    """Add items to a dataset from a CSV or JSONL file."""
    ds = _dataset_or_404(dataset_id)
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
    else:
        _flash_report(report)
    return redirect(url_for("admin.dataset", dataset_id=ds.id))


@bp.post("/datasets/<int:dataset_id>/delete")
@admin_required
def delete(dataset_id: int) -> Any:
    """Delete a dataset here and its tasks in Label Studio (after typing its name)."""
    ds = _dataset_or_404(dataset_id)
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


@bp.post("/datasets/<int:dataset_id>/auto-assign")
@admin_required
def auto_assign_view(dataset_id: int) -> Any:
    """Assign the highest-priority unassigned tasks to an annotator."""
    ds = _dataset_or_404(dataset_id)
    form = AutoAssignForm()
    form.username.choices = _annotator_choices()
    if not form.validate_on_submit():
        flash(" ".join(e for errs in form.errors.values() for e in errs), "error")
        return redirect(url_for("admin.dataset", dataset_id=ds.id))
    try:
        annotator = user_by_name(db.session(), form.username.data or "")
        ids = auto_assign(db.session(), ds.id, annotator, form.count.data or 0)
        db.session.commit()
    except AssignmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if ids:
            flash(f"Assigned {len(ids)} tasks to {form.username.data}, highest priority first.", "success")
        else:
            flash("No unassigned, unlabeled tasks left in this dataset.", "info")
    return redirect(url_for("admin.dataset", dataset_id=ds.id))


# -- tasks -----------------------------------------------------------------------------------
@bp.get("/tasks")
@admin_required
def tasks() -> Any:
    """All tasks with filters, highest priority first."""
    try:
        status = parse_status(request.args.get("status"))
    except ValueError as exc:
        flash(str(exc), "error")
        status = None
    assignee = request.args.get("assignee", "")
    assignee_user = user_by_name(db.session(), assignee) if assignee and assignee != "none" else None
    if assignee and assignee != "none" and assignee_user is None:
        flash(f"No user named {assignee!r}.", "error")
    page = admin_tasks(
        db.session(),
        dataset_id=_int_arg("dataset_id"),
        status=status,
        assignee_id=assignee_user.id if assignee_user else None,
        unassigned=assignee == "none",
        label=request.args.get("label") or None,
        page=_int_arg("page") or 1,
        per_page=50,
    )
    assign_form = AssignForm()
    assign_form.username.choices = _annotator_choices()
    datasets = db.session.scalars(select(Dataset).order_by(Dataset.name)).all()
    all_labels = sorted({label for d in datasets for label in d.labels})
    return render_template(
        "admin/tasks.html",
        page=page,
        assign_form=assign_form,
        csrf_form=CsrfForm(),
        datasets=datasets,
        statuses=[s.value for s in TaskStatus],
        annotators=_annotator_choices(),
        labels=all_labels,
        args=request.args,
    )


def _back_to_tasks() -> Any:
    target = request.form.get("back") or ""
    return redirect(target if target.startswith("/admin/tasks") else url_for("admin.tasks"))


@bp.post("/tasks/<int:task_id>/assign")
@admin_required
def assign(task_id: int) -> Any:
    """Assign (or reassign) one task."""
    form = AssignForm()
    form.username.choices = _annotator_choices()
    if not form.validate_on_submit():
        flash("Choose an annotator.", "error")
        return _back_to_tasks()
    try:
        assign_task(db.session(), task_id, user_by_name(db.session(), form.username.data or ""))
        db.session.commit()
        flash(f"Task {task_id} assigned to {form.username.data}.", "success")
    except AssignmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return _back_to_tasks()


@bp.post("/tasks/<int:task_id>/unassign")
@admin_required
def unassign(task_id: int) -> Any:
    """Return a task to the pool."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        unassign_task(db.session(), task_id)
        db.session.commit()
        flash(f"Task {task_id} is unassigned.", "success")
    except AssignmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return _back_to_tasks()


@bp.route("/tasks/<int:task_id>/resolve", methods=["GET", "POST"])
@admin_required
def resolve(task_id: int) -> Any:
    """Settle a conflict: the admin's label becomes the ground truth in Label Studio."""
    task = db.session.get(Task, task_id)
    if task is None:
        abort(404)
    dataset = db.session.get(Dataset, task.dataset_id)
    form = ResolveForm()
    form.label.choices = [(label, label) for label in (dataset.labels if dataset else [])]
    if form.validate_on_submit():
        try:
            resolve_conflict(db.session(), ls_client(), task_id, current_user, form.label.data or "")
            db.session.commit()
            flash(f"Task {task_id} resolved as {form.label.data}.", "success")
            return redirect(url_for("admin.tasks", status="conflict", dataset_id=task.dataset_id))
        except (LabelingError, LabelStudioError, NotConfigured) as exc:
            db.session.rollback()
            flash(f"Not resolved: {exc}", "error")
    annotations = db.session.execute(
        select(Annotation, User.username)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(Annotation.task_id == task_id)
        .order_by(Annotation.id)
    ).all()
    return render_template("admin/resolve.html", task=task, form=form, annotations=annotations)


# -- users -----------------------------------------------------------------------------------
@bp.route("/users", methods=["GET", "POST"])
@admin_required
def users() -> Any:
    """List users; create one with a generated password shown once."""
    form = UserForm()
    if form.validate_on_submit():
        password = generate_password()
        try:
            user = create_user(
                db.session(), form.username.data or "", form.email.data or "", password, Role(form.role.data)
            )
            db.session.commit()
        except UserError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            flash(f"Created {user.username}. Their password (shown once): {password}", "success")
            return redirect(url_for("admin.users"))
    counts = dict(
        db.session.execute(
            select(Task.assigned_to, func.count(Task.id))
            .where(Task.assigned_to.is_not(None), Task.status == TaskStatus.ASSIGNED)
            .group_by(Task.assigned_to)
        )
        .tuples()
        .all()
    )
    people = db.session.scalars(select(User).order_by(User.role, User.username)).all()
    return render_template("admin/users.html", form=form, users=people, pending=counts, csrf_form=CsrfForm())


@bp.post("/users/<int:user_id>/reset-password")
@admin_required
def reset_password(user_id: int) -> Any:
    """Give a user a new generated password (shown once)."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    user = db.session.get(User, user_id) or abort(404)
    password = generate_password()
    set_password(user, password)
    db.session.commit()
    flash(f"New password for {user.username} (shown once): {password}", "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/toggle-active")
@admin_required
def toggle_active(user_id: int) -> Any:
    """Deactivate or reactivate an account (you cannot deactivate yourself)."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    user = db.session.get(User, user_id) or abort(404)
    if user.id == current_user.id:
        flash("You cannot deactivate your own account.", "error")
    else:
        user.active = not user.active
        db.session.commit()
        flash(f"{user.username} is now {'active' if user.active else 'deactivated'}.", "success")
    return redirect(url_for("admin.users"))


# -- pipelines and jobs ----------------------------------------------------------------------
@bp.get("/pipelines")
@admin_required
def pipelines() -> Any:
    """Buttons that trigger each pipeline through Airflow."""
    datasets = db.session.scalars(select(Dataset).order_by(Dataset.name)).all()
    return render_template(
        "admin/pipelines.html",
        pipelines=PIPELINES.values(),
        datasets=datasets,
        csrf_form=CsrfForm(),
        selected=_int_arg("dataset_id"),
        airflow_url=current_app.config.get("AIRFLOW_PUBLIC_URL"),
    )


@bp.post("/pipelines/<kind>/run")
@admin_required
def run_pipeline(kind: str) -> Any:
    """Trigger one pipeline run; Airflow being down is reported, not a crash."""
    if kind not in PIPELINES:
        abort(404)
    if not CsrfForm().validate_on_submit():
        abort(400)
    raw_dataset = request.form.get("dataset_id", "")
    dataset_id = int(raw_dataset) if raw_dataset.isdigit() else None
    if dataset_id is not None and db.session.get(Dataset, dataset_id) is None:
        flash("That dataset no longer exists.", "error")
        return redirect(url_for("admin.pipelines"))
    try:
        job = trigger_pipeline(kind, dataset_id, request.form.to_dict(), current_user)
    except ParamError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.pipelines", dataset_id=dataset_id or ""))
    except (AirflowError, NotConfigured) as exc:
        flash(f"Could not start {PIPELINES[kind].title}: {exc}", "error")
        return redirect(url_for("admin.pipelines", dataset_id=dataset_id or ""))
    flash(f"{PIPELINES[kind].title} started (job {job.id}).", "success")
    return redirect(url_for("admin.jobs"))


@bp.get("/jobs")
@admin_required
def jobs() -> Any:
    """Pipeline runs with state and message; refreshes itself while any is active."""
    refresh_active_jobs()
    rows = recent_jobs(db.session(), 100, dataset_id=_int_arg("dataset_id"))
    active = any(j.status in ACTIVE for j in rows)
    return render_template(
        "admin/jobs.html", jobs=rows, active=active, refresh=current_app.config["JOBS_REFRESH_SECONDS"]
    )


@bp.get("/jobs.json")
@admin_required
def jobs_json() -> Any:
    """The jobs page's data, polled by its script while runs are active."""
    refresh_active_jobs()
    rows = recent_jobs(db.session(), 100, dataset_id=_int_arg("dataset_id"))
    return jsonify(
        {
            "active": any(j.status in ACTIVE for j in rows),
            "jobs": [job_json(j) for j in rows],
        }
    )


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "dataset_id": job.dataset_id,
        "status": job.status.value,
        "message": job.message,
        "counts": job.counts,
        "dag_id": job.dag_id,
        "run_id": job.run_id,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "active": job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
    }


# -- model registry and experiments ----------------------------------------------------------
@bp.get("/models")
@admin_required
def models() -> Any:
    """The model registry: every trained head, whether it was promoted, and why."""
    from include.db.models import Experiment, ModelVersion

    rows = db.session.execute(
        select(ModelVersion, Dataset.name, Experiment)
        .join(Dataset, Dataset.id == ModelVersion.dataset_id)
        .outerjoin(Experiment, Experiment.id == ModelVersion.experiment_id)
        .order_by(ModelVersion.created_at.desc())
        .limit(200)
    ).all()
    return render_template("admin/models.html", rows=rows)


@bp.get("/experiments/<int:experiment_id>")
@admin_required
def experiment(experiment_id: int) -> Any:
    """One training run: hyperparameters, data, and metrics epoch by epoch."""
    from include.db.models import Experiment

    run = db.session.get(Experiment, experiment_id)
    if run is None:
        abort(404)
    return render_template("admin/experiment.html", run=run)
