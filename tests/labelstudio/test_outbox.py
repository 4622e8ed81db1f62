"""The label outbox against a real Label Studio: every delivery step can be repeated without
losing or duplicating a label."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, update

from include.db.models import Annotation, LabelOutbox, OutboxStatus, Role, Task, User
from include.db.session import session_scope
from include.labelstudio.label_config import choice_result, label_of
from include.pipelines.catalog import ExportValues, ImportValues
from include.pipelines.ls_export import run_ls_export
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.services import label_outbox
from include.services.assignment import auto_assign
from include.services.datasets import add_items, create_dataset
from include.services.labeling import submit_label
from include.services.privacy import SYNTHETIC
from include.services.users import create_user
from include.workers.label_dispatcher import OutboxDispatcher, deliver_due

pytestmark = pytest.mark.labelstudio


@pytest.fixture
def world(db, ls):
    """Ten tasks in Label Studio, all assigned to alice."""
    with session_scope(db) as s:
        alice = create_user(s, "alice", "alice@outbox.test", "alice-password-1", Role.ANNOTATOR)
        ds = create_dataset(s, "outbox", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, ds, [(f"outbox text {i}", {}) for i in range(10)])
        dataset_id, alice_id = ds.id, alice.id
    run_ls_import(db, ls.client(), RunRef(), ImportValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        auto_assign(s, dataset_id, s.get(User, alice_id), 10)
        tasks = s.execute(select(Task.id, Task.ls_task_id).where(Task.dataset_id == dataset_id).order_by(Task.id))
        pairs = [(int(a), int(b)) for a, b in tasks]
    return {"dataset_id": dataset_id, "alice": alice_id, "tasks": pairs}


def label(db: str, world: dict, index: int, value: str) -> None:
    with session_scope(db) as s:
        submit_label(s, world["tasks"][index][0], s.get(User, world["alice"]), value)


def ls_annotations(ls, ls_task_id: int) -> list[dict]:
    return ls.client().request("GET", f"/api/tasks/{ls_task_id}")["annotations"]


def expire_leases(db: str) -> None:
    with session_scope(db) as s:
        s.execute(update(LabelOutbox).values(next_attempt_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 1)))


def counts(db: str, world: dict) -> tuple[int, int]:
    with session_scope(db) as s:
        rows = s.scalar(select(func.count(Annotation.id)).join(Task).where(Task.dataset_id == world["dataset_id"]))
        pending = s.scalar(select(func.count(LabelOutbox.id)).where(LabelOutbox.status == OutboxStatus.PENDING))
    return int(rows or 0), int(pending or 0)


def test_a_dispatcher_that_dies_after_label_studio_answered_does_not_duplicate(db, ls, world, monkeypatch) -> None:
    for i in range(3):
        label(db, world, i, "OK")

    def crash(*args, **kwargs):
        raise RuntimeError("killed between Label Studio and the database")

    monkeypatch.setattr(label_outbox, "delivered", crash)
    with pytest.raises(RuntimeError):
        deliver_due(db, ls.client())
    monkeypatch.undo()
    assert all(len(ls_annotations(ls, ls_id)) == 1 for _, ls_id in world["tasks"][:3])  # Label Studio has them
    assert deliver_due(db, ls.client()).claimed == 0  # leased: nobody else sends them meanwhile
    expire_leases(db)
    again = deliver_due(db, ls.client())
    assert (again.claimed, again.delivered) == (3, 3)
    for task_id, ls_id in world["tasks"][:3]:
        (only,) = ls_annotations(ls, ls_id)
        with session_scope(db) as s:
            assert s.scalar(select(Annotation.ls_annotation_id).where(Annotation.task_id == task_id)) == only["id"]
    assert counts(db, world) == (3, 0)


def test_an_export_between_delivery_and_record_adopts_instead_of_adding(db, ls, world, monkeypatch) -> None:
    label(db, world, 0, "NG")
    monkeypatch.setattr(label_outbox, "delivered", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(RuntimeError):
        deliver_due(db, ls.client())
    monkeypatch.undo()
    run_ls_export(db, ls.client(), RunRef(), ExportValues(dataset_id=world["dataset_id"]))
    assert counts(db, world) == (1, 1)  # matched to alice's row, not added as a second annotation
    with session_scope(db) as s:
        task = s.get(Task, world["tasks"][0][0])
        assert (task.status.value, task.label) == ("labeled", "NG")
    expire_leases(db)
    assert deliver_due(db, ls.client()).delivered == 1
    run_ls_export(db, ls.client(), RunRef(), ExportValues(dataset_id=world["dataset_id"], full=True))
    assert counts(db, world) == (1, 0)
    assert len(ls_annotations(ls, world["tasks"][0][1])) == 1


def test_an_annotation_made_in_label_studio_is_updated_not_doubled(db, ls, world) -> None:
    client = ls.client()
    known = {u["email"]: u["id"] for u in client.list_users()}
    alice_ls = known.get("alice@outbox.test") or client.create_user("alice@outbox.test", "alice-ls")["id"]
    client.create_annotation(world["tasks"][0][1], choice_result("OK"), completed_by=alice_ls)
    label(db, world, 0, "NG")  # before any export brought the Label Studio annotation in
    assert deliver_due(db, client).delivered == 1
    (only,) = ls_annotations(ls, world["tasks"][0][1])
    assert label_of(only["result"]) == "NG"


def test_a_newer_label_during_delivery_is_delivered_next(db, ls, world, monkeypatch) -> None:
    label(db, world, 0, "OK")
    real = label_outbox.delivered

    def relabel_then_record(session, delivery, ls_id):
        label(db, world, 0, "NG")  # the annotator changes their mind while the request is in flight
        real(session, delivery, ls_id)

    monkeypatch.setattr(label_outbox, "delivered", relabel_then_record)
    assert deliver_due(db, ls.client()).delivered == 1
    monkeypatch.undo()
    assert counts(db, world) == (1, 1)  # still due: the version changed
    assert deliver_due(db, ls.client()).delivered == 1
    (only,) = ls_annotations(ls, world["tasks"][0][1])
    assert label_of(only["result"]) == "NG" and counts(db, world) == (1, 0)


def test_two_dispatchers_deliver_each_label_once(db, ls, world) -> None:
    for i in range(10):
        label(db, world, i, "OK" if i % 2 else "NG")
    threads = [
        OutboxDispatcher(db, ls.client, sweep=0.2, batch=3).start(),
        OutboxDispatcher(db, ls.client, sweep=0.2, batch=3).start(),
    ]
    done = threading.Event()

    def wait() -> None:
        while counts(db, world)[1]:
            threading.Event().wait(0.2)
        done.set()

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    assert done.wait(90), "the outbox did not drain"
    for d in threads:
        d.stop()
    assert all(d.rounds >= 1 for d in threads)
    for i, (_, ls_id) in enumerate(world["tasks"]):
        (only,) = ls_annotations(ls, ls_id)
        assert label_of(only["result"]) == ("OK" if i % 2 else "NG")


def test_a_label_for_a_task_deleted_in_label_studio_is_reported_not_retried(db, ls, world) -> None:
    from include.db.models import Dataset

    label(db, world, 0, "OK")
    with session_scope(db) as s:
        project = s.get(Dataset, world["dataset_id"]).ls_project_id
    ls.client().delete_tasks(project, [world["tasks"][0][1]])
    outcome = deliver_due(db, ls.client())
    assert (outcome.delivered, outcome.dead) == (0, 1)
    with session_scope(db) as s:
        summary = label_outbox.summary(s)
    assert (summary.waiting, summary.dead) == (0, 1)
    expire_leases(db)
    assert deliver_due(db, ls.client()).claimed == 0


def test_a_slow_label_studio_never_gets_one_label_twice(db, ls, world, monkeypatch) -> None:
    """The lease is shorter than a slow batch: the tail of one dispatcher's batch expires and a
    second dispatcher claims it. Each entry's lease is renewed right before it is sent, so the
    first skips what the second took: every label reaches Label Studio exactly once."""
    import time
    from datetime import timedelta

    from include.labelstudio.client import LabelStudioClient
    from tests.helpers.proxy import FaultyProxy

    for i in range(4):
        label(db, world, i, "OK")
    real_claim = label_outbox.claim
    monkeypatch.setattr(label_outbox, "claim", lambda s, limit: real_claim(s, limit, lease=timedelta(seconds=2)))
    with FaultyProxy(ls.url) as proxy:
        proxy.delay = lambda method, path: 1.5 if method == "POST" and "/annotations" in path else 0.0
        slow = LabelStudioClient(proxy.url, ls.token)
        rounds: list = []
        first = threading.Thread(target=lambda: rounds.append(deliver_due(db, slow, slots=2)))
        first.start()
        time.sleep(3.2)  # two sent; the batch's tail has outlived its 2 s lease
        assert deliver_due(db, ls.client()).busy  # one slot: the slow round is the one writer
        second = deliver_due(db, ls.client(), slots=2)
        first.join(60)
    (slow_round,) = rounds
    assert second.claimed >= 1 and slow_round.skipped == second.claimed
    assert slow_round.delivered + second.delivered == 4
    for _, ls_task_id in world["tasks"][:4]:
        assert len(ls_annotations(ls, ls_task_id)) == 1


def test_label_studio_going_away_mid_batch_leaves_no_echo_expected_for_unsent_labels(db, ls, world) -> None:
    """An expected echo stands for a write that happened: when Label Studio answers 503 in the
    middle of a batch, the refused write and the one prepared after it expect nothing (else an
    outside change arriving meanwhile could be taken for their echo)."""
    from include.db.models import LsEcho
    from include.labelstudio.client import LabelStudioClient
    from tests.helpers.proxy import FaultyProxy

    for i in range(4):
        label(db, world, i, "OK")
    with FaultyProxy(ls.url) as proxy:
        posts = []

        def second_post_fails(method: str, path: str) -> float:
            if method == "POST" and "/annotations" in path:
                posts.append(path)
                if len(posts) == 2:
                    proxy.fail_next_status.append(503)
            return 0.0

        proxy.delay = second_post_fails
        outcome = deliver_due(db, LabelStudioClient(proxy.url, ls.token, retries=0))
    assert (outcome.delivered, outcome.failed) == (1, 3) and outcome.error
    with session_scope(db) as s:
        # the one write that happened still expects its webhook (this project has none: it lapses)
        assert s.scalar(select(func.count()).select_from(LsEcho)) == 1
    assert deliver_due(db, ls.client()).claimed == 0  # the rest back off, then go
    expire_leases(db)
    assert deliver_due(db, ls.client()).delivered == 3
    for _, ls_task_id in world["tasks"][:4]:
        assert len(ls_annotations(ls, ls_task_id)) == 1
