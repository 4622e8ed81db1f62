"""ls_export: pull what changed in Label Studio since the last watermark into the shadow index.

Never the full ``/export`` and never one request per task: tasks come from the Data Manager
list filtered on ``updated_at`` (which Label Studio bumps when an annotation is created,
updated or deleted), a page of 1,000 at a time with their annotations. The first sync of a
project only reads tasks that have annotations. Deleted tasks are detected by comparing task
counts and, only when they differ, listing task ids.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from include.db.locks import advisory_lock
from include.db.session import session_scope
from include.labelstudio.client import LabelStudioClient, parse_ls_datetime
from include.pipelines.catalog import ExportValues
from include.pipelines.runner import JobHandle, RunRef, SkipStep, tracked_job
from include.services import eval_set, webhooks
from include.services.datasets import datasets_of_projects, ls_project_ids
from include.services.ls_export import (
    ExportSummary,
    apply_ls_tasks,
    count_live_tasks,
    foreign_task_count,
    mark_deleted_tasks,
    platform_users_by_email,
)
from include.services.ls_identity import check_project
from include.services.ls_projects import export_watermark, mark_exported, save_watermark

log = logging.getLogger(__name__)

# Re-read a short window before the watermark: a transaction in Label Studio may commit a task
# whose updated_at is slightly older than one we already saw. Re-applying a task is harmless.
WATERMARK_OVERLAP = timedelta(seconds=5)
PAGE_SIZE = 1000


ANNOTATED = {"filter": "filter:tasks:total_annotations", "operator": "greater", "type": "Number", "value": 0}


def export_project(
    db_url: str, client: LabelStudioClient, project_id: int, *, job: JobHandle | None = None, full: bool = False
) -> ExportSummary:
    """Sync one Label Studio project; advances its watermark after each committed page.

    One export of a project at a time (the hourly one, the nightly loop's and the webhooks'
    may start together): a second waits, then reads from the first's watermark, so an older
    page never overwrites what a newer one applied.
    """
    with advisory_lock(db_url, "ls_export", project_id):
        return _export_project(db_url, client, project_id, job=job, full=full)


def _export_project(
    db_url: str, client: LabelStudioClient, project_id: int, *, job: JobHandle | None, full: bool
) -> ExportSummary:
    with session_scope(db_url) as session:
        check_project(session, client, project_id)  # a new Label Studio's project 1 is not ours
        watermark = None if full else export_watermark(session, project_id)
        users_by_email = platform_users_by_email(session)
    ls_users = {int(u["id"]): str(u.get("email") or "") for u in client.list_users()}
    since = watermark - WATERMARK_OVERLAP if watermark else None
    summary = ExportSummary()
    page: list[dict[str, Any]] = []
    newest = watermark

    def flush() -> None:
        nonlocal newest
        if not page:
            return
        with session_scope(db_url) as session:
            summary.add(apply_ls_tasks(session, project_id, page, ls_users=ls_users, users_by_email=users_by_email))
            page_newest = max(parse_ls_datetime(t["updated_at"]) for t in page)
            newest = max(newest, page_newest) if newest else page_newest
            save_watermark(session, project_id, newest)
        page.clear()
        if job is not None:
            job.progress(f"project {project_id}: synced {summary.tasks_seen} changed tasks", **summary.as_dict())

    # The first sync of a project reads only annotated tasks; later ones what changed.
    filters = [] if since is not None else [ANNOTATED]
    for ls_task in client.tasks_updated_since(project_id, since, filters=filters, page_size=PAGE_SIZE):
        page.append(ls_task)
        if len(page) >= PAGE_SIZE:
            flush()
    flush()
    summary.tasks_deleted = _sync_deletions(db_url, client, project_id)
    with session_scope(db_url) as session:
        mark_exported(session, project_id)
    return summary


def _sync_deletions(db_url: str, client: LabelStudioClient, project_id: int) -> int:
    """Mark tasks deleted in Label Studio; lists ids only when the counts disagree.

    Label Studio's count is the platform's live tasks plus the hand-made ones last counted; any
    other number means something was deleted (or made by hand) since, and the ids are listed.
    """
    ls_count = int(client.get_project(project_id).get("task_number") or 0)
    with session_scope(db_url) as session:
        expected = count_live_tasks(session, project_id) + foreign_task_count(session, project_id)
    if expected == ls_count:
        return 0
    live = {int(t["id"]) for t in client.iter_tasks(project_id, fields="task_only", include=["id"], page_size=5000)}
    with session_scope(db_url) as session:
        return mark_deleted_tasks(session, project_id, live)


def run_ls_export(
    db_url: str,
    client: LabelStudioClient,
    run: RunRef,
    values: ExportValues,
    *,
    only: list[int] | None = None,
) -> dict[str, Any]:
    """The ``ls_export`` job over the projects of one dataset, or of all datasets.

    ``only``: the datasets whose webhooks started this run (the live loop), instead of all.
    """
    if only is not None and len(only) == 1:
        values, only = values.replace(dataset_id=only[0]), None
    dataset_id, full = values.dataset_id, values.full
    with tracked_job(db_url, "ls_export", run, values, params={"only": only} if only else None) as job:
        with session_scope(db_url) as session:
            projects = sorted(
                {p for d in only for p in ls_project_ids(session, d)} if only else ls_project_ids(session, dataset_id)
            )
            # Committed before the first read: a webhook from now on asks for a new export.
            webhooks.export_started(session, [d.id for d in datasets_of_projects(session, projects)])
        if not projects:
            raise SkipStep("no dataset has been imported into Label Studio yet")
        total = ExportSummary()
        for project_id in projects:
            total.add(export_project(db_url, client, project_id, job=job, full=full))
        if total.labeled:
            with session_scope(db_url) as session:  # new labels the policy reserves join the eval set now
                for dataset in datasets_of_projects(session, projects):
                    eval_set.refresh(session, dataset)
        message = f"exported {total.labeled} labeled tasks"
        extras = []
        if total.conflicts:
            extras.append(f"{total.conflicts} in conflict")
        if total.unlabeled:
            extras.append(f"{total.unlabeled} unlabeled again")
        if total.tasks_deleted:
            extras.append(f"{total.tasks_deleted} deleted in Label Studio")
        if total.unmapped_annotations:
            extras.append(f"{total.unmapped_annotations} annotations by users unknown to the platform")
        if extras:
            message += " (" + ", ".join(extras) + ")"
        job.done(message, **total.as_dict(), projects=len(projects))
        job.result = {"projects": projects, **total.as_dict()}
    return job.result
