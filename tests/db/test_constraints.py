"""Database constraints hold, and the services turn violations into clear messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from include.db.models import Item, Role, Task, User
from include.services.datasets import DatasetError, add_items, create_dataset, text_hash
from include.services.privacy import SYNTHETIC


def test_duplicate_text_hash_in_a_dataset_is_rejected(session) -> None:
    dataset = create_dataset(session, "dups", labels=["OK", "NG"], privacy=SYNTHETIC)
    session.add(Item(dataset_id=dataset.id, text="same", text_hash=text_hash("same")))
    session.flush()
    session.add(Item(dataset_id=dataset.id, text="same", text_hash=text_hash("same")))
    with pytest.raises(IntegrityError, match="uq_items_dataset_text_hash"):
        session.flush()


def test_same_text_in_two_datasets_is_fine(session) -> None:
    a = create_dataset(session, "first", labels=["OK", "NG"], privacy=SYNTHETIC)
    b = create_dataset(session, "second", labels=["OK", "NG"], privacy=SYNTHETIC)
    assert add_items(session, a, [("hello", {})]).added == 1
    assert add_items(session, b, [("hello", {})]).added == 1


def test_add_items_reports_duplicates_clearly(session) -> None:
    dataset = create_dataset(session, "report", labels=["OK", "NG"], privacy=SYNTHETIC)
    add_items(session, dataset, [("already here", {})])
    report = add_items(session, dataset, [("already here", {}), ("new", {}), ("new", {}), ("  ", {}), ("", {})])
    assert (report.added, report.duplicates, report.empty) == (1, 2, 2)
    assert report.summary == "added 1 items, 2 duplicate texts skipped, 2 empty rows skipped"
    # where the duplicates are, never their text (the report travels in a cookie and in logs)
    assert sorted(report.duplicate_lines) == [
        "item line 1 (already in the dataset)",
        "item line 3 (repeats an earlier row)",
    ]
    assert session.scalar(select(Item.id).where(Item.text == "new")) is not None


def test_dataset_name_rules(session) -> None:
    create_dataset(session, "Reviews 2026", labels=["OK", "NG"], privacy=SYNTHETIC)
    with pytest.raises(DatasetError, match="already exists"):
        create_dataset(session, "reviews 2026", labels=["OK", "NG"], privacy=SYNTHETIC)
    with pytest.raises(DatasetError, match="2-128 letters"):
        create_dataset(session, "<script>", labels=["OK", "NG"], privacy=SYNTHETIC)
    with pytest.raises(DatasetError, match="at least two labels"):
        create_dataset(session, "one label", labels=["OK"], privacy=SYNTHETIC)


def test_ls_task_id_is_unique_and_priority_bounded(session) -> None:
    dataset = create_dataset(session, "tasks", labels=["OK", "NG"], privacy=SYNTHETIC)
    add_items(session, dataset, [("a", {}), ("b", {})])
    a, b = session.scalars(select(Item.id).order_by(Item.id)).all()
    session.add(Task(dataset_id=dataset.id, item_id=a, ls_project_id=1, ls_task_id=10))
    session.flush()
    session.add(Task(dataset_id=dataset.id, item_id=b, ls_project_id=1, ls_task_id=10))
    with pytest.raises(IntegrityError, match="uq_tasks_ls_project_task"):
        session.flush()
    session.rollback()
    dataset = create_dataset(session, "tasks2", labels=["OK", "NG"], privacy=SYNTHETIC)
    add_items(session, dataset, [("c", {})])
    item = session.scalar(select(Item.id).where(Item.text == "c"))
    session.add(Task(dataset_id=dataset.id, item_id=item, ls_project_id=1, ls_task_id=11, priority=1001))
    with pytest.raises(IntegrityError, match="ck_tasks_priority_range"):
        session.flush()


def test_role_is_checked(session) -> None:
    from sqlalchemy import text

    session.add(User(username="u", email="u@x.io", password_hash="x", role=Role.ADMIN))
    session.flush()
    with pytest.raises(IntegrityError, match="ck_users_role"):
        session.execute(text("UPDATE users SET role = 'root'"))
