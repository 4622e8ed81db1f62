"""Admin: every task with filters, single assignment, evaluation membership and conflict resolution."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from include.db.models import Dataset, TaskStatus
from include.params import INT8_MAX
from include.services import eval_set
from include.services.assignment import assign_task, unassign_task
from include.services.datasets import list_datasets
from include.services.eval_set import Membership
from include.services.labeling import LabelChoice, annotations_of, resolve_conflict
from include.services.task_queries import admin_tasks, get_task, parse_status
from include.services.users import annotators, find_user
from webapp.admin import bp
from webapp.args import int_arg, page_arg
from webapp.clients import wake_dispatcher
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.security import admin_required


def tasks_view(args: MultiDict[str, str]) -> Any:
    """The task list for the filters in ``args`` (the query string, or the one a form came from)."""
    status = parse_status(args.get("status"))
    assignee = args.get("assignee", "")
    assignee_user = find_user(db.session(), assignee) if assignee and assignee != "none" else None
    if assignee and assignee != "none" and assignee_user is None:
        flash(_("No user named %(name)s.", name=repr(assignee)), "error")
    dataset_id = int_arg("dataset_id", args=args)
    page = admin_tasks(
        db.session(),
        task_id=int_arg("task", maximum=INT8_MAX, args=args),
        dataset_id=dataset_id,
        status=status,
        assignee_id=assignee_user.id if assignee_user else None,
        unassigned=assignee == "none",
        label=args.get("label") or None,
        page=page_arg(args=args),
        per_page=50,
    )
    datasets = list_datasets(db.session())
    names = [u.username for u in annotators(db.session())]
    return render_template(
        "admin/tasks.html",
        page=page,
        csrf_form=CsrfForm(),
        datasets=datasets,
        statuses=[s.value for s in TaskStatus],
        annotators=[(n, n) for n in names],
        labels=sorted({label for d in datasets for label in d.labels}),
        args=args,
        eval_members=eval_set.member_task_ids(db.session(), dataset_id) if dataset_id else set(),
    )


def _back_args() -> MultiDict[str, str]:
    """The filters of the tasks page the form was posted from."""
    target = request.form.get("back") or ""
    if not target.startswith("/admin/tasks"):
        return MultiDict()
    return MultiDict(parse_qsl(urlsplit(target).query))


def _back() -> Any:
    target = request.form.get("back") or ""
    return redirect(target if target.startswith("/admin/tasks") else url_for("admin.tasks"))


def _tasks_again(**_: Any) -> Any:
    return tasks_view(_back_args())


@bp.get("/tasks")
@admin_required
@shown_on(lambda: tasks_view(MultiDict()))
def tasks() -> Any:
    """All tasks with filters, highest priority first."""
    return tasks_view(request.args)


@bp.post("/tasks/<bigid:task_id>/eval")
@admin_required
@shown_on(_tasks_again)
def eval_membership(task_id: int) -> Any:
    """Add a labeled task to its dataset's evaluation set as a gold item, or drop it."""
    checked(CsrfForm())
    membership = Membership.parse(request.form.to_dict(), form=True)
    _, message = eval_set.set_task_membership(db.session(), task_id, membership, current_user.id)
    db.session.commit()
    flash(message[0].upper() + message[1:] + ".", "success")
    return _back()


@bp.post("/tasks/<bigid:task_id>/assign")
@admin_required
@shown_on(_tasks_again)
def assign(task_id: int) -> Any:
    """Assign (or reassign) one task."""
    checked(CsrfForm())
    username = request.form.get("username", "")
    assign_task(db.session(), task_id, find_user(db.session(), username))
    db.session.commit()
    flash(_("Task %(id)s assigned to %(who)s.", id=task_id, who=username), "success")
    return _back()


@bp.post("/tasks/<bigid:task_id>/unassign")
@admin_required
@shown_on(_tasks_again)
def unassign(task_id: int) -> Any:
    """Return a task to the pool."""
    checked(CsrfForm())
    unassign_task(db.session(), task_id)
    db.session.commit()
    flash(_("Task %(id)s is unassigned.", id=task_id), "success")
    return _back()


def resolve_view(task_id: int) -> Any:
    task = get_task(db.session(), task_id)
    dataset = db.session.get(Dataset, task.dataset_id) or abort(404)
    return render_template(
        "admin/resolve.html",
        task=task,
        labels=list(dataset.labels),
        annotations=annotations_of(db.session(), task_id),
        csrf_form=CsrfForm(),
    )


@bp.get("/tasks/<bigid:task_id>/resolve")
@admin_required
def resolve(task_id: int) -> Any:
    """A conflict: every annotation of the task, and the choice of the final label."""
    return resolve_view(task_id)


@bp.post("/tasks/<bigid:task_id>/resolve")
@admin_required
@shown_on(resolve_view)
def resolve_post(task_id: int) -> Any:
    """Settle a conflict: the admin's label becomes the ground truth in Label Studio."""
    checked(CsrfForm())
    choice = LabelChoice.parse(request.form.to_dict(), form=True)
    task = resolve_conflict(db.session(), task_id, current_user, choice.label)
    db.session.commit()
    wake_dispatcher()
    flash(_("Task %(id)s resolved as %(label)s.", id=task_id, label=choice.label), "success")
    return redirect(url_for("admin.tasks", status="conflict", dataset_id=task.dataset_id))
