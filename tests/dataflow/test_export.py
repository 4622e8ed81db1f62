"""Labeled-data export and snapshots on real PostgreSQL: exact round trips in every format."""

from __future__ import annotations

import csv
import io
import itertools
import json

import pyarrow.parquet as pq
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from include.config import load_settings
from include.db.models import Annotation, AnnotationSource, Dataset, EvalItem, Item, Role, Task, TaskStatus
from include.db.session import session_scope
from include.pipelines.catalog import AnyDatasetValues
from include.pipelines.deidentify import run_deidentify
from include.pipelines.runner import RunRef
from include.services import export, pii, snapshots
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC
from include.services.users import create_user

_ls_ids = itertools.count(80_000_000)
HARD = [
    "屏幕碎了，无法开机 😡",
    'line one\nline two, with "quotes" and a comma',
    '=HYPERLINK("http://evil.example","click")',
    "+SUM(A1:A2)",
    "-1 star: broken",
    "@admin look at this",
    "'already quoted",
    "tab\tinside and a CR\r in the middle",
    "plain ascii",
    "🙂" * 50,
]


def labeled_dataset(db: str, texts: list[str], name: str = "export") -> int:
    with session_scope(db) as s:
        alice = create_user(s, f"alice-{name}", f"alice-{name}@x.test", "alice-password-1", Role.ANNOTATOR)
        bob = create_user(s, f"bob-{name}", f"bob-{name}@x.test", "bob-password-12", Role.ANNOTATOR)
        ds = create_dataset(s, name, labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, ds, [(t, {}) for t in texts])
        items = s.execute(select(Item.id, Item.text_hash).where(Item.dataset_id == ds.id).order_by(Item.id)).all()
        for k, (item_id, text_hash) in enumerate(items):
            label = "NG" if k % 2 else "OK"
            task = Task(
                dataset_id=ds.id,
                item_id=item_id,
                ls_project_id=1,
                ls_task_id=next(_ls_ids),
                status=TaskStatus.LABELED,
                label=label,
                prelabel_label="OK",
                prelabel_score=0.75,
                model_version="logistic-ds1-e1",
                uncertainty_score=0.5,
            )
            s.add(task)
            s.flush()
            for person in (alice, bob) if k % 3 == 0 else (alice,):
                vote = label if person is alice or k % 2 else "NG"
                s.add(Annotation(task_id=task.id, annotator_id=person.id, label=vote, source=AnnotationSource.WEBAPP))
            if k == 0:
                s.add(EvalItem(dataset_id=ds.id, text_hash=text_hash, source="gold"))
        return ds.id


def read_back(db: str, dataset_id: int, fmt: str, key: bytes | None = None) -> list[dict]:
    with session_scope(db) as s:
        data = b"".join(export.chunks(s, export.ExportRequest(dataset_id, fmt, key)))
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode("utf-8").splitlines()]
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(data)).to_pylist()
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:], newline="")))
    return [{k: export.unneutralise(v) for k, v in row.items()} for row in rows]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_export_round_trips_exactly(db, fmt: str) -> None:
    dataset_id = labeled_dataset(db, HARD)
    rows = read_back(db, dataset_id, fmt)
    assert [r["text"] for r in rows] == HARD
    assert [r["label"] for r in rows] == ["NG" if k % 2 else "OK" for k in range(len(HARD))]
    first = rows[0]
    people = first["annotators"] if fmt != "csv" else first["annotators"].split(";")
    assert people == ["alice-export", "bob-export"]
    assert str(first["in_eval"]) in ("True", "true") and str(rows[1]["in_eval"]) in ("False", "false")
    assert float(first["agreement"]) == 0.5 and float(rows[1]["agreement"]) == 1.0  # bob said NG on an OK
    assert first["prediction"] == "OK" and float(first["probability"]) == 0.75
    assert set(export.COLUMNS) <= set(first)


