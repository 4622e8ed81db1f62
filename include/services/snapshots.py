"""Immutable, versioned snapshots of a dataset's labels, so a model traces to the labels it saw.

A snapshot is the set of (text hash, label, held out for evaluation) of every labeled task at
one moment, with a content hash over exactly the rows it holds. Taking a snapshot when nothing
changed returns the existing one (same content hash), so versions only go up when the labels do.
Rows are copied inside the database (INSERT ... SELECT), so a million labels never pass through
Python.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from include.db.models import Dataset, Snapshot, SnapshotItem
from include.errors import Invalid, NotFound
from include.services import eval_set, label_policy


class SnapshotError(Invalid):
    """A snapshot that cannot be taken or found; the message says why."""


class SnapshotNotFound(SnapshotError, NotFound):
    """The snapshot id names no snapshot."""


# A member of the evaluation set is held out of training ("e"), and so is one an admin dropped
# from it: dropped means "do not judge models with it", and it stays out of training as promised.
# What a label rests on is part of the content (a review changes the snapshot); rows without a
# basis (snapshots from before reviews existed) hash as they always did.
_DIGEST = """encode(sha256(convert_to(coalesce(string_agg({h} || ':' || {label} || ':' || {flag}
             || coalesce(':' || {basis}, ''), ';' ORDER BY {h}, {label}, {flag}), ''), 'UTF8')), 'hex')"""
_HELD_OUT = "(e.text_hash IS NOT NULL)"
_CONTENT = sql_text(
    f"""
    SELECT count(*) AS n,
           {
        _DIGEST.format(
            h="i.text_hash", label="t.label", flag=f"CASE WHEN {_HELD_OUT} THEN 'e' ELSE 't' END", basis="t.label_basis"
        )
    }
           AS digest
    FROM tasks t
    JOIN items i ON i.id = t.item_id
    LEFT JOIN eval_items e ON e.dataset_id = t.dataset_id AND e.text_hash = i.text_hash
    WHERE t.dataset_id = :dataset_id AND t.status = 'labeled' AND t.label = ANY(:labels)
    """
)
_COPY = sql_text(
    f"""
    INSERT INTO snapshot_items (snapshot_id, text_hash, label, in_eval, basis)
    SELECT :snapshot_id, i.text_hash, t.label, {_HELD_OUT}, t.label_basis
    FROM tasks t
    JOIN items i ON i.id = t.item_id
    LEFT JOIN eval_items e ON e.dataset_id = t.dataset_id AND e.text_hash = i.text_hash
    WHERE t.dataset_id = :dataset_id AND t.status = 'labeled' AND t.label = ANY(:labels)
    """
)
# The digest of the rows a snapshot holds: under READ COMMITTED a label committed between
# _CONTENT and _COPY is in the copy, so the snapshot is described by what it copied.
_COPIED = sql_text(
    f"""
    SELECT count(*) AS n,
           {_DIGEST.format(h="text_hash", label="label", flag="CASE WHEN in_eval THEN 'e' ELSE 't' END", basis="basis")}
           AS digest
    FROM snapshot_items WHERE snapshot_id = :snapshot_id
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
    copied_n, copied = session.execute(_COPIED, {"snapshot_id": snapshot.id}).one()
    if copied != digest:  # labels changed between the two statements: the copy is the truth
        same = session.scalar(
            select(Snapshot).where(Snapshot.dataset_id == dataset.id, Snapshot.content_hash == copied)
        )
        if same is not None:
            session.execute(delete(SnapshotItem).where(SnapshotItem.snapshot_id == snapshot.id))
            session.delete(snapshot)
            session.flush()
            return Taken(same, created=False)
        snapshot.content_hash, snapshot.rows = copied, int(copied_n)
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


def verify(session: Session, snapshot_id: int) -> bool:
    """Whether the snapshot's rows still hash to its content hash (an audit of the lineage)."""
    snapshot = get_snapshot(session, snapshot_id)
    n, digest = session.execute(_COPIED, {"snapshot_id": snapshot_id}).one()
    return bool(digest == snapshot.content_hash and n == snapshot.rows)


def training_examples(session: Session, snapshot_id: int, policy: str = label_policy.ANY) -> list[tuple[str, str]]:
    """(text hash, label) of the snapshot's rows outside the eval set whose label counts under
    the dataset's training ``policy`` (include.services.label_policy): what a model trains on."""
    return [
        (str(h), str(label))
        for h, label, basis in session.execute(
            select(SnapshotItem.text_hash, SnapshotItem.label, SnapshotItem.basis)
            .where(SnapshotItem.snapshot_id == snapshot_id, SnapshotItem.in_eval.is_(False))
            .order_by(SnapshotItem.text_hash)
        ).tuples()
        if label_policy.basis_counts(policy, basis)
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
