"""The label outbox: labels are committed to the platform first, then delivered to Label Studio.

An annotator's label is one transaction (annotation row, task status, outbox entry); the web
request never waits for Label Studio. The dispatcher (:mod:`include.workers.label_dispatcher`)
claims due entries, writes them to Label Studio and records the annotation id. Every step can
be repeated:

* an entry is claimed with ``FOR UPDATE SKIP LOCKED`` and a lease, so two dispatchers never send
  the same entry at once, and one that dies mid-send leaves it to be claimed again when the
  lease runs out;
* each entry carries ``import_id = entry id`` into Label Studio, and before creating anything the
  dispatcher looks for the entry's (or the annotator's) annotation on the task, so a second
  delivery finds the first instead of duplicating it;
* a new label for the same annotation bumps ``version``; a delivery of an older version does not
  mark the entry sent.

Delivery goes at Label Studio's speed, not faster: at most ``LS_WRITE_CONCURRENCY`` rounds write
at once over all web processes (:func:`delivery_slot`). Label Studio on SQLite serialises its
writers, so one writer is its fastest (bench/load.py measured 1, 2 and 4); more only queue
inside it, behind the annotators' own saves in its UI.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import Annotation, LabelOutbox, OutboxStatus, Task, TaskStatus, User
from include.services.consensus import decide_task

LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(seconds=15)  # Label Studio back: everything drains within seconds


def outbox_key(task_id: int, user_id: int, ground_truth: bool = False) -> str:
    """The idempotency key of an annotator's annotation on a task (an admin's resolution apart)."""
    return f"task:{task_id}:user:{user_id}" + (":ground-truth" if ground_truth else "")


def enqueue(session: Session, annotation: Annotation, *, ground_truth: bool = False) -> None:
    """Make ``annotation``'s current label (or its skip) due for delivery (new entry, or a new version)."""
    if annotation.annotator_id is None or (annotation.label is None and not annotation.was_cancelled):
        raise ValueError("only an annotator's labeled or skipped annotation can be delivered")
    cancelled = bool(annotation.was_cancelled and annotation.label is None)
    stmt = insert(LabelOutbox).values(
        idempotency_key=outbox_key(annotation.task_id, annotation.annotator_id, ground_truth),
        annotation_id=annotation.id,
        task_id=annotation.task_id,
        user_id=annotation.annotator_id,
        label=annotation.label or "",
        ground_truth=ground_truth,
        cancelled=cancelled,
        ls_annotation_id=annotation.ls_annotation_id,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["idempotency_key"],
            set_={
                "label": stmt.excluded.label,
                "cancelled": stmt.excluded.cancelled,
                "version": LabelOutbox.version + 1,
                "status": OutboxStatus.PENDING.value,
                "next_attempt_at": func.now(),
                "last_error": "",
                "updated_at": func.now(),
                "ls_annotation_id": func.coalesce(LabelOutbox.ls_annotation_id, stmt.excluded.ls_annotation_id),
            },
        )
    )


# -- what people see --------------------------------------------------------------------------
@dataclass(frozen=True)
class OutboxSummary:
    waiting: int
    failing: int  # waiting after at least one failed delivery
    dead: int
    oldest_waiting_at: datetime | None
    last_error: str
    sent_last_minute: int = 0  # how fast Label Studio takes them in right now

    def lag_seconds(self, now: datetime | None = None) -> float:
        """How long the oldest waiting label has waited (0 when none waits)."""
        if self.oldest_waiting_at is None:
            return 0.0
        return max(0.0, ((now or datetime.now(UTC)) - self.oldest_waiting_at).total_seconds())


def summary(session: Session, *, user_id: int | None = None) -> OutboxSummary:
    """Labels waiting to reach Label Studio (one annotator's, or everyone's), and how many it
    took in the last minute. Reads only entries not yet sent (a partial index), never the
    month of sent ones."""
    where = [LabelOutbox.user_id == user_id] if user_id is not None else []
    pending = LabelOutbox.status == OutboxStatus.PENDING
    row = session.execute(
        select(
            func.count().filter(pending),
            func.count().filter(pending, LabelOutbox.last_error != ""),
            func.count().filter(LabelOutbox.status == OutboxStatus.DEAD),
            func.min(LabelOutbox.created_at).filter(pending),
        ).where(LabelOutbox.status != OutboxStatus.SENT, *where)
    ).one()
    error = session.scalar(
        select(LabelOutbox.last_error)
        .where(pending, LabelOutbox.last_error != "", *where)
        .order_by(LabelOutbox.updated_at.desc())
        .limit(1)
    )
    sent = session.scalar(select(func.count()).where(LabelOutbox.sent_at > func.now() - timedelta(minutes=1), *where))
    return OutboxSummary(int(row[0]), int(row[1]), int(row[2]), row[3], error or "", int(sent or 0))


