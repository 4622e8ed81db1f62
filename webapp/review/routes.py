"""Review pages: the queue of submitted labels, and one label at a time, keyboard first."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.db.models import Dataset
from include.services import flags, review
from include.services.datasets import list_datasets
from include.services.guidelines import render as render_guidelines
from include.services.users import annotators
from webapp.args import int_arg
from webapp.clients import wake_dispatcher
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.review import bp
from webapp.security import reviewer_required

FILTERS = ("dataset_id", "annotator", "label", "focus")


def _query(page: int = 1) -> review.ReviewQueueQuery:
    raw = {k: v for k, v in request.args.items() if k in FILTERS and v}
    return review.ReviewQueueQuery.parse({**raw, "page": page}, by_name=True)


def _filters() -> dict[str, str]:
    """The queue's filters as they came, to keep them from one label to the next."""
    return {k: v for k, v in request.args.items() if k in FILTERS and v}


def _with_filters(endpoint: str, **values: Any) -> str:
    """The endpoint's address with the queue's filters in its query string."""
    arguments: dict[str, Any] = {**_filters(), **values}
    return url_for(endpoint, **arguments)


@bp.get("/")
@reviewer_required
def queue_page() -> Any:
    """The labels waiting for review, oldest first, with filters."""
    query = _query(int_arg("page", 1, maximum=1_000_000) or 1)
    session = db.session()
    page = review.queue(session, current_user, query)
    return render_template(
        "review/queue.html",
        page=page,
        held=flags.held_tasks(session, query.dataset_id),
        flag_titles=flags.TITLES,
        form=CsrfForm(),
        query=query,
        waiting=review.queue_size(session, current_user, query),
        datasets=list_datasets(session),
        annotators=annotators(session),
        focus=review.FOCUS,
        filters=_filters(),
    )


@bp.post("/flags/<id:flag_id>/resolve")
@reviewer_required
def resolve_flag(flag_id: int) -> Any:
    """A reviewer (or admin) has dealt with a flagged task: it can be assigned again."""
    checked(CsrfForm())
    resolved = flags.resolve_any(db.session(), flag_id, current_user)
    db.session.commit()
    flash(_("Flag on task %(id)s resolved: the task can be assigned again.", id=resolved.task_id), "success")
    return redirect(_with_filters("review.queue_page"))


@bp.get("/next")
@reviewer_required
def next_() -> Any:
    """Open the oldest label waiting under the filters (after the one passed over, if any)."""
    found = review.next_entry(db.session(), current_user, _query(), after=int_arg("after", None, maximum=2**63 - 1))
    if found is None:
        flash(_("Nothing left to review under these filters."), "success")
        return redirect(_with_filters("review.queue_page"))
    return redirect(_with_filters("review.annotation", annotation_id=found.annotation_id))


@bp.get("/annotations/<bigid:annotation_id>")
@reviewer_required
def annotation(annotation_id: int) -> Any:
    """Review one label: accept, fix or reject it."""
    return annotation_view(annotation_id)


def annotation_view(annotation_id: int) -> Any:
    session = db.session()
    shown = review.entry(session, current_user, annotation_id)
    dataset = session.get_one(Dataset, shown.dataset_id)
    return render_template(
        "review/annotation.html",
        entry=shown,
        dataset=dataset,
        guidelines=render_guidelines(dataset.guidelines),
        history=review.history(session, shown.task_id),
        form=CsrfForm(),
        filters=_filters(),
        queue_url=_with_filters("review.queue_page"),
        skip_url=_with_filters("review.next_", after=annotation_id),
    )


@bp.post("/annotations/<bigid:annotation_id>")
@reviewer_required
@shown_on(annotation_view)
def verdict(annotation_id: int) -> Any:
    """Record the verdict, then open the next label under the same filters."""
    checked(CsrfForm())
    body = review.ReviewVerdict.parse(request.form.to_dict(), form=True)
    record = review.review_annotation(db.session(), annotation_id, current_user, body)
    db.session.commit()
    if record.verdict == review.FIXED:
        wake_dispatcher()
        flash(_("Fixed: %(before)s → %(after)s.", before=record.label_before, after=record.label_after), "success")
    elif record.verdict == review.REJECTED:
        flash(_("Rejected: the task went back to its annotator with your comment."), "info")
    else:
        flash(_("Accepted “%(label)s”.", label=record.label_after), "success")
    found = review.next_entry(db.session(), current_user, _query(), after=annotation_id)
    if found is None:
        found = review.next_entry(db.session(), current_user, _query())
    if found is None:
        flash(_("That was the last label under these filters."), "success")
        return redirect(_with_filters("review.queue_page"))
    return redirect(_with_filters("review.annotation", annotation_id=found.annotation_id))
