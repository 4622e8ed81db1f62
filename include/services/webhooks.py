"""Label Studio webhooks on record: receive once, signal Airflow once per dataset.

The receiver must answer inside Label Studio's 1 s webhook timeout whatever Airflow is doing,
so it only commits a row here; the signaller (include.workers.asset_signaller) turns pending
rows into asset events.

The platform's webhooks carry no payload (``send_payload: false``): with one, Label Studio
posts the task's whole data, its text included, and the project's settings, while the receiver
needs only which project changed. The project is in the hook's URL (``?project=<id>``), the
body is ``{"action": ...}``. Such a delivery cannot be told from a replay and needs not be: it
only makes the next export run, which is idempotent. A delivery with a payload (a hook
registered before, until the next import updates it) is keyed by the SHA-256 of its body, so
its replays add nothing.

Two rules keep Label Studio's time for the annotators' labels:

* **No echo.** Every annotation the outbox writes comes back as a webhook. Right before each
  write the dispatcher records that it expects one from that project (:func:`expect_echo`);
  the receiver takes one expectation per ``ANNOTATION_CREATED``/``UPDATED`` delivery, and such a
  delivery starts nothing. The bodies carry no annotation id, so this is counting, not matching:
  an outside change that arrives at the same moment may take the expectation, and then the echo
  that comes after it is the one that starts the export, which reads the whole change either way.
  An expectation Label Studio never answers lapses after ``ECHO_WINDOW``.
* **Coalesced exports.** A dataset has at most one export asked for and not yet started: while
  one is waiting, new deliveries are marked covered by it instead of posting another event
  (:func:`covered`). An export marks its start before it reads (:func:`export_started`).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import Dataset, LsEcho, LsWebhook
from include.errors import Invalid

# The annotation events that change what a model would learn from.
ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
# What one write of the outbox makes Label Studio send (a delete is never the platform's).
ECHOED = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")
# How long an expected echo waits: Label Studio without Redis sends it before it answers the
# write; with Redis its worker may send it later.
ECHO_WINDOW = timedelta(minutes=2)
# An export asked for but not started within this long counts as lost (a paused DAG): ask again.
EXPORT_WAIT = timedelta(minutes=10)
SECRET_HEADER = "X-LabelOps-Webhook-Secret"


class BadWebhook(Invalid):
    """The body is not a Label Studio webhook the platform understands (the message says why)."""


@dataclass(frozen=True)
class Received:
    """What became of one delivery: ``accepted`` (kept, to be signalled), ``duplicate`` (a replay)
    or ``ignored`` (another event, or a project that belongs to no dataset)."""

    status: str  # accepted, duplicate, echo or ignored
    action: str
    ls_project_id: int
    dataset_id: int | None

    @property
    def new(self) -> bool:
        return self.status == "accepted"


@dataclass(frozen=True)
class Pending:
    """Pending deliveries of one dataset, claimed together: one asset event covers them all."""

    dataset_id: int
    ids: tuple[int, ...]
    actions: tuple[str, ...]


def hook_url(receiver: str, project_id: int) -> str:
    """The receiver's URL as registered on one project: the project rides in the query."""
    return f"{receiver.rstrip('/')}?project={int(project_id)}"


def action_of(payload: Any) -> str:
    """The event name of a webhook body.

    Raises:
        BadWebhook: not a JSON object, or no usable ``action``.
    """
    if not isinstance(payload, dict):
        raise BadWebhook("expected a JSON object")
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise BadWebhook("no 'action' in the body")
    if len(action) > 64 or "\x00" in action:
        raise BadWebhook("'action' is not a Label Studio event name")
    return action


def project_of(payload: Any) -> tuple[str, int]:
    """The action and Label Studio project id of a webhook body with a payload.

    Raises:
        BadWebhook: no action, or no project id anywhere Label Studio puts one.
    """
    action = action_of(payload)
    project = payload.get("project")
    found = [project.get("id") if isinstance(project, dict) else None]
    annotations = payload.get("annotations")
    for part in (
        payload.get("task"),
        payload.get("annotation"),
        *(annotations[:1] if isinstance(annotations, list) else []),
    ):
        if isinstance(part, dict):
            raw = part.get("project")
            found.append(raw.get("id") if isinstance(raw, dict) else raw)
    for raw in found:
        if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
            return action, raw
    raise BadWebhook(f"no project id in the {action} body")


