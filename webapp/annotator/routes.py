"""Annotator pages: my tasks, my stats, and labeling one task at a time."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from include.db.models import Dataset, TaskStatus
from include.services import flags, review
from include.services.guidelines import render as render_guidelines
from include.services.label_outbox import summary as outbox_summary
from include.services.labeling import LabelChoice, own_task, submit_label
from include.services.stats import annotator_stats
from include.services.task_queries import annotator_tasks, next_task, parse_status
from webapp.annotator import bp
from webapp.args import page_arg
from webapp.clients import wake_dispatcher
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.security import annotator_required


@bp.get("/tasks")
@annotator_required
@shown_on(lambda: tasks_view(None))
def tasks() -> Any:
    """My tasks, highest priority first, with my statistics."""
    return tasks_view(parse_status(request.args.get("status")))


def tasks_view(status: TaskStatus | None) -> Any:
    page = annotator_tasks(db.session(), current_user, status=status, page=page_arg())
    return render_template(
        "annotator/tasks.html",
        page=page,
        stats=annotator_stats(db.session(), current_user),
        outbox=outbox_summary(db.session(), user_id=current_user.id),
        returned=review.returned_to(db.session(), current_user),
        status=status.value if status else "",
        statuses=["assigned", "labeled", "conflict"],
    )


@bp.get("/next")
@annotator_required
def next_() -> Any:
    """Open my highest-priority task still to label."""
    task = next_task(db.session(), current_user)
    if task is None:
        flash("You have no tasks left to label. Nice work!", "success")
        return redirect(url_for("annotator.tasks"))
    return redirect(url_for("annotator.label", task_id=task.id))


@bp.get("/tasks/<bigid:task_id>")
@annotator_required
def label(task_id: int) -> Any:
    """Label one task: the text, the model's suggestion, one button (or key) per label."""
    return label_view(task_id)


def label_view(task_id: int) -> Any:
    task = own_task(db.session(), task_id, current_user)
    dataset = db.session.get(Dataset, task.dataset_id)
    ls_url = current_app.config.get("LS_PUBLIC_URL")
    ls_link = f"{ls_url}/projects/{task.ls_project_id}/data?task={task.ls_task_id}" if ls_url else None
    return render_template(
        "annotator/label.html",
        task=task,
        dataset=dataset,
        guidelines=render_guidelines(dataset.guidelines) if dataset else "",
        flag_kinds=flags.TITLES,
        form=CsrfForm(),
        ls_link=ls_link,
        returned=next((r for r in review.returned_to(db.session(), current_user) if r.task_id == task.id), None),
        stats=annotator_stats(db.session(), current_user),
        outbox=outbox_summary(db.session(), user_id=current_user.id),
    )


@bp.post("/tasks/<bigid:task_id>/label")
@annotator_required
@shown_on(label_view)
def submit(task_id: int) -> Any:
    """Save my label (Label Studio gets it right after, through the outbox) and open my next task."""
    own_task(db.session(), task_id, current_user)
    checked(CsrfForm())
    body = LabelChoice.parse(request.form.to_dict(), form=True)
    choice = body.label
    task = submit_label(db.session(), task_id, current_user, choice, body.guidelines_version, body.lead_time)
    db.session.commit()
    wake_dispatcher()
    if task.status == TaskStatus.CONFLICT:
        flash(f"Saved “{choice}”. Another annotator chose differently; an admin will resolve it.", "info")
    else:
        flash(f"Saved “{choice}”.", "success")
    following = next_task(db.session(), current_user, exclude_id=task_id)
    if following is None:
        flash("That was your last task. Nice work!", "success")
        return redirect(url_for("annotator.tasks"))
    return redirect(url_for("annotator.label", task_id=following.id))


@bp.post("/tasks/<bigid:task_id>/flag")
@annotator_required
@shown_on(label_view)
def flag(task_id: int) -> Any:
    """Skip the task, say "not sure", or flag it for an admin; then open my next task."""
    own_task(db.session(), task_id, current_user)
    checked(CsrfForm())
    body = flags.FlagRequest.parse(request.form.to_dict(), form=True)
    flags.flag_task(db.session(), task_id, current_user, body)
    db.session.commit()
    if body.kind in ("skip", "not_sure"):
        flash(f"{flags.TITLES[body.kind]}: the task goes to someone else.", "info")
    else:
        flash(f"Flagged ({flags.TITLES[body.kind].lower()}): an admin will look at it.", "info")
    following = next_task(db.session(), current_user, exclude_id=task_id)
    if following is None:
        return redirect(url_for("annotator.tasks"))
    return redirect(url_for("annotator.label", task_id=following.id))
