"""Apply Label Studio tasks (with their annotations) to the shadow index.

Label Studio is the source of truth: for every task it returns, the platform's annotation rows
are made equal to Label Studio's (upserted by annotation id, removed when deleted there) and the
task's label and status are recomputed:

* no usable annotation            -> back to ``assigned`` / ``imported``
* one label among all annotations -> ``labeled``
* a ground-truth annotation       -> ``labeled`` with that label (how conflicts are resolved)
* different labels                -> ``conflict`` (kept out of training until resolved)

Labels still in the outbox (include.services.label_outbox) are newer than what Label Studio
shows: they keep their rows and count as votes, and a Label Studio annotation that an earlier
delivery created is matched to its row (by the entry id it carries, or by annotator) instead
of being added a second time.

A page older than what was applied before is stale for its tasks: a task whose Label Studio
``updated_at`` is older than the one recorded is skipped (one export's page read before another
export applied a newer one must not delete the newer annotation).

Each page of tasks costs a constant number of statements, whatever its size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import Annotation, AnnotationSource, LsProject, Task, TaskStatus, User
from include.labelstudio.client import parse_ls_datetime
from include.labelstudio.label_config import label_of
from include.services.consensus import Vote, decide, holding
from include.services.label_outbox import PendingVote, adopt, pending_votes


@dataclass
class ExportSummary:
    tasks_seen: int = 0
    # Changes made by this sync: newly labeled (or relabeled), newly in conflict, unlabeled again.
    annotations_upserted: int = 0
    annotations_deleted: int = 0
    labeled: int = 0
    conflicts: int = 0
    unlabeled: int = 0
    unknown_tasks: int = 0
    unmapped_annotations: int = 0
    tasks_deleted: int = 0
    stale_tasks: int = 0

    def add(self, other: ExportSummary) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def platform_users_by_email(session: Session) -> dict[str, int]:
    return {email.lower(): uid for uid, email in session.execute(select(User.id, User.email)).tuples()}


def _completed_by_email(annotation: Mapping[str, Any], ls_users: Mapping[int, str]) -> str | None:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        email = who.get("email")
        return str(email).lower() if email else None
    if isinstance(who, int):
        email = ls_users.get(who)
        return email.lower() if email else None
    return None


def apply_ls_tasks(
    session: Session,
    project_id: int,
    ls_tasks: Sequence[Mapping[str, Any]],
    *,
    ls_users: Mapping[int, str],
    users_by_email: Mapping[str, int],
) -> ExportSummary:
    """Make the shadow index match these Label Studio tasks (one page of the project's)."""
    summary = ExportSummary(tasks_seen=len(ls_tasks))
    if not ls_tasks:
        return summary
    by_ls_id = {int(t["id"]): t for t in ls_tasks}
    rows = (
        session.execute(
            select(
                Task.id,
                Task.ls_task_id,
                Task.assigned_to,
                Task.status,
                Task.label,
                Task.labeled_at,
                Task.ls_updated_at,
                Task.label_basis,
            )
            .where(Task.ls_project_id == project_id, Task.ls_task_id.in_(list(by_ls_id)))
            .with_for_update()  # a concurrent page of the same tasks waits, then sees what this one wrote
        )
        .tuples()
        .all()
    )
    summary.unknown_tasks = len(by_ls_id) - len(rows)
    now = datetime.now(UTC)
    fresh = [row for row in rows if not _is_stale(by_ls_id[int(row[1])], row[6])]
    summary.stale_tasks = len(rows) - len(fresh)
    rows = fresh
    pending = pending_votes(session, [r[0] for r in rows])
    reviews = _reviews(session, [r[0] for r in rows])
    annotation_rows: list[dict[str, Any]] = []
    task_updates: list[dict[str, Any]] = []
    keep_pairs: list[tuple[int, int]] = []
    adoptions: list[tuple[PendingVote, int]] = []
    for task_id, ls_task_id, assigned_to, old_status, old_label, old_labeled_at, applied_at, old_basis in rows:
        ls_task = by_ls_id[int(ls_task_id)]
        unsent = list(pending.get(task_id, []))
        votes = []
        for ann in ls_task.get("annotations") or []:
            email = _completed_by_email(ann, ls_users)
            annotator_id = users_by_email.get(email) if email else None
            if annotator_id is None:
                summary.unmapped_annotations += 1
            ours = _match_pending(ann, annotator_id, unsent)
            if ours is not None:
                unsent.remove(ours)
                if ours.ls_annotation_id is None:
                    adoptions.append((ours, int(ann["id"])))
            # the platform's label is newer while its delivery is pending
            label = _pending_label(ours) if ours is not None else label_of(ann.get("result"))
            review = reviews.get(("ls", task_id, int(ann["id"])))
            if review is None and ours is not None:
                review = reviews.get(("row", task_id, ours.annotation_id))
            vote = Vote(
                label=label,
                cancelled=ours.cancelled if ours is not None else bool(ann.get("was_cancelled")),
                ground_truth=bool(ann.get("ground_truth")),
                updated_at=parse_ls_datetime(ann["updated_at"]) if ann.get("updated_at") else now,
                review=holding(*review, label) if review else None,
                who=annotator_id if annotator_id is not None else email,
            )
            votes.append((vote, ann))
            annotation_rows.append(
                {
                    "task_id": task_id,
                    "ls_annotation_id": int(ann["id"]),
                    "annotator_id": annotator_id,
                    "ls_user_email": email,
                    "label": vote.label,
                    "was_cancelled": vote.cancelled,
                    "ground_truth": vote.ground_truth,
                    "source": AnnotationSource.LABELSTUDIO.value,
                    "created_at": parse_ls_datetime(ann["created_at"]) if ann.get("created_at") else now,
                    "updated_at": vote.updated_at,
                    "synced_at": now,
                }
            )
            keep_pairs.append((task_id, int(ann["id"])))
        for pv in unsent:  # not in Label Studio yet
            review = reviews.get(("row", task_id, pv.annotation_id))
            held = holding(*review, pv.label) if review else None
            vote = Vote(
                label=None if pv.cancelled else pv.label,
                cancelled=pv.cancelled,
                ground_truth=pv.ground_truth,
                updated_at=now,
                review=held,
                who=pv.annotator_id,
            )
            votes.append((vote, {}))
        status, label, basis = decide([vote for vote, _ in votes])
        labeled_at = max((vote.updated_at for vote, _ in votes if vote.updated_at), default=None)
        if status is None:
            status = TaskStatus.ASSIGNED if assigned_to is not None else TaskStatus.IMPORTED
            labeled_at = None
        ls_updated_at = parse_ls_datetime(ls_task["updated_at"]) if ls_task.get("updated_at") else now
        changed = (status, label, labeled_at, basis) != (old_status, old_label, old_labeled_at, old_basis)
        if not changed and ls_updated_at == applied_at:
            continue  # unchanged (re-read inside the watermark overlap)
        if not changed:
            pass  # only newer in Label Studio: recorded, so an older page is known as stale
        elif status == TaskStatus.LABELED:
            summary.labeled += 1
        elif status == TaskStatus.CONFLICT:
            summary.conflicts += 1
        elif old_status in (TaskStatus.LABELED, TaskStatus.CONFLICT):
            summary.unlabeled += 1
        task_updates.append(
            {
                "id": task_id,
                "status": status,
                "label": label,
                "label_basis": basis,
                "labeled_at": labeled_at,
                "ls_updated_at": ls_updated_at,
            }
        )
    for vote_of_ours, ls_annotation_id in adoptions:
        adopt(session, vote_of_ours, ls_annotation_id)
    task_ids = [r[0] for r in rows]
    if task_ids:
        # Annotations deleted in Label Studio: rows of these tasks whose id Label Studio no longer
        # lists, except labels still on their way there.
        present = [ann_id for _, ann_id in keep_pairs]
        waiting = [pv.annotation_id for votes_of_task in pending.values() for pv in votes_of_task]
        gone = or_(Annotation.ls_annotation_id.is_(None), not_(Annotation.ls_annotation_id.in_(present)))
        result = session.execute(
            delete(Annotation).where(
                Annotation.task_id.in_(task_ids),
                gone if present else Annotation.task_id.in_(task_ids),
                not_(Annotation.id.in_(waiting)) if waiting else Annotation.task_id.in_(task_ids),
            )
        )
        summary.annotations_deleted = int(getattr(result, "rowcount", 0) or 0)
    if annotation_rows:
        base = insert(Annotation)
        upsert = base.on_conflict_do_update(
            index_elements=["task_id", "ls_annotation_id"],
            set_={
                "annotator_id": func.coalesce(base.excluded.annotator_id, Annotation.annotator_id),
                "ls_user_email": base.excluded.ls_user_email,
                "label": base.excluded.label,
                "was_cancelled": base.excluded.was_cancelled,
                "ground_truth": base.excluded.ground_truth,
                "updated_at": base.excluded.updated_at,
                "synced_at": base.excluded.synced_at,
                # a new label made in Label Studio is not the label that was reviewed
                "review": case(
                    (base.excluded.label.is_distinct_from(Annotation.reviewed_label), None),
                    else_=Annotation.review,
                ),
            },
        )
        session.execute(upsert, annotation_rows)  # executemany: compiled once, pipelined by psycopg
        summary.annotations_upserted = len(annotation_rows)
    if task_updates:
        session.execute(update(Task), task_updates)
    return summary


def _pending_label(vote: PendingVote) -> str | None:
    """The label a pending entry carries (None: it is a skip)."""
    return None if vote.cancelled else vote.label


def _reviews(session: Session, task_ids: Sequence[int]) -> dict[tuple[str, int, int], tuple[str, str | None]]:
    """The reviews on record for these tasks' annotations, by Label Studio id and by row id."""
    if not task_ids:
        return {}
    rows = session.execute(
        select(
            Annotation.task_id, Annotation.id, Annotation.ls_annotation_id, Annotation.review, Annotation.reviewed_label
        ).where(Annotation.task_id.in_(list(task_ids)), Annotation.review.is_not(None))
    ).tuples()
    out: dict[tuple[str, int, int], tuple[str, str | None]] = {}
    for task_id, row_id, ls_id, review, reviewed_label in rows:
        out[("row", task_id, row_id)] = (str(review), reviewed_label)
        if ls_id is not None:
            out[("ls", task_id, int(ls_id))] = (str(review), reviewed_label)
    return out


def _is_stale(ls_task: Mapping[str, Any], applied: datetime | None) -> bool:
    """Label Studio's copy of the task is older than the one already applied."""
    if applied is None or not ls_task.get("updated_at"):
        return False
    return parse_ls_datetime(ls_task["updated_at"]) < applied


def _match_pending(ann: Mapping[str, Any], annotator_id: int | None, unsent: list[PendingVote]) -> PendingVote | None:
    """The platform's pending label this Label Studio annotation is (an older version of)."""
    ls_id = int(ann["id"])
    for pv in unsent:
        if pv.ls_annotation_id == ls_id or ann.get("import_id") == pv.entry_id:
            return pv
    for pv in unsent:
        if (
            pv.ls_annotation_id is None
            and annotator_id is not None
            and pv.annotator_id == annotator_id
            and pv.ground_truth == bool(ann.get("ground_truth"))
        ):
            return pv
    return None


def mark_deleted_tasks(session: Session, project_id: int, live_ls_ids: set[int]) -> int:
    """Mark tasks of the project that Label Studio no longer has as ``deleted``; remember how
    many of Label Studio's tasks are not the platform's (the next count check expects them)."""
    known = session.execute(select(Task.id, Task.ls_task_id, Task.status).where(Task.ls_project_id == project_id))
    ours: set[int] = set()
    gone = []
    for task_id, ls_id, status in known.tuples():
        ours.add(int(ls_id))
        if status != TaskStatus.DELETED and int(ls_id) not in live_ls_ids:
            gone.append(task_id)
    if gone:
        session.execute(update(Task).where(Task.id.in_(gone)).values(status=TaskStatus.DELETED, assigned_to=None))
    session.execute(
        update(LsProject).where(LsProject.ls_project_id == project_id).values(foreign_tasks=len(live_ls_ids - ours))
    )
    return len(gone)


def foreign_task_count(session: Session, project_id: int) -> int:
    return int(session.scalar(select(LsProject.foreign_tasks).where(LsProject.ls_project_id == project_id)) or 0)


def count_live_tasks(session: Session, project_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(Task.id)).where(and_(Task.ls_project_id == project_id, Task.status != TaskStatus.DELETED))
        )
        or 0
    )