def record(session: Session, body: bytes, payload: Any, project_id: int | None = None) -> Received:
    """Keep one delivery; the caller commits. ``project_id`` comes from the hook's URL; without
    it (an older hook) the body's payload must name the project, and its replays are dropped.

    Raises:
        BadWebhook: see :func:`action_of` and :func:`project_of`.
    """
    if project_id is None:
        action, project_id = project_of(payload)
        key = hashlib.sha256(body).hexdigest()
    else:
        action = action_of(payload)
        key = hashlib.sha256(f"{project_id}:{action}:{uuid.uuid4()}".encode()).hexdigest()
    dataset_id = session.scalar(select(Dataset.id).where(Dataset.ls_project_id == project_id).limit(1))
    if action not in ACTIONS or dataset_id is None:
        return Received("ignored", action, project_id, dataset_id)
    echo = action in ECHOED and _take_echo(session, project_id)
    stmt = (
        insert(LsWebhook)
        .values(
            body_sha256=key,
            ls_project_id=project_id,
            dataset_id=dataset_id,
            action=action,
            echo=echo,
            signalled_at=func.now() if echo else None,
        )
        .on_conflict_do_nothing(index_elements=["body_sha256"])
        .returning(LsWebhook.id)
    )
    new = session.scalar(stmt) is not None
    status = ("echo" if echo else "accepted") if new else "duplicate"
    return Received(status, action, project_id, dataset_id)


# -- echoes -------------------------------------------------------------------------------------
def expect_echo(session: Session, ls_project_id: int) -> int:
    """The outbox is about to write one annotation in this project: its webhook is ours.
    Returns the expectation's id (for :func:`drop_echo` when the write does not happen)."""
    echo = LsEcho(ls_project_id=ls_project_id, expires_at=datetime.now(UTC) + ECHO_WINDOW)
    session.add(echo)
    session.flush()
    return int(echo.id)


def drop_echo(session: Session, echo_id: int) -> None:
    """The write an expectation was for did not happen: no webhook will come for it."""
    session.execute(delete(LsEcho).where(LsEcho.id == echo_id))


_TAKE_ECHO = text(
    """
    DELETE FROM ls_echoes WHERE id = (
        SELECT id FROM ls_echoes WHERE ls_project_id = :project AND expires_at > now()
        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
    ) RETURNING id
    """
)


def _take_echo(session: Session, ls_project_id: int) -> bool:
    return session.execute(_TAKE_ECHO, {"project": ls_project_id}).first() is not None


def forget_lapsed_echoes(session: Session) -> int:
    """Drop expectations Label Studio never answered; returns how many."""
    result = session.execute(delete(LsEcho).where(LsEcho.expires_at <= func.now()))
    return int(getattr(result, "rowcount", 0) or 0)


# -- coalesced exports ----------------------------------------------------------------------------
def covered(session: Session, dataset_id: int) -> bool:
    """An export of the dataset was asked for and has not started yet: it will read whatever
    these deliveries report, so no new event is needed."""
    row = (
        session.execute(select(Dataset.export_signalled_at, Dataset.export_started_at).where(Dataset.id == dataset_id))
        .tuples()
        .first()
    )
    if row is None or row[0] is None:
        return False
    asked, started = row
    assert asked is not None
    return (started is None or started < asked) and datetime.now(UTC) - asked < EXPORT_WAIT


def export_started(session: Session, dataset_ids: list[int]) -> None:
    """An export of these datasets begins reading Label Studio; commit before it reads."""
    if dataset_ids:
        session.execute(update(Dataset).where(Dataset.id.in_(dataset_ids)).values(export_started_at=func.now()))


def claim(session: Session, limit: int = 1000) -> list[Pending]:
    """Due deliveries, grouped by dataset and locked until the caller's transaction ends (another
    process skips them), so each is signalled by one process."""
    rows = session.execute(
        select(LsWebhook.id, LsWebhook.dataset_id, LsWebhook.action)
        .where(
            LsWebhook.signalled_at.is_(None),
            LsWebhook.dataset_id.is_not(None),
            LsWebhook.next_attempt_at <= datetime.now(UTC),
        )
        .order_by(LsWebhook.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).tuples()
    groups: dict[int, tuple[list[int], set[str]]] = {}
    for row_id, dataset_id, action in rows:
        ids, actions = groups.setdefault(int(dataset_id or 0), ([], set()))
        ids.append(int(row_id))
        actions.add(str(action))
    return [Pending(d, tuple(ids), tuple(sorted(actions))) for d, (ids, actions) in groups.items()]


def signalled(session: Session, pending: Pending, *, coalesced: bool = False) -> None:
    """The deliveries are told to Airflow (one event posted), or ``coalesced`` into the export
    already waiting."""
    session.execute(
        update(LsWebhook)
        .where(LsWebhook.id.in_(pending.ids))
        .values(signalled_at=datetime.now(UTC), last_error="", coalesced=coalesced)
    )
    if not coalesced:
        session.execute(update(Dataset).where(Dataset.id == pending.dataset_id).values(export_signalled_at=func.now()))


def failed(session: Session, pending: Pending, error: str) -> None:
    """Try again later: 2, 4, 8 ... seconds, at most a minute (the hourly export covers it anyway)."""
    for row in session.scalars(select(LsWebhook).where(LsWebhook.id.in_(pending.ids))):
        row.attempts += 1
        row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=min(60, 2**row.attempts))
        row.last_error = error[:2000]


def pending_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(LsWebhook)
            .where(LsWebhook.signalled_at.is_(None), LsWebhook.dataset_id.is_not(None))
        )
        or 0
    )