# -- the dispatcher's side --------------------------------------------------------------------
_SLOT_LOCKS = 0x4F555458  # "OUTX": the advisory-lock namespace of the delivery slots


@contextmanager
def delivery_slot(db_url: str, slots: int) -> Iterator[bool]:
    """Hold one of ``slots`` delivery slots shared by every process (a session advisory lock on a
    connection of its own, released with it, or by PostgreSQL when the process dies); yields
    False when all are taken: another round is writing, so this one leaves it to that one."""
    from include.db.session import get_engine

    with get_engine(db_url).connect() as conn:
        for slot in range(max(1, slots)):
            if conn.scalar(text("SELECT pg_try_advisory_lock(:ns, :slot)"), {"ns": _SLOT_LOCKS, "slot": slot}):
                conn.commit()
                try:
                    yield True
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:ns, :slot)"), {"ns": _SLOT_LOCKS, "slot": slot})
                    conn.commit()
                return
        conn.rollback()
        yield False


@dataclass(frozen=True)
class Delivery:
    """A claimed entry with what Label Studio needs to store it."""

    entry_id: int
    version: int
    attempts: int  # including this one: above 1, an earlier delivery may have reached Label Studio
    annotation_id: int
    project_id: int
    ls_task_id: int
    user_id: int
    ls_user_id: int | None
    email: str
    username: str
    label: str
    ground_truth: bool
    ls_annotation_id: int | None
    lead_time: float | None = None  # seconds the annotator took (Label Studio's lead_time)
    cancelled: bool = False  # a skip: Label Studio gets was_cancelled and no result


_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM label_outbox
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE label_outbox o SET attempts = o.attempts + 1, next_attempt_at = now() + :lease, updated_at = now()
    FROM due, tasks t, users u, annotations a
    WHERE o.id = due.id AND t.id = o.task_id AND u.id = o.user_id AND a.id = o.annotation_id
    RETURNING o.id, o.version, o.attempts, o.annotation_id, t.ls_project_id, t.ls_task_id, o.user_id,
              u.ls_user_id, u.email, u.username, o.label, o.ground_truth, o.ls_annotation_id, a.lead_time,
              o.cancelled
    """
)


def claim(session: Session, limit: int, *, lease: timedelta = LEASE) -> list[Delivery]:
    """Take up to ``limit`` due entries for delivery; commit at once so others skip them."""
    rows = session.execute(_CLAIM, {"limit": limit, "lease": lease}).tuples().all()
    return sorted((Delivery(*row) for row in rows), key=lambda d: d.entry_id)


def renew(session: Session, delivery: Delivery, *, lease: timedelta = LEASE) -> bool:
    """Extend the entry's lease right before it is sent; False when it is not ours any more.

    Why: a batch is delivered one entry at a time, each call up to Label Studio's timeout, so the
    tail of a batch claimed with one lease could expire under a slow Label Studio and be claimed
    (and sent) by another dispatcher as well. Renewing per entry keeps each send inside a lease
    that is longer than one call; ``attempts`` says whose claim it is (each claim adds one).
    """
    result = session.execute(
        update(LabelOutbox)
        .where(
            LabelOutbox.id == delivery.entry_id,
            LabelOutbox.attempts == delivery.attempts,
            LabelOutbox.status == OutboxStatus.PENDING,
        )
        .values(next_attempt_at=func.now() + lease)
    )
    return bool(getattr(result, "rowcount", 0))


def set_ls_user(session: Session, user_id: int, ls_user_id: int) -> None:
    session.execute(update(User).where(User.id == user_id).values(ls_user_id=ls_user_id))


def delivered(session: Session, delivery: Delivery, ls_annotation_id: int) -> None:
    """Label Studio holds the entry's label as ``ls_annotation_id``: record it on the entry and
    on the annotation row (the entry stays due if a newer label arrived meanwhile)."""
    session.execute(
        update(LabelOutbox)
        .where(LabelOutbox.id == delivery.entry_id)
        .values(
            ls_annotation_id=ls_annotation_id,
            status=case((LabelOutbox.version == delivery.version, OutboxStatus.SENT.value), else_=LabelOutbox.status),
            sent_at=func.now(),
            last_error="",
            next_attempt_at=func.now(),
            updated_at=func.now(),
        )
    )
    _adopt_ls_id(session, delivery.annotation_id, ls_annotation_id)


def _adopt_ls_id(session: Session, annotation_id: int, ls_annotation_id: int) -> None:
    """Give the annotation row its Label Studio id. If an export already brought the same Label
    Studio annotation in as a row of its own, that row is the same annotation: it goes, and
    the task's status is decided again from what is left."""
    same_task = select(Annotation.task_id).where(Annotation.id == annotation_id).scalar_subquery()
    other = session.scalar(
        select(Annotation).where(
            Annotation.ls_annotation_id == ls_annotation_id,
            Annotation.task_id == same_task,  # an id means that annotation only within its task
            Annotation.id != annotation_id,
        )
    )
    if other is not None:
        session.delete(other)
        session.flush()
    session.execute(update(Annotation).where(Annotation.id == annotation_id).values(ls_annotation_id=ls_annotation_id))
    if other is not None:
        redecide_task(session, other.task_id)