def test_csv_cells_cannot_run_as_formulas(db) -> None:
    dataset_id = labeled_dataset(db, HARD)
    with session_scope(db) as s:
        raw = b"".join(export.chunks(s, export.ExportRequest(dataset_id, "csv"))).decode("utf-8")
    cells = [row[2] for row in csv.reader(io.StringIO(raw[1:], newline=""))][1:]
    assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert "'=HYPERLINK(" in raw and "''already quoted" in raw


def test_originals_need_the_key(db, monkeypatch) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv("PII_KEY", key.decode())
    texts = ["call me on 13812345678 😀", "no personal data"]
    dataset_id = labeled_dataset(db, texts, name="private")
    with session_scope(db) as s:
        policy = pii.save_policy(s, "phones", {"PHONE": "placeholder"})
        pii.attach(s, s.get(Dataset, dataset_id), policy.id, key)
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    assert [r["text"] for r in read_back(db, dataset_id, "jsonl")] == ["call me on <PHONE_1> 😀", "no personal data"]
    assert [r["text"] for r in read_back(db, dataset_id, "parquet", key)] == texts
    with pytest.raises(pii.PolicyError, match="does not open"):
        read_back(db, dataset_id, "csv", Fernet.generate_key())


def test_unknown_format_is_refused() -> None:
    with pytest.raises(export.ExportError, match="unknown format 'xlsx'"):
        export.ExportRequest(1, "xlsx")


def test_snapshots_are_immutable_and_versioned(db) -> None:
    dataset_id = labeled_dataset(db, [f"snapshot text {i}" for i in range(12)], name="snap")
    with session_scope(db) as s:
        first = snapshots.take(s, s.get(Dataset, dataset_id))
        assert first.created and first.snapshot.version == 1 and first.snapshot.rows == 12
        assert first.snapshot.per_label == {"OK": 6, "NG": 6}
        again = snapshots.take(s, s.get(Dataset, dataset_id))
        assert not again.created and again.snapshot.id == first.snapshot.id
        s.execute(update(Task).where(Task.dataset_id == dataset_id, Task.label == "NG").values(label="OK"))
        second = snapshots.take(s, s.get(Dataset, dataset_id))
        assert second.created and second.snapshot.version == 2 and second.snapshot.per_label == {"OK": 12}
        assert second.snapshot.content_hash != first.snapshot.content_hash
        # the first one did not change
        assert snapshots.get_snapshot(s, first.snapshot.id).per_label == {"OK": 6, "NG": 6}
        from include.db.models import SnapshotItem

        reserved = set(
            s.scalars(
                select(SnapshotItem.text_hash).where(
                    SnapshotItem.snapshot_id == first.snapshot.id, SnapshotItem.in_eval.is_(True)
                )
            )
        )
        gold = s.scalar(select(EvalItem.text_hash).where(EvalItem.dataset_id == dataset_id, EvalItem.source == "gold"))
        assert gold in reserved
        training = snapshots.training_examples(s, first.snapshot.id)
        assert len(training) == 12 - len(reserved) and not reserved & {h for h, _ in training}
        ds = create_dataset(s, "nothing labeled", labels=["OK", "NG"], privacy=SYNTHETIC)
        with pytest.raises(snapshots.SnapshotError, match="has no labeled tasks"):
            snapshots.take(s, ds)


