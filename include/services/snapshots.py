"""Immutable, versioned snapshots of a dataset's labels, so a model traces to the labels it saw.

A snapshot is the set of (text hash, label, eval-set membership) of every labeled task at one
moment, with a content hash over it. Taking a snapshot when nothing changed returns the existing
one (same content hash), so versions only go up when the labels do. Rows are copied inside the
database (INSERT ... SELECT), so a million labels never pass through Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from include.db.models import Dataset, Snapshot, SnapshotItem
from include.errors import Invalid, NotFound
from include.services import eval_set


class SnapshotError(Invalid):
    """A snapshot that cannot be taken or found; the message says why."""


class SnapshotNotFound(SnapshotError, NotFound):
    """The snapshot id names no snapshot."""


_CONTENT = sql_text(
    """
    SELECT count(*) AS n,
           encode(sha256(convert_to(coalesce(string_agg(i.text_hash || ':' || t.label || ':' ||
               CASE WHEN e.text_hash IS NOT NULL AND NOT e.excluded THEN 'e' ELSE 't' END, ';'
               ORDER BY i.text_hash), ''), 'UTF8')), 'hex') AS digest
    FROM tasks t
    JOIN items i ON i.id = t.item_id
    LEFT JOIN eval_items e ON e.dataset_id = t.dataset_id AND e.text_hash = i.text_hash
    WHERE t.dataset_id = :dataset_id AND t.status = 'labeled' AND t.label = ANY(:labels)
    """
)
_COPY = sql_text(
    """
    INSERT INTO snapshot_items (snapshot_id, text_hash, label, in_eval)
    SELECT :snapshot_id, i.text_hash, t.label, (e.text_hash IS NOT NULL AND NOT e.excluded)
    FROM tasks t
    JOIN items i ON i.id = t.item_id
    LEFT JOIN eval_items e ON e.dataset_id = t.dataset_id AND e.text_hash = i.text_hash
    WHERE t.dataset_id = :dataset_id AND t.status = 'labeled' AND t.label = ANY(:labels)
    """
)


@dataclass(frozen=True)
class Taken:
    snapshot: Snapshot
    created: bool  # False: the labels had not changed since this existing snapshot


def take(session: Session, dataset: Dataset) -> Taken:
    """Snapshot the dataset's labels now (or return the identical latest one).

    Raises:
        SnapshotError: the dataset has no labeled tasks yet.
    """
    current = eval_set.refresh(session, dataset)  # the eval set takes in new labels first
    session.execute(sql_text("SELECT pg_advisory_xact_lock(hashtext('snapshot'), :d)"), {"d": dataset.id})
    params = {"dataset_id": dataset.id, "labels": list(dataset.labels)}
    n, digest = session.execute(_CONTENT, params).one()
    if not n:
        raise SnapshotError(f"dataset {dataset.name!r} has no labeled tasks: there is nothing to snapshot yet")
    existing = session.scalar(
        select(Snapshot).where(Snapshot.dataset_id == dataset.id, Snapshot.content_hash == digest)
    )
    if existing is not None:
        return Taken(existing, created=False)
    version = (session.scalar(select(func.max(Snapshot.version)).where(Snapshot.dataset_id == dataset.id)) or 0) + 1
    snapshot = Snapshot(
        dataset_id=dataset.id,
        version=version,
        content_hash=digest,
        rows=int(n),
        per_label={},
        eval_version=current.version,
    )
    session.add(snapshot)
    session.flush()
    session.execute(_COPY, {**params, "snapshot_id": snapshot.id})
    snapshot.per_label = {
        str(label): int(count)
        for label, count in session.execute(
            select(SnapshotItem.label, func.count())
            .where(SnapshotItem.snapshot_id == snapshot.id)
            .group_by(SnapshotItem.label)
        ).tuples()
    }
    session.flush()
    return Taken(snapshot, created=True)


def training_examples(session: Session, snapshot_id: int) -> list[tuple[str, str]]:
    """(text hash, label) of the snapshot's rows outside the eval set: what a model trains on."""
    return [
        (str(h), str(label))
        for h, label in session.execute(
            select(SnapshotItem.text_hash, SnapshotItem.label)
            .where(SnapshotItem.snapshot_id == snapshot_id, SnapshotItem.in_eval.is_(False))
            .order_by(SnapshotItem.text_hash)
        ).tuples()
    ]


def list_snapshots(session: Session, dataset_id: int) -> list[Snapshot]:
    return list(
        session.scalars(select(Snapshot).where(Snapshot.dataset_id == dataset_id).order_by(Snapshot.version.desc()))
    )


def get_snapshot(session: Session, snapshot_id: int) -> Snapshot:
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None:
        raise SnapshotNotFound(f"no snapshot {snapshot_id}")
    return snapshot
