"""The review stage: reviewers accept, fix or reject submitted labels, and every verdict is kept.

* **accept**: the label stands and now rests on a review (``label_basis = "reviewed"``);
* **fix**: the reviewer chooses the right label. The annotation itself is updated, here and,
  through the outbox, in Label Studio (which stays the store of annotations), still attributed
  to its annotator; the review row keeps the label before and after;
* **reject** (with a comment): the label stops counting and the task goes back to its
  annotator's list with the comment, until they answer again.

A review holds for the label it judged (``annotations.reviewed_label``): a new label from the
annotator, in the web app or in Label Studio, puts the annotation back in the queue. Reviewers
never review their own labels, and a verdict names the label the reviewer saw, so a label that
changed while the page was open is not judged blind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from include.db.models import (
    Annotation,
    Dataset,
    EvalItem,
    Item,
    Review,
    Task,
    TaskFlag,
    TaskStatus,
    User,
)
from include.errors import Conflict, Forbidden, Invalid, NotFound
from include.params import ParamSpec, Values, param
from include.services import gold
from include.services.consensus import decide_task, holding
from include.services.free_text import check_free_text
from include.services.label_outbox import enqueue
from include.services.paging import DATASET_FILTER, Page, PageQuery
from include.services.task_queries import sent_back

ACCEPTED, FIXED, REJECTED = "accepted", "fixed", "rejected"
VERDICT_WORDS = {"accept": ACCEPTED, "fix": FIXED, "reject": REJECTED}

FOCUS = {
    "all": "every label not reviewed yet",
    "disagreement": "tasks whose annotators disagree",
    "model": "labels the model disagrees with",
    "flagged": "tasks with an open flag",
    "evaluation": "evaluation items waiting for a checked label",
    "suspect": "likely mistakes (label reliability, from the last quality check)",
}
QUEUE_FOCUS = ParamSpec(
    "focus", "Show", "choice", "all", choices=tuple(FOCUS), help="; ".join(f"{k}: {v}" for k, v in FOCUS.items())
)
ANNOTATOR_FILTER = ParamSpec("annotator", "Annotator", "str", None, nullable=True, max_length=64, help="a username")
LABEL_FILTER = ParamSpec("label", "Label", "str", None, nullable=True, max_length=64, help="the label given")

VERDICT = ParamSpec("verdict", "Verdict", "choice", choices=tuple(VERDICT_WORDS), help="accept, fix or reject")
FIXED_LABEL = ParamSpec(
    "label", "Right label", "str", None, nullable=True, max_length=64, help="for fix: the label it should have"
)
LABEL_SEEN = ParamSpec(
    "label_seen", "Label judged", "str", max_length=64, help="the label the reviewer saw (a changed one is not judged)"
)
COMMENT = ParamSpec(
    "comment", "Comment", "text", "", max_length=1000, help="for the annotator; required to reject (no personal data)"
)


@dataclass(frozen=True, kw_only=True)
class ReviewQueueQuery(PageQuery):
    """Which submitted labels a reviewer sees, oldest first."""

    dataset_id: int | None = param(DATASET_FILTER)
    annotator: str | None = param(ANNOTATOR_FILTER)
    label: str | None = param(LABEL_FILTER)
    focus: str = param(QUEUE_FOCUS)


@dataclass(frozen=True, kw_only=True)
class ReviewVerdict(Values):
    """A reviewer's verdict on one annotation."""

    verdict: str = param(VERDICT)
    label_seen: str = param(LABEL_SEEN)
    label: str | None = param(FIXED_LABEL)
    comment: str = param(COMMENT)


class ReviewError(Invalid):
    """The verdict cannot be recorded; the message says why."""


class AnnotationNotFound(NotFound):
    """No annotation with that id waits for (or can take) a review."""


class AlreadyReviewed(Conflict):
    """Someone reviewed the label, or the annotator changed it, while the page was open."""


@dataclass(frozen=True)
class QueueEntry:
    """One label waiting for review, with what a reviewer needs to judge it."""

    annotation_id: int
    task_id: int
    dataset_id: int
    dataset_name: str
    annotator: str | None
    label: str
    created_at: datetime
    lead_time: float | None
    guidelines_version: int | None
    text: str
    model_label: str | None
    model_score: float | None
    status: str
    others: list[tuple[str | None, str | None, str | None]]  # (username, label, holding review) of other annotations
    flags: list[str]
    evaluation: bool

    @property
    def model_disagrees(self) -> bool:
        return self.model_label is not None and self.model_label != self.label