def test_a_label_committed_during_a_snapshot_is_described_by_its_hash(db) -> None:
    """Under READ COMMITTED the content hash and the copy are two statements: a label another
    session commits between them lands in the copy, and the hash must describe the rows copied."""
    from sqlalchemy import event, text

    from include.db.models import Snapshot, SnapshotItem
    from include.db.session import get_engine

    dataset_id = labeled_dataset(db, [f"race text {i}" for i in range(10)], name="snap-race")
    with session_scope(db) as s:
        late = s.scalar(select(Task.id).where(Task.dataset_id == dataset_id).order_by(Task.id.desc()).limit(1))
        s.execute(update(Task).where(Task.id == late).values(status=TaskStatus.IMPORTED, label=None))
    engine = get_engine(db)
    fired: list[bool] = []

    def label_meanwhile(conn, cursor, statement, *args) -> None:
        if statement.lstrip().startswith("INSERT INTO snapshot_items") and not fired:
            fired.append(True)
            with engine.connect() as other:  # another session labels a task and commits
                other.execute(text("UPDATE tasks SET status = 'labeled', label = 'OK' WHERE id = :id"), {"id": late})
                other.commit()

    event.listen(engine, "before_cursor_execute", label_meanwhile)
    try:
        with session_scope(db) as s:
            taken = snapshots.take(s, s.get_one(Dataset, dataset_id)).snapshot
            snapshot_id, content_hash, rows = taken.id, taken.content_hash, taken.rows
    finally:
        event.remove(engine, "before_cursor_execute", label_meanwhile)
    assert fired
    with session_scope(db) as s:
        held = s.scalars(select(SnapshotItem.text_hash).where(SnapshotItem.snapshot_id == snapshot_id)).all()
        assert rows == len(held) == 10  # the late label is in the copy, and counted
        assert snapshots.verify(s, snapshot_id)  # and the hash is the hash of those rows
        assert s.scalar(select(Snapshot.content_hash).where(Snapshot.id == snapshot_id)) == content_hash


def test_a_dropped_gold_item_stays_out_of_training(db) -> None:
    """Dropping an evaluation item says it stays out of training: the snapshot holds it out."""
    from include.services import eval_set

    dataset_id = labeled_dataset(db, [f"gold text {i}" for i in range(8)], name="snap-drop")
    with session_scope(db) as s:
        ds = s.get_one(Dataset, dataset_id)
        eval_set.set_policy(s, ds, eval_set.EvalPolicy(eval_fraction=0.0, eval_min_per_label=0, eval_cap=10))
        gold_task = s.scalar(
            select(Task.id)
            .join(Item, Item.id == Task.item_id)
            .join(EvalItem, (EvalItem.text_hash == Item.text_hash) & (EvalItem.dataset_id == ds.id))
        )
        message = eval_set.set_membership(s, ds, gold_task, False, None)
        gold_hash = s.scalar(select(Item.text_hash).join(Task, Task.item_id == Item.id).where(Task.id == gold_task))
        taken = snapshots.take(s, ds).snapshot
        training = {h for h, _ in snapshots.training_examples(s, taken.id)}
        assert "stays out of training" in message
        assert gold_hash not in training and len(training) == taken.rows - 1
        assert gold_hash not in {h for h, _ in eval_set.current_set(s, ds).examples}  # and judges nothing


def test_parquet_from_arrow_batches_equals_the_row_by_row_parquet(db) -> None:
    """ADBC's Arrow batches (the fast path) and psycopg's tuples write the same table, empty too."""
    dataset_id = labeled_dataset(db, HARD)
    with session_scope(db) as s:
        fast = pq.read_table(io.BytesIO(b"".join(export.chunks(s, export.ExportRequest(dataset_id, "parquet")))))
        request = export.ExportRequest(dataset_id, "parquet")
        rows = pq.read_table(io.BytesIO(b"".join(export.parquet_chunks(export._tuples(s, request)))))
    assert fast.schema == rows.schema == export.parquet_schema()
    assert fast.to_pylist() == rows.to_pylist() and fast.num_rows == len(HARD)
    with session_scope(db) as s:
        empty = create_dataset(s, "nothing-labeled", labels=["OK", "NG"], privacy=SYNTHETIC).id
    with session_scope(db) as s:
        table = pq.read_table(io.BytesIO(b"".join(export.chunks(s, export.ExportRequest(empty, "parquet")))))
    assert table.num_rows == 0 and table.schema == export.parquet_schema()
