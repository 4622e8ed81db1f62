"""What the demo tells a new user about its dataset after each pipeline: what happened to the
dataset, whichever run did the work.

On a first start shortly after 01:00 the scheduled ``ls_import`` imports every dataset at the
same moment as the demo's own run; the demo's run then finds nothing left and imports 0, which
is true of the run but not of the dataset. The report says where the dataset stands and which
run brought its tasks.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import JOB_STEP, Dataset, Job, JobStatus, Task, TaskStatus
from include.services.stats import dataset_stats


def import_report(session: Session, dataset_id: int, run_id: str) -> str:
    """One line: how many of the dataset's items are tasks in Label Studio, and by which runs."""
    dataset = session.get_one(Dataset, dataset_id)
    stats = dataset_stats(session, dataset)
    by: list[str] = []
    for job in session.scalars(
        select(Job)
        .where(Job.step == "ls_import", Job.kind == JOB_STEP, Job.status == JobStatus.SUCCESS)
        .order_by(Job.id)
    ):
        brought = int(((job.counts or {}).get("per_dataset") or {}).get(str(dataset_id), 0))
        if brought:
            by.append(f"{brought} by {'this run' if job.run_id == run_id else f'run {job.run_id}'}")
    line = f"dataset {dataset.name!r}: {stats['imported']} of {dataset.item_count} items are tasks in Label Studio"
    return line + (f" (imported {', '.join(by)})" if by else "")


def loop_report(session: Session, dataset_id: int) -> str:
    """One line: labeled, pre-labeled and scored tasks of the dataset (what the loop left)."""
    tasks = list(session.scalars(select(Task).where(Task.dataset_id == dataset_id, Task.status != TaskStatus.DELETED)))
    prelabeled = sum(t.prelabel_label is not None for t in tasks)
    scored = sum(t.priority > 0 for t in tasks)
    labeled = sum(t.label is not None for t in tasks)
    return (
        f"dataset {dataset_id}: {len(tasks)} tasks, {labeled} labeled, {prelabeled} pre-labeled, "
        f"{scored} with an uncertainty priority (hardest first)"
    )