def require_reviewer(user: User) -> None:
    if not user.may_review:
        raise Forbidden("only reviewers and admins review labels")


def _queue_statement(query: ReviewQueueQuery, reviewer: User) -> Select[Any]:
    annotator = aliased(User)
    stmt = (
        select(Annotation.id)
        .join(Task, Task.id == Annotation.task_id)
        .where(
            Annotation.review.is_(None),
            Annotation.label.is_not(None),
            Annotation.was_cancelled.is_(False),
            Annotation.ground_truth.is_(False),
            Task.status != TaskStatus.DELETED,
            # never their own labels, and never a text that waits for de-identification
            or_(Annotation.annotator_id.is_(None), Annotation.annotator_id != reviewer.id),
            ~exists().where(Item.id == Task.item_id, Item.pii_status == "pending"),
        )
    )
    if query.dataset_id is not None:
        stmt = stmt.where(Task.dataset_id == query.dataset_id)
    if query.annotator:
        stmt = stmt.join(annotator, annotator.id == Annotation.annotator_id).where(
            annotator.username == query.annotator
        )
    if query.label:
        stmt = stmt.where(Annotation.label == query.label)
    if query.focus == "disagreement":
        stmt = stmt.where(Task.status == TaskStatus.CONFLICT)
    elif query.focus == "model":
        stmt = stmt.where(Task.prelabel_label.is_not(None), Task.prelabel_label != Annotation.label)
    elif query.focus == "flagged":
        stmt = stmt.where(exists().where(TaskFlag.task_id == Task.id, TaskFlag.resolved_at.is_(None)))
    elif query.focus == "suspect":
        stmt = stmt.where(Annotation.suspect.is_not(None))
    elif query.focus == "evaluation":
        stmt = stmt.where(
            exists().where(
                Item.id == Task.item_id,
                EvalItem.dataset_id == Task.dataset_id,
                EvalItem.text_hash == Item.text_hash,
                EvalItem.excluded.is_(False),
            )
        )
    return stmt.order_by(Annotation.id)


def queue(session: Session, reviewer: User, query: ReviewQueueQuery) -> Page[QueueEntry]:
    """One page of labels waiting for review, oldest first (no total: it may be millions)."""
    require_reviewer(reviewer)
    offset = (query.page - 1) * query.limit
    ids = list(session.scalars(_queue_statement(query, reviewer).offset(offset).limit(query.limit + 1)))
    entries = entries_of(session, ids[: query.limit])
    return Page(items=entries, page=query.page, limit=query.limit, has_next=len(ids) > query.limit)


def next_entry(
    session: Session, reviewer: User, query: ReviewQueueQuery, *, after: int | None = None
) -> QueueEntry | None:
    """The oldest label waiting for review (after annotation ``after``, when the reviewer passed
    on one), under the reviewer's filters."""
    require_reviewer(reviewer)
    stmt = _queue_statement(query, reviewer)
    if after is not None:
        stmt = stmt.where(Annotation.id > after)
    found = session.scalar(stmt.limit(1))
    entries = entries_of(session, [found]) if found is not None else []
    return entries[0] if entries else None


def entry(session: Session, reviewer: User, annotation_id: int) -> QueueEntry:
    """One annotation as the review page shows it (reviewed already or not).

    Raises:
        AnnotationNotFound: no such annotation, or one the reviewer may not review.
    """
    require_reviewer(reviewer)
    entries = entries_of(session, [annotation_id])
    annotation = session.get(Annotation, annotation_id)
    if not entries or annotation is None or annotation.annotator_id == reviewer.id:
        raise AnnotationNotFound(f"no annotation {annotation_id} to review")
    return entries[0]


