"""Admin: every task with filters, single assignment, and conflict resolution."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from include.db.models import Dataset, Task, TaskStatus
from include.params import INT8_MAX
from include.services import eval_set
from include.services.assignment import AssignmentError, assign_task, unassign_task
from include.services.datasets import list_datasets
from include.services.eval_set import EvalSetError
from include.services.labeling import LabelingError, annotations_of, resolve_conflict
from include.services.task_queries import admin_tasks, parse_status
from include.services.users import find_user
from webapp.admin import bp
from webapp.admin.common import annotator_choices
from webapp.admin.forms import AssignForm, ResolveForm
from webapp.args import int_arg, page_arg
from webapp.clients import wake_dispatcher
from webapp.extensions import db
from webapp.forms import CsrfForm
from webapp.security import admin_required


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
    assignee_user = find_user(db.session(), assignee) if assignee and assignee != "none" else None
    if assignee and assignee != "none" and assignee_user is None:
        flash(f"No user named {assignee!r}.", "error")
    dataset_id = int_arg("dataset_id")
    page = admin_tasks(
        db.session(),
        task_id=int_arg("task", maximum=INT8_MAX),
        dataset_id=dataset_id,
        status=status,
        assignee_id=assignee_user.id if assignee_user else None,
        unassigned=assignee == "none",
        label=request.args.get("label") or None,
        page=page_arg(),
        per_page=50,
    )
    assign_form = AssignForm()
    assign_form.username.choices = annotator_choices()
    datasets = list_datasets(db.session())
    return render_template(
        "admin/tasks.html",
        page=page,
        assign_form=assign_form,
        csrf_form=CsrfForm(),
        datasets=datasets,
        statuses=[s.value for s in TaskStatus],
        annotators=annotator_choices(),
        labels=sorted({label for d in datasets for label in d.labels}),
        args=request.args,
        eval_members=eval_set.member_task_ids(db.session(), dataset_id) if dataset_id else set(),
    )


@bp.post("/tasks/<bigid:task_id>/eval")
@admin_required
def eval_membership(task_id: int) -> Any:
    """Add a labeled task to its dataset's evaluation set as a gold item, or drop it."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    task = db.session.get(Task, task_id) or abort(404)
    dataset = db.session.get(Dataset, task.dataset_id) or abort(404)
    try:
        message = eval_set.set_membership(
            db.session(), dataset, task_id, request.form.get("member") == "1", current_user.id
        )
        db.session.commit()
    except EvalSetError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(message[0].upper() + message[1:] + ".", "success")
    return _back_to_tasks()


def _back_to_tasks() -> Any:
    target = request.form.get("back") or ""
    return redirect(target if target.startswith("/admin/tasks") else url_for("admin.tasks"))


@bp.post("/tasks/<bigid:task_id>/assign")
@admin_required
def assign(task_id: int) -> Any:
    """Assign (or reassign) one task."""
    form = AssignForm()
    form.username.choices = annotator_choices()
    if not form.validate_on_submit():
        flash("Choose an annotator.", "error")
        return _back_to_tasks()
    try:
        assign_task(db.session(), task_id, find_user(db.session(), form.username.data or ""))
        db.session.commit()
        flash(f"Task {task_id} assigned to {form.username.data}.", "success")
    except AssignmentError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return _back_to_tasks()


@bp.post("/tasks/<bigid:task_id>/unassign")
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


@bp.route("/tasks/<bigid:task_id>/resolve", methods=["GET", "POST"])
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
            resolve_conflict(db.session(), task_id, current_user, form.label.data or "")
            db.session.commit()
            wake_dispatcher()
            flash(f"Task {task_id} resolved as {form.label.data}.", "success")
            return redirect(url_for("admin.tasks", status="conflict", dataset_id=task.dataset_id))
        except LabelingError as exc:
            db.session.rollback()
            flash(f"Not resolved: {exc}", "error")
    return render_template(
        "admin/resolve.html",
        task=task,
        form=form,
        annotations=annotations_of(db.session(), task_id),
        csrf_form=CsrfForm(),
    )