def failed(session: Session, delivery: Delivery, error: str, *, permanent: bool = False) -> None:
    """A delivery failed: try again later (backing off), or give up when it never can succeed."""
    delay = min(timedelta(seconds=2 ** min(delivery.attempts, 10)), MAX_BACKOFF)
    session.execute(
        update(LabelOutbox)
        .where(LabelOutbox.id == delivery.entry_id, LabelOutbox.version == delivery.version)
        .values(
            status=OutboxStatus.DEAD.value if permanent else OutboxStatus.PENDING.value,
            last_error=error[:2000],
            next_attempt_at=func.now() + delay,
            updated_at=func.now(),
        )
    )


def retry_now(session: Session) -> int:
    """Make every waiting entry due at once (Label Studio is back); returns how many."""
    result = session.execute(
        update(LabelOutbox)
        .where(LabelOutbox.status == OutboxStatus.PENDING, LabelOutbox.next_attempt_at > func.now())
        .values(next_attempt_at=func.now())
    )
    return int(getattr(result, "rowcount", 0) or 0)


# -- shared with the export -------------------------------------------------------------------
@dataclass(frozen=True)
class PendingVote:
    """A label the platform holds that Label Studio may not have yet (or has an older version of)."""

    annotation_id: int
    task_id: int
    annotator_id: int
    label: str
    ground_truth: bool
    ls_annotation_id: int | None
    entry_id: int
    cancelled: bool = False  # a skip on its way


def pending_votes(session: Session, task_ids: Sequence[int]) -> dict[int, list[PendingVote]]:
    """Undelivered outbox entries of these tasks, by task id."""
    if not task_ids:
        return {}
    rows = session.execute(
        select(
            LabelOutbox.annotation_id,
            LabelOutbox.task_id,
            LabelOutbox.user_id,
            LabelOutbox.label,
            LabelOutbox.ground_truth,
            LabelOutbox.ls_annotation_id,
            LabelOutbox.id,
            LabelOutbox.cancelled,
        ).where(LabelOutbox.task_id.in_(list(task_ids)), LabelOutbox.status == OutboxStatus.PENDING)
    ).tuples()
    out: dict[int, list[PendingVote]] = {}
    for row in rows:
        vote = PendingVote(*row)
        out.setdefault(vote.task_id, []).append(vote)
    return out


def adopt(session: Session, vote: PendingVote, ls_annotation_id: int) -> None:
    """An export found the Label Studio annotation a delivery created before it could record it:
    record it now, so the annotation is not added twice (the entry then only updates it)."""
    session.execute(
        update(LabelOutbox).where(LabelOutbox.id == vote.entry_id).values(ls_annotation_id=ls_annotation_id)
    )
    _adopt_ls_id(session, vote.annotation_id, ls_annotation_id)


def redecide_task(session: Session, task_id: int) -> None:
    """Set a task's status and label from its annotation rows (after rows were merged)."""
    task = session.get(Task, task_id)
    if task is None or task.status == TaskStatus.DELETED:
        return
    decide_task(session, task)


def forget_delivered(session: Session, older_than: timedelta = timedelta(days=30)) -> int:
    """Drop sent entries nobody needs any more (the annotation rows keep the Label Studio id)."""
    result = session.execute(
        delete(LabelOutbox).where(
            LabelOutbox.status == OutboxStatus.SENT, LabelOutbox.sent_at < func.now() - older_than
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
