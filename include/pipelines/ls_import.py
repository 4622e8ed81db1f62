"""ls_import: send a dataset's new items to Label Studio in bulk and record the task ids."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from include.db.session import session_scope
from include.labelstudio.client import LabelStudioClient, LabelStudioError
from include.pipelines.catalog import IMPORT_BATCH, ImportValues
from include.pipelines.runner import JobHandle, RunRef, SkipStep, tracked_job
from include.services import pii, quality
from include.services.datasets import all_dataset_ids, get_dataset
from include.services.ls_import import (
    ReconcileReport,
    count_pending_items,
    mark_rewritten,
    pending_items,
    reconcile_unrecorded,
    record_imported,
    stale_tasks,
    task_payload,
)
from include.services.ls_projects import (
    MlBackendRef,
    WebhookRef,
    connect_ml_backend,
    ensure_project,
    push_instruction,
    refresh_webhooks,
    register_webhook,
)

log = logging.getLogger(__name__)
REWRITE_BATCH = 200


def import_dataset(
    db_url: str,
    client: LabelStudioClient,
    dataset_id: int,
    *,
    limit: int | None = None,
    batch_size: int = IMPORT_BATCH.default,
    default_project_id: int | None = None,
    job: JobHandle | None = None,
    ml_backend: MlBackendRef | None = None,
    webhook: WebhookRef | None = None,
) -> dict[str, Any]:
    """Import up to ``limit`` not-yet-imported items of one dataset; commits after every batch.

    A failure mid-run leaves every finished batch recorded; the next run first adopts tasks that
    Label Studio created but the platform did not record, then continues where this one stopped.
    Tasks whose item was de-identified after import are rewritten in Label Studio first, even
    when the quality gate holds new items back (privacy does not wait for data quality).
    """
    with session_scope(db_url) as session:
        dataset = get_dataset(session, dataset_id)
        pii.require_deidentified(session, dataset, "import into Label Studio")
        if dataset.ls_project_id is None:  # a new project only for data that passed the gate
            quality.require_passed(session, dataset, "importing into Label Studio")
        # Record the intent first: a crash after Label Studio made the project leaves this set,
        # and only then does the next run search Label Studio for that project.
        may_exist = dataset.ls_project_id is None and dataset.ls_project_requested_at is not None
        if dataset.ls_project_id is None and default_project_id is None:
            dataset.ls_project_requested_at = datetime.now(UTC)
    with session_scope(db_url) as session:
        dataset = get_dataset(session, dataset_id)
        project = ensure_project(
            session,
            client,
            dataset,
            default_project_id=default_project_id,
            search_existing=may_exist,
        )
    project_id = project.id
    ml_problem = None
    if ml_backend is not None:
        with session_scope(db_url) as session:
            ml_problem = connect_ml_backend(session, client, project_id, ml_backend)
    if webhook is not None:
        with session_scope(db_url) as session:
            hook_problem = register_webhook(session, client, project_id, webhook)
        ml_problem = "; ".join(p for p in (ml_problem, hook_problem) if p) or None
    with session_scope(db_url) as session:  # the guidelines as the project's instruction
        told = push_instruction(session, client, project_id, get_dataset(session, dataset_id))
    ml_problem = "; ".join(p for p in (ml_problem, told) if p) or None
    recovered = ReconcileReport()
    if not project.created:  # a project made just now holds no task to recover
        with session_scope(db_url) as session:
            recovered = reconcile_unrecorded(session, client, dataset_id, project_id)
    rewritten = _rewrite_stale(db_url, client, dataset_id, project_id, job)
    with session_scope(db_url) as session:
        quality.require_passed(session, get_dataset(session, dataset_id), "importing into Label Studio")
        pending = count_pending_items(session, dataset_id)
    total = pending if limit is None else min(limit, pending)
    imported = 0

    def fetch(after_item_id: int, size: int) -> list[tuple[int, dict[str, Any]]]:
        """The next batch as (item id, Label Studio task payload), ready to send."""
        if size <= 0:
            return []
        with session_scope(db_url) as session:
            rows = pending_items(session, dataset_id, after_item_id=after_item_id, limit=size)
        return [(item_id, task_payload(item_id, text, dataset_id)) for item_id, text in rows]

    def write(pairs: list[tuple[int, int]]) -> None:
        with session_scope(db_url) as session:
            record_imported(session, dataset_id, project_id, pairs)

    # While Label Studio ingests batch N, one helper thread reads batch N+1 (the next batch is
    # chosen by item-id keyset, so it does not wait for batch N's rows) and another writes batch
    # N-1's task rows. Every write is awaited before the run ends or fails; a crash in between is
    # what reconciliation repairs.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="ls-import-read") as reader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="ls-import-write") as writer,
    ):
        in_flight: Future[None] | None = None
        upcoming = reader.submit(fetch, 0, min(batch_size, total))
        while imported < total:
            batch = upcoming.result()
            if not batch:
                break
            upcoming = reader.submit(fetch, batch[-1][0], min(batch_size, total - imported - len(batch)))
            try:
                ls_ids = client.import_tasks(project_id, [payload for _, payload in batch])
            except LabelStudioError:
                if in_flight is not None:
                    in_flight.result()
                _try_reconcile(db_url, client, dataset_id, project_id)
                raise
            if in_flight is not None:
                in_flight.result()  # surfaces the previous batch's write error
            in_flight = writer.submit(write, [(i, ls) for (i, _), ls in zip(batch, ls_ids, strict=True)])
            imported += len(batch)
            if job is not None:
                job.progress(
                    f"imported {imported} of {total} tasks into project {project_id}", imported=imported, total=total
                )
        if in_flight is not None:
            in_flight.result()
    return {
        "dataset_id": dataset_id,
        "ls_project_id": project_id,
        "imported": imported,
        "recovered": recovered.adopted,
        "duplicates_deleted": recovered.duplicates_deleted,
        "remaining": pending - imported,
        "rewritten": rewritten,
        "ml_problem": ml_problem,
    }


def _rewrite_stale(
    db_url: str, client: LabelStudioClient, dataset_id: int, project_id: int, job: JobHandle | None
) -> int:
    """Give Label Studio the current text of tasks whose item was de-identified after import
    (a policy attached or changed later), so its copy holds no original; one PATCH per task
    (Label Studio Community has no bulk task update), committed batch by batch."""
    done, after = 0, 0
    while True:
        with session_scope(db_url) as session:
            batch = stale_tasks(session, dataset_id, after_id=after, limit=REWRITE_BATCH)
        if not batch:
            return done
        for _, ls_task_id, item_id, text_ in batch:
            client.update_task_data(ls_task_id, task_payload(item_id, text_, dataset_id)["data"], project_id=project_id)
        with session_scope(db_url) as session:
            mark_rewritten(session, [task_id for task_id, *_ in batch])
        done += len(batch)
        after = batch[-1][0]
        if job is not None:
            job.progress(f"rewrote {done} Label Studio tasks with their de-identified text", rewritten=done)


def _try_reconcile(db_url: str, client: LabelStudioClient, dataset_id: int, project_id: int) -> None:
    """After a failed POST, adopt whatever Label Studio did create (if it still answers)."""
    try:
        with session_scope(db_url) as session:
            reconcile_unrecorded(session, client, dataset_id, project_id)
    except Exception as exc:  # the next run reconciles again
        log.warning("could not reconcile after a failed import (the next run will): %s", exc)


def run_ls_import(
    db_url: str,
    client: LabelStudioClient,
    run: RunRef,
    values: ImportValues,
    *,
    default_project_id: int | None = None,
    ml_backend: MlBackendRef | None = None,
    webhook: WebhookRef | None = None,
) -> dict[str, Any]:
    """The ``ls_import`` job: one dataset, or every dataset with new items when ``dataset_id`` is None.

    ``ml_backend``: connected to every project this run creates (ML_BACKEND_URL); ``webhook``:
    registered on them (WEBHOOK_URL), which makes the loop live.
    """
    dataset_id, limit, batch_size = values.dataset_id, values.limit, values.batch_size
    hook_problems: list[str] = []
    with tracked_job(db_url, "ls_import", run, values) as job:
        if dataset_id is not None:
            dataset_ids = [dataset_id]
        else:
            with session_scope(db_url) as session:
                dataset_ids = [
                    d
                    for d in all_dataset_ids(session)
                    if count_pending_items(session, d) or stale_tasks(session, d, after_id=0, limit=1)
                ]
            if webhook is not None:  # a rotated secret reaches projects with nothing new to import too
                with session_scope(db_url) as session:
                    hook_problems = refresh_webhooks(session, client, webhook)
            if not dataset_ids:
                raise SkipStep("; ".join(["no dataset has items to import", *hook_problems]))
        results = []
        remaining_limit = limit
        blocked: list[str] = []
        for ds in dataset_ids:
            try:
                result = import_dataset(
                    db_url,
                    client,
                    ds,
                    limit=remaining_limit,
                    batch_size=batch_size,
                    default_project_id=default_project_id,
                    job=job,
                    ml_backend=ml_backend,
                    webhook=webhook,
                )
            except (pii.DeidentificationRequired, quality.QualityGateFailed) as exc:
                if dataset_id is not None:
                    raise
                blocked.append(str(exc))  # the nightly run goes on with the other datasets
                log.warning("%s", exc)
                continue
            results.append(result)
            if remaining_limit is not None:
                remaining_limit -= result["imported"]
                if remaining_limit <= 0:
                    break
        imported = sum(r["imported"] for r in results)
        recovered = sum(r["recovered"] for r in results)
        message = f"imported {imported} tasks"
        if recovered:
            message += f" (and recovered {recovered} from an interrupted run)"
        rewritten = sum(r["rewritten"] for r in results)
        if rewritten:
            message += f"; rewrote {rewritten} tasks in Label Studio with their de-identified text"
        if len(results) > 1:
            message += f" across {len(results)} datasets"
        if blocked:
            message += f"; {len(blocked)} blocked: " + "; ".join(blocked)
        problems = [r["ml_problem"] for r in results if r.get("ml_problem")] + hook_problems
        if problems:
            message += "; " + "; ".join(problems)
        per_dataset = {str(r["dataset_id"]): r["imported"] + r["recovered"] for r in results}
        job.done(
            message,
            imported=imported,
            recovered=recovered,
            datasets=len(results),
            blocked=len(blocked),
            per_dataset=per_dataset,  # which run brought a dataset's tasks (include.demo.report)
        )
        job.result = {"imported": imported, "recovered": recovered, "datasets": results, "blocked": blocked}
    return job.result