def entries_of(session: Session, annotation_ids: list[int]) -> list[QueueEntry]:
    """Queue entries for these annotations, in the order given (a few statements for a page)."""
    if not annotation_ids:
        return []
    rows = session.execute(
        select(Annotation, Task, Dataset.name, User.username, Item.text, Item.text_hash, Item.pii_status)
        .join(Task, Task.id == Annotation.task_id)
        .join(Item, Item.id == Task.item_id)
        .join(Dataset, Dataset.id == Task.dataset_id)
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(Annotation.id.in_(annotation_ids), Annotation.label.is_not(None), Item.pii_status != "pending")
    ).all()
    task_ids = list({task.id for _, task, *_ in rows})
    others: dict[int, list[tuple[int, str | None, str | None, str | None]]] = {}
    for ann_id, task_id, username, label, review, reviewed_label, cancelled in session.execute(
        select(
            Annotation.id,
            Annotation.task_id,
            User.username,
            Annotation.label,
            Annotation.review,
            Annotation.reviewed_label,
            Annotation.was_cancelled,
        )
        .outerjoin(User, User.id == Annotation.annotator_id)
        .where(Annotation.task_id.in_(task_ids))
        .order_by(Annotation.id)
    ).tuples():
        if not cancelled:
            others.setdefault(task_id, []).append((ann_id, username, label, holding(review, reviewed_label, label)))
    flags: dict[int, list[str]] = {}
    for task_id, kind in session.execute(
        select(TaskFlag.task_id, TaskFlag.kind).where(TaskFlag.task_id.in_(task_ids), TaskFlag.resolved_at.is_(None))
    ).tuples():
        flags.setdefault(task_id, []).append(str(kind))
    hashes = {(task.dataset_id, str(h)) for _, task, _, _, _, h, _ in rows}
    members = {
        (int(d), str(h))
        for d, h in session.execute(
            select(EvalItem.dataset_id, EvalItem.text_hash).where(
                EvalItem.text_hash.in_([h for _, h in hashes]), EvalItem.excluded.is_(False)
            )
        ).tuples()
    }
    by_id = {}
    for annotation, task, dataset_name, username, text, text_hash, _ in rows:
        by_id[annotation.id] = QueueEntry(
            annotation_id=annotation.id,
            task_id=task.id,
            dataset_id=task.dataset_id,
            dataset_name=dataset_name,
            annotator=username,
            label=str(annotation.label),
            created_at=annotation.updated_at,
            lead_time=annotation.lead_time,
            guidelines_version=annotation.guidelines_version,
            text=text,
            model_label=task.prelabel_label,
            model_score=task.prelabel_score,
            status=task.status.value,
            others=[(u, lbl, r) for a_id, u, lbl, r in others.get(task.id, []) if a_id != annotation.id],
            flags=flags.get(task.id, []),
            evaluation=(task.dataset_id, str(text_hash)) in members,
        )
    return [by_id[i] for i in annotation_ids if i in by_id]


