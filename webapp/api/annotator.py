"""API: an annotator's own tasks, figures and labels (nobody else's)."""

from __future__ import annotations

from typing import Any

from include.db.models import TaskStatus
from include.services import flags, guidelines
from include.services.label_outbox import summary as outbox_summary
from include.services.labeling import LabelChoice, own_task, submit_label
from include.services.paging import DatasetFilter
from include.services.stats import annotator_stats
from include.services.task_queries import MyTasksQuery, annotator_tasks, as_seen_by
from webapp.api import ANNOTATOR, api_user, paged, route
from webapp.clients import wake_dispatcher
from webapp.extensions import db
from webapp.serializers import flag_json, guidelines_json, outbox_json, seen_task_json

TAG = "annotator"


@route("GET", "/annotator/tasks", tag=TAG, roles=ANNOTATOR, query=MyTasksQuery, response="Task", listing="tasks")
def my_tasks(query: MyTasksQuery) -> dict[str, Any]:
    """My tasks, highest priority first; filters: dataset_id, status."""
    page = annotator_tasks(
        db.session(),
        api_user(),
        status=TaskStatus(query.status) if query.status else None,
        dataset_id=query.dataset_id,
        page=query.page,
        per_page=query.limit,
    )
    views = as_seen_by(db.session(), api_user(), page.items)
    return paged("tasks", page, lambda t: seen_task_json(t, views[t.id]))


@route("GET", "/annotator/stats", tag=TAG, roles=ANNOTATOR, query=DatasetFilter, response="AnnotatorStats")
def my_stats(query: DatasetFilter) -> dict[str, Any]:
    """My figures: assigned, labeled, to do, per label, labeled today."""
    return annotator_stats(db.session(), api_user(), query.dataset_id)


@route(
    "POST", "/annotator/tasks/<bigid:task_id>/label", tag=TAG, roles=ANNOTATOR, body=LabelChoice,
    response="TaskEnvelope", errors=(404,),
)  # fmt: skip
def label(task_id: int, body: LabelChoice) -> dict[str, Any]:
    """Label one of my tasks: ``{"label": "<one of the dataset's labels>"}``, with the
    ``guidelines_version`` the annotator had open (``GET /annotator/datasets/<id>/guidelines``).

    Saved at once; Label Studio gets it through the outbox (``GET /annotator/outbox`` says how
    many of my labels have not reached it yet). Sending the same label again changes nothing.
    """
    own_task(db.session(), task_id, api_user(), include_deleted=True)
    task = submit_label(db.session(), task_id, api_user(), body.label, body.guidelines_version, body.lead_time)
    # The answer is read before the commit, in the same transaction: after it, every row the
    # label touched would be loaded again (a press is the hottest request there is).
    answer = {"task": seen_task_json(task, as_seen_by(db.session(), api_user(), [task])[task.id])}
    db.session.commit()
    wake_dispatcher()
    return answer


@route(
    "GET", "/annotator/datasets/<id:dataset_id>/guidelines", tag=TAG, roles=ANNOTATOR, response="Guidelines",
    errors=(404,),
)  # fmt: skip
def my_guidelines(dataset_id: int) -> dict[str, Any]:
    """The guidelines of a dataset I have tasks in; send their ``version`` with each label."""
    dataset = guidelines.for_annotator(db.session(), dataset_id, api_user())
    return guidelines_json(db.session(), dataset, with_versions=False)


@route(
    "POST", "/annotator/tasks/<bigid:task_id>/flag", tag=TAG, roles=ANNOTATOR, body=flags.FlagRequest,
    response="FlagEnvelope", errors=(404,),
)  # fmt: skip
def flag(task_id: int, body: flags.FlagRequest) -> dict[str, Any]:
    """Skip one of my tasks, say "not sure", or flag it (``bad_item``, ``pii_left``,
    ``guideline_unclear``) with an optional ``note``: it leaves my list."""
    raised = flags.flag_task(db.session(), task_id, api_user(), body)
    db.session.commit()
    return {"flag": flag_json(raised, api_user().username)}


@route("GET", "/annotator/outbox", tag=TAG, roles=ANNOTATOR, response="Outbox")
def my_outbox() -> dict[str, Any]:
    """How many of my labels are still on their way to Label Studio."""
    return outbox_json(outbox_summary(db.session(), user_id=api_user().id))
