"""Annotator pages: my tasks, my stats, and labeling one task at a time."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.db.models import Dataset, TaskStatus
from include.services import flags, performance, review
from include.services.guidelines import render as render_guidelines
from include.services.label_outbox import summary as outbox_summary
from include.services.labeling import LabelChoice, own_task, submit_label
from include.services.stats import annotator_stats
from include.services.task_queries import annotator_tasks, as_seen_by, next_task, parse_status
from webapp.annotator import bp
from webapp.args import int_arg, page_arg
from webapp.charts import draw
from webapp.clients import wake_dispatcher
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.security import annotator_required
from webapp.serializers import csv_response, svg_response


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
        views=as_seen_by(db.session(), current_user, page.items),
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
        flash(_("You have no tasks left to label. Nice work!"), "success")
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
        view=as_seen_by(db.session(), current_user, [task])[task.id],
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
        flash(
            _("Saved “%(label)s”. Another annotator chose differently; an admin will resolve it.", label=choice), "info"
        )
    else:
        flash(_("Saved “%(label)s”.", label=choice), "success")
    following = next_task(db.session(), current_user, exclude_id=task_id)
    if following is None:
        flash(_("That was your last task. Nice work!"), "success")
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
        flash(_("%(kind)s: the task goes to someone else.", kind=_(flags.TITLES[body.kind])), "info")
    else:
        flash(_("Flagged (%(kind)s): an admin will look at it.", kind=_(flags.TITLES[body.kind]).lower()), "info")
    following = next_task(db.session(), current_user, exclude_id=task_id)
    if following is None:
        return redirect(url_for("annotator.tasks"))
    return redirect(url_for("annotator.label", task_id=following.id))


def _my_datasets() -> list[Dataset]:
    return performance.datasets_of(db.session(), current_user)


@bp.get("/performance")
@annotator_required
def performance_page() -> Any:
    """My own figures on one of my datasets (nobody else's)."""
    mine = _my_datasets()
    chosen = int_arg("dataset_id", mine[0].id if mine else None)
    dataset = next((d for d in mine if d.id == chosen), None)
    if chosen is not None and dataset is None:
        abort(404)
    report = performance.report(db.session(), dataset, user_id=current_user.id) if dataset else None
    return render_template("annotator/performance.html", datasets=mine, dataset=dataset, perf=report)


def _own_dataset(dataset_id: int) -> Dataset:
    return performance.dataset_of(db.session(), current_user, dataset_id)


@bp.get("/performance/<id:dataset_id>/<name>.svg")
@annotator_required
def performance_chart(dataset_id: int, name: str) -> Any:
    if name not in ("throughput", "lead-times", "gold", "gold-trend"):
        abort(404)
    report = performance.report(db.session(), _own_dataset(dataset_id), user_id=current_user.id)
    return svg_response(draw(name, performance.as_json(report)))


@bp.get("/performance/<id:dataset_id>.csv")
@annotator_required
def performance_csv(dataset_id: int) -> Any:
    dataset = _own_dataset(dataset_id)
    report = performance.report(db.session(), dataset, user_id=current_user.id)
    return csv_response(performance.csv_bytes(report), f"{dataset.name}-{current_user.username}.csv")