def review_annotation(session: Session, annotation_id: int, reviewer: User, verdict: ReviewVerdict) -> Review:
    """Record ``reviewer``'s verdict on an annotation and apply it (see the module docstring).

    Raises:
        Forbidden: not a reviewer. AnnotationNotFound: no such annotation, or the reviewer's own.
        AlreadyReviewed: the label changed or was reviewed since the reviewer saw it.
        ReviewError: a fix without a label of the dataset, a reject without a comment, a label
        that cannot be sent to Label Studio. PersonalDataInText: the comment holds personal data.
    """
    require_reviewer(reviewer)
    found = session.execute(
        select(Annotation, Task)
        .join(Task, Task.id == Annotation.task_id)
        .where(Annotation.id == annotation_id)
        .with_for_update(of=[Task, Annotation])  # one verdict at a time, in step with labels and exports
    ).first()
    if found is None or found[0].annotator_id == reviewer.id:
        raise AnnotationNotFound(f"no annotation {annotation_id} to review")
    annotation, task = found
    session.refresh(annotation)
    if task.status == TaskStatus.DELETED or annotation.label is None or annotation.was_cancelled:
        raise AnnotationNotFound(f"annotation {annotation_id} has no label to review (deleted or skipped)")
    if annotation.ground_truth:
        raise ReviewError("this is an admin's resolution of a conflict: it is not reviewed")
    if annotation.label != verdict.label_seen:
        raise AlreadyReviewed(
            f"the label changed to {annotation.label!r} since you saw {verdict.label_seen!r}: look at it again"
        )
    if holding(annotation.review, annotation.reviewed_label, annotation.label) is not None:
        raise AlreadyReviewed(f"this label was already {annotation.review} by another reviewer")
    dataset = session.get_one(Dataset, task.dataset_id)
    kind = VERDICT_WORDS[verdict.verdict]
    comment = verdict.comment.strip()
    check_free_text(comment, "the comment", readers="annotators")
    before = str(annotation.label)
    after = before
    if kind == FIXED:
        if not verdict.label or verdict.label not in dataset.labels:
            raise ReviewError(f"choose the right label, one of: {', '.join(dataset.labels)}")
        if annotation.annotator_id is None:
            raise ReviewError("this label was made in Label Studio by someone who is not a platform user: fix it there")
        after = verdict.label
        if after == before:
            kind = ACCEPTED  # "fixed" to the label it already had
    if kind == REJECTED and not comment:
        raise ReviewError("say why the label is wrong: the annotator gets the comment with the task")
    now = datetime.now(UTC)
    if kind == FIXED:
        annotation.label, annotation.updated_at = after, now
    annotation.review, annotation.reviewed_label = kind, after
    annotation.reviewed_by, annotation.reviewed_at = reviewer.id, now
    record = Review(
        task_id=task.id,
        annotation_id=annotation.id,
        annotator_id=annotation.annotator_id,
        reviewer_id=reviewer.id,
        verdict=kind,
        label_before=before,
        label_after=after,
        comment=comment,
        created_at=now,
    )
    session.add(record)
    session.flush()
    if kind == FIXED:
        enqueue(session, annotation)  # Label Studio's annotation gets the right label, still the annotator's
    decide_task(session, task)
    if task.status == TaskStatus.LABELED and task.labeled_at is None:
        task.labeled_at = now
    session.flush()
    annotator = session.get(User, annotation.annotator_id) if annotation.annotator_id is not None else None
    if annotator is not None:
        gold.check(session, dataset, annotator)  # a verdict is a checked answer too
    return record


@dataclass(frozen=True)
class Returned:
    """A label a reviewer sent back to its annotator, with why."""

    task_id: int
    dataset_id: int
    label: str
    comment: str
    reviewer: str | None
    reviewed_at: datetime | None


def returned_to(session: Session, user: User, *, limit: int = 100) -> list[Returned]:
    """The user's labels a reviewer rejected that they have not answered again, newest first."""
    reviewer = aliased(User)
    last_comment = (
        select(Review.comment)
        .where(Review.annotation_id == Annotation.id, Review.verdict == REJECTED)
        .order_by(Review.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Annotation.task_id,
            Task.dataset_id,
            Annotation.label,
            last_comment,
            reviewer.username,
            Annotation.reviewed_at,
        )
        .join(Task, Task.id == Annotation.task_id)
        .outerjoin(reviewer, reviewer.id == Annotation.reviewed_by)
        .where(
            *sent_back(user.id),
            Task.status != TaskStatus.DELETED,
        )
        .order_by(Annotation.reviewed_at.desc())
        .limit(limit)
    ).tuples()
    return [Returned(int(t), int(d), str(lbl), str(c or ""), r, at) for t, d, lbl, c, r, at in rows]


def history(session: Session, task_id: int) -> list[tuple[Review, str | None, str | None]]:
    """Every verdict on a task, oldest first, with the reviewer's and the annotator's usernames."""
    reviewer, annotator = aliased(User), aliased(User)
    rows = session.execute(
        select(Review, reviewer.username, annotator.username)
        .outerjoin(reviewer, reviewer.id == Review.reviewer_id)
        .outerjoin(annotator, annotator.id == Review.annotator_id)
        .where(Review.task_id == task_id)
        .order_by(Review.id)
    ).all()
    return [(r, rv, an) for r, rv, an in rows]


def queue_size(session: Session, reviewer: User, query: ReviewQueueQuery, cap: int = 10_000) -> int:
    """How many labels wait under these filters, counted up to ``cap`` (a bounded count stays
    cheap on a million tasks; the page says "10,000+")."""
    stmt = _queue_statement(query, reviewer).order_by(None).limit(cap)
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
