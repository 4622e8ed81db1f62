"""Reviews and skips against a real Label Studio: a fix reaches Label Studio's annotation (still the
annotator's), exports keep the verdict, a new label made in Label Studio reopens it, and a skip is
Label Studio's own cancelled annotation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from include.db.models import Annotation, Role, Task, TaskStatus, User
from include.db.session import session_scope
from include.labelstudio.label_config import choice_result, label_of
from include.pipelines.catalog import ExportValues
from include.pipelines.ls_export import run_ls_export
from include.pipelines.runner import RunRef
from include.services import review
from include.services.users import create_user
from include.workers.label_dispatcher import deliver_due
from tests.labelstudio.test_outbox import label, ls_annotations, world  # noqa: F401 (a fixture)

pytestmark = pytest.mark.labelstudio


def _review(db: str, reviewer_id: int, task_id: int, **body: str) -> None:
    with session_scope(db) as s:
        annotation = s.scalar(select(Annotation).where(Annotation.task_id == task_id))
        review.review_annotation(s, annotation.id, s.get_one(User, reviewer_id), review.ReviewVerdict(**body))


def _state(db: str, task_id: int) -> tuple[str, str | None, str | None, str | None]:
    with session_scope(db) as s:
        task = s.get_one(Task, task_id)
        annotation = s.scalar(select(Annotation).where(Annotation.task_id == task_id))
        return task.status.value, task.label, task.label_basis, annotation.review


def test_a_fix_reaches_label_studio_and_survives_exports_until_relabeled_there(db, ls, world) -> None:  # noqa: F811
    with session_scope(db) as s:
        carol = create_user(s, "carol", "carol@outbox.test", "carol-password-1", Role.REVIEWER).id
    (t0, ls0), (t1, ls1) = world["tasks"][:2]
    label(db, world, 0, "OK")
    label(db, world, 1, "OK")
    assert deliver_due(db, ls.client()).delivered == 2
    _review(db, carol, t0, verdict="fix", label_seen="OK", label="NG")
    _review(db, carol, t1, verdict="reject", label_seen="OK", comment="look at the photo note")
    # An export while the fix is still in the outbox: the verdicts hold.
    run_ls_export(db, ls.client(), RunRef(), ExportValues(dataset_id=world["dataset_id"], full=True))
    assert _state(db, t0) == ("labeled", "NG", "reviewed", "fixed")
    assert _state(db, t1) == ("assigned", None, None, "rejected")
    assert deliver_due(db, ls.client()).delivered == 1
    (only,) = ls_annotations(ls, ls0)
    assert label_of(only["result"]) == "NG"  # Label Studio's annotation has the fix, not a second one
    run_ls_export(db, ls.client(), RunRef(), ExportValues(dataset_id=world["dataset_id"], full=True))
    assert _state(db, t0) == ("labeled", "NG", "reviewed", "fixed")
    assert _state(db, t1) == ("assigned", None, None, "rejected")  # Label Studio still says OK: not counted
    # Someone changes both labels in Label Studio's own UI: new labels, back in the queue.
    client = ls.client()
    for ls_task, value in ((ls0, "OK"), (ls1, "NG")):
        (ann,) = ls_annotations(ls, ls_task)
        client.update_annotation(ann["id"], choice_result(value))
    run_ls_export(db, ls.client(), RunRef(), ExportValues(dataset_id=world["dataset_id"], full=True))
    assert _state(db, t0) == ("labeled", "OK", "single", None)
    assert _state(db, t1) == ("labeled", "NG", "single", None)
    with session_scope(db) as s:
        query = review.ReviewQueueQuery(dataset_id=world["dataset_id"])
        queued = review.queue(s, s.get_one(User, carol), query)
        assert {e.task_id for e in queued.items} == {t0, t1}
        assert s.get_one(Task, t1).status == TaskStatus.LABELED


def test_a_skip_reaches_label_studio_as_a_cancelled_annotation(db, ls, world) -> None:  # noqa: F811
    from include.services import flags
    from include.services.assignment import auto_assign

    (t0, ls0), (t1, ls1) = world["tasks"][:2]
    with session_scope(db) as s:
        alice = s.get_one(User, world["alice"])
        flags.flag_task(s, t0, alice, flags.FlagRequest(kind="skip", note="cannot tell"))
        flags.flag_task(s, t1, alice, flags.FlagRequest(kind="not_sure"))  # not a skip: Label Studio hears nothing
        bob = create_user(s, "bob", "bob@outbox.test", "bob-password-12", Role.ANNOTATOR)
        bob_id = bob.id
    assert deliver_due(db, ls.client()).delivered == 1
    (skipped,) = ls_annotations(ls, ls0)
    assert skipped["was_cancelled"] is True and skipped["result"] == []
    assert ls_annotations(ls, ls1) == []
    run_ls_export(db, ls.client(), RunRef(), ExportValues(dataset_id=world["dataset_id"], full=True))
    with session_scope(db) as s:
        task = s.get_one(Task, t0)
        assert (task.status, task.label, task.assigned_to) == (TaskStatus.IMPORTED, None, None)
        (row,) = s.scalars(select(Annotation).where(Annotation.task_id == t0)).all()
        assert row.was_cancelled and row.label is None and row.ls_annotation_id == skipped["id"]
        # Someone else takes the skipped task and labels it: both stand in Label Studio.
        bob = s.get_one(User, bob_id)
        assert t0 in auto_assign(s, world["dataset_id"], bob, 10)
    with session_scope(db) as s:
        from include.services.labeling import submit_label

        submit_label(s, t0, s.get_one(User, bob_id), "NG")
    assert deliver_due(db, ls.client()).delivered == 1
    run_ls_export(db, ls.client(), RunRef(), ExportValues(dataset_id=world["dataset_id"], full=True))
    kinds = sorted((a["was_cancelled"], label_of(a["result"])) for a in ls_annotations(ls, ls0))
    assert kinds == [(False, "NG"), (True, None)]
    with session_scope(db) as s:
        task = s.get_one(Task, t0)
        assert (task.status, task.label, task.label_basis) == (TaskStatus.LABELED, "NG", "single")
