"""API: the review queue and verdicts (reviewers and admins), and an annotator's labels sent back."""

from __future__ import annotations

from typing import Any

from include.db.models import Role
from include.services import performance, review
from include.services.datasets import get_dataset
from include.services.paging import DatasetFilter
from webapp.api import ANNOTATOR, api_user, paged, route
from webapp.clients import wake_dispatcher
from webapp.extensions import db
from webapp.serializers import queue_entry_json, returned_json, review_json

TAG = "review"
REVIEWERS: tuple[Role, ...] = (Role.ADMIN, Role.REVIEWER)


@route(
    "GET", "/review/queue", tag=TAG, roles=REVIEWERS, query=review.ReviewQueueQuery, response="ReviewEntry",
    listing="entries",
)  # fmt: skip
def review_queue(query: review.ReviewQueueQuery) -> dict[str, Any]:
    """Labels waiting for review, oldest first; filters: dataset_id, annotator, label, and focus
    (disagreement, model, flagged, evaluation). Never the reviewer's own labels."""
    return paged("entries", review.queue(db.session(), api_user(), query), queue_entry_json)


@route(
    "GET", "/review/annotations/<bigid:annotation_id>", tag=TAG, roles=REVIEWERS, response="ReviewEntryEnvelope",
    errors=(404,),
)  # fmt: skip
def review_entry(annotation_id: int) -> dict[str, Any]:
    """One annotation as a reviewer sees it, with the task's verdicts on record."""
    session = db.session()
    shown = review.entry(session, api_user(), annotation_id)
    return {
        "entry": queue_entry_json(shown),
        "history": [review_json(r, rv, an) for r, rv, an in review.history(session, shown.task_id)],
    }


@route(
    "POST", "/review/annotations/<bigid:annotation_id>", tag=TAG, roles=REVIEWERS, body=review.ReviewVerdict,
    status=201, response="ReviewEnvelope", errors=(404, 409),
)  # fmt: skip
def review_verdict(annotation_id: int, body: review.ReviewVerdict) -> dict[str, Any]:
    """Accept, fix or reject a label: ``{"verdict": "fix", "label_seen": "NG", "label": "OK"}``.

    ``label_seen`` is the label judged: 409 when it changed meanwhile or someone reviewed it
    first. A fix updates the annotation in Label Studio through the outbox; a reject needs a
    ``comment`` and sends the task back to its annotator.
    """
    user = api_user()
    record = review.review_annotation(db.session(), annotation_id, user, body)
    db.session.commit()
    if record.verdict == review.FIXED:
        wake_dispatcher()
    return {"review": review_json(record, user.username, None)}


@route(
    "GET", "/datasets/<id:dataset_id>/performance", tag=TAG, query=None, response="Performance", errors=(404,)
)  # fmt: skip
def dataset_performance(dataset_id: int) -> dict[str, Any]:
    """Every annotator's figures on a dataset: labels per day, seconds to label, gold accuracy with
    its 95 % interval and alert, reviewers' verdicts, Cohen's kappa with each other annotator,
    skips and flags."""
    dataset = get_dataset(db.session(), dataset_id)
    return performance.as_json(performance.report(db.session(), dataset))


@route("GET", "/annotator/performance", tag="annotator", roles=ANNOTATOR, query=DatasetFilter, response="Performance")
def my_performance(query: DatasetFilter) -> dict[str, Any]:
    """My own figures on a dataset I have tasks in (``dataset_id``; the first of them by default)."""
    user = api_user()
    dataset = performance.dataset_of(db.session(), user, query.dataset_id)
    return performance.as_json(performance.report(db.session(), dataset, user_id=user.id))


@route("GET", "/annotator/returned", tag="annotator", roles=ANNOTATOR, response="Returned")
def my_returned() -> dict[str, Any]:
    """My labels a reviewer sent back, with their comments: label those tasks again."""
    return {"returned": [returned_json(r) for r in review.returned_to(db.session(), api_user())]}
