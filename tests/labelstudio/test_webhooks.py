"""Label Studio webhooks, the start of the live loop: registered on the projects the platform
creates, posted by the real Label Studio to the receiver with the shared secret, kept once per
event, forged ones refused; and when a dataset has enough new labels for a quick retrain."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from include.db.models import Dataset, Experiment, LsWebhook, Task, TaskStatus
from include.db.session import session_scope
from include.labelstudio.label_config import choice_result
from include.pipelines.catalog import ImportValues
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.services import live_loop, webhooks
from include.services.datasets import add_items, create_dataset
from include.services.ls_projects import WebhookRef
from include.services.privacy import SYNTHETIC
from tests.webapp.conftest import make_app

SECRET = "webhook-secret-0123456789"
HEADERS = {webhooks.SECRET_HEADER: SECRET}


BODIES: list[bytes] = []  # what Label Studio posted, as it arrived


@pytest.fixture
def receiver(db) -> Iterator[str]:
    """The web app on a real port, so the real Label Studio can post to it; bodies are kept."""
    from werkzeug.serving import make_server

    app = make_app(db, WEBHOOK_SECRET=SECRET)

    @app.before_request
    def keep_body() -> None:
        from flask import request

        BODIES.append(request.get_data(cache=True))

    BODIES.clear()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/labelstudio"
    server.shutdown()


def _rows(db: str) -> list[tuple[str, int | None]]:
    with session_scope(db) as s:
        return [(r.action, r.dataset_id) for r in s.scalars(select(LsWebhook).order_by(LsWebhook.id))]


def _wait_rows(db: str, n: int, timeout: float = 30) -> list[tuple[str, int | None]]:
    deadline = time.monotonic() + timeout
    while len(rows := _rows(db)) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows


@pytest.mark.labelstudio
def test_label_studio_posts_annotation_events_to_the_receiver(db, ls, receiver) -> None:
    with session_scope(db) as s:
        dataset = create_dataset(s, "webhooks", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, [(f"webhook text {i}", {}) for i in range(5)])
        dataset_id = dataset.id
    client = ls.client()
    result = run_ls_import(
        db, client, RunRef(), ImportValues(dataset_id=dataset_id), webhook=WebhookRef(receiver, SECRET)
    )
    (imported,) = result["datasets"]
    assert imported["ml_problem"] is None
    project_id = imported["ls_project_id"]

    def registered() -> list[dict]:
        hooks = client.request("GET", "/api/webhooks/", params={"project": project_id})
        return [h for h in hooks if h["project"] == project_id]

    (hook,) = registered()
    assert hook["url"] == f"{receiver}?project={project_id}" and hook["headers"] == HEADERS
    assert hook["send_payload"] is False  # the receiver needs the project, never the task's text
    assert sorted(hook["actions"]) == sorted(webhooks.ACTIONS)
    # Every import checks it: still one; a rotated secret reaches the project.
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id), webhook=WebhookRef(receiver, SECRET))
    run_ls_import(
        db,
        client,
        RunRef(),
        ImportValues(dataset_id=dataset_id),
        webhook=WebhookRef(receiver, "rotated-secret-0123456789"),
    )
    (hook,) = registered()
    assert hook["headers"] == {webhooks.SECRET_HEADER: "rotated-secret-0123456789"}
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id), webhook=WebhookRef(receiver, SECRET))

    # A second project gets its own webhook (the same URL on another project is not this one's).
    with session_scope(db) as s:
        other = create_dataset(s, "webhooks-2", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, other, [("another text", {})])
        other_id = other.id
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=other_id), webhook=WebhookRef(receiver, SECRET))
    with session_scope(db) as s:
        other_project = s.get_one(Dataset, other_id).ls_project_id
    listed = client.request("GET", "/api/webhooks/", params={"project": other_project})
    assert [(h["project"], h["url"]) for h in listed] == [(other_project, f"{receiver}?project={other_project}")]

    with session_scope(db) as s:
        ls_task = s.scalar(select(Task.ls_task_id).where(Task.dataset_id == dataset_id).order_by(Task.id).limit(1))
    created = client.create_annotation(ls_task, choice_result("NG"))
    assert _wait_rows(db, 1) == [("ANNOTATION_CREATED", dataset_id)]
    client.update_annotation(int(created["id"]), choice_result("OK"))
    assert _wait_rows(db, 2)[1] == ("ANNOTATION_UPDATED", dataset_id)
    client.request("DELETE", f"/api/annotations/{created['id']}/")
    assert _wait_rows(db, 3)[2] == ("ANNOTATIONS_DELETED", dataset_id)
    with session_scope(db) as s:
        (pending,) = webhooks.claim(s)
    assert pending.dataset_id == dataset_id and len(pending.ids) == 3
    assert pending.actions == tuple(sorted(webhooks.ACTIONS))
    # What travelled: the event's name, nothing of the task (its text) or the project.
    assert len(BODIES) == 3 and all(b"webhook text" not in b and b"label_config" not in b for b in BODIES)
    assert sorted(json.loads(b)["action"] for b in BODIES) == sorted(webhooks.ACTIONS)


@pytest.mark.labelstudio
def test_a_hook_registered_with_a_payload_is_updated_to_send_none(db, ls, receiver) -> None:
    """Hooks registered by an earlier version sent the task's data: the next import fixes them."""
    with session_scope(db) as s:
        dataset = create_dataset(s, "old-hooks", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, [("an old hook's text", {})])
        dataset_id = dataset.id
    client = ls.client()
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id), webhook=WebhookRef(receiver, SECRET))
    with session_scope(db) as s:
        project_id = s.get_one(Dataset, dataset_id).ls_project_id
    (hook,) = [h for h in client.request("GET", "/api/webhooks/") if h["project"] == project_id]
    client.request("PATCH", f"/api/webhooks/{hook['id']}/", json_body={"url": receiver, "send_payload": True})
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id), webhook=WebhookRef(receiver, SECRET))
    (hook,) = [h for h in client.request("GET", "/api/webhooks/") if h["project"] == project_id]
    assert (hook["url"], hook["send_payload"]) == (f"{receiver}?project={project_id}", False)


def test_the_receiver_refuses_forgeries_and_ignores_replays(db) -> None:
    with session_scope(db) as s:
        dataset = create_dataset(s, "hooks", labels=["OK", "NG"], privacy=SYNTHETIC)
        dataset.ls_project_id = 777
        dataset_id = dataset.id
    event = {"action": "ANNOTATION_CREATED", "annotation": {"id": 5, "updated_at": "2026-11-23T06:00:00Z"},
             "project": {"id": 777}}  # fmt: skip
    app = make_app(db, WEBHOOK_SECRET=SECRET)
    with app.test_client() as client:
        forged = client.post("/hooks/labelstudio", json=event, headers={webhooks.SECRET_HEADER: "guess"})
        assert forged.status_code == 403 and webhooks.SECRET_HEADER in forged.json["error"]
        assert client.post("/hooks/labelstudio", json=event).status_code == 403
        assert _rows(db) == []

        first = client.post("/hooks/labelstudio", json=event, headers=HEADERS)
        assert first.status_code == 202
        assert first.json == {"status": "accepted", "action": "ANNOTATION_CREATED", "dataset_id": dataset_id}
        replay = client.post("/hooks/labelstudio", json=event, headers=HEADERS)
        assert (replay.status_code, replay.json["status"]) == (200, "duplicate")
        edited = {**event, "annotation": {"id": 5, "updated_at": "2026-11-23T06:00:09Z"}}
        assert client.post("/hooks/labelstudio", json=edited, headers=HEADERS).json["status"] == "accepted"

        other = {"action": "ANNOTATION_CREATED", "task": {"id": 1, "project": 31337}}
        assert client.post("/hooks/labelstudio", json=other, headers=HEADERS).json["status"] == "ignored"
        project_event = {"action": "PROJECT_UPDATED", "project": {"id": 777}}
        assert client.post("/hooks/labelstudio", json=project_event, headers=HEADERS).json["status"] == "ignored"
        for bad in (
            [1, 2],
            {"action": "ANNOTATION_CREATED"},
            {"project": {"id": 777}},
            {"action": "A\u0000B", "project": {"id": 777}},
            {"action": "X" * 65, "project": {"id": 777}},
        ):
            answer = client.post("/hooks/labelstudio", json=bad, headers=HEADERS)
            assert answer.status_code == 400, bad
        assert _rows(db) == [("ANNOTATION_CREATED", dataset_id)] * 2

        # As the platform registers hooks: the project in the URL, only the event in the body.
        # Nothing tells a replay from a new event there; each only makes the next export run.
        bare = {"action": "ANNOTATION_UPDATED"}
        for _ in range(2):
            answer = client.post("/hooks/labelstudio?project=777", json=bare, headers=HEADERS)
            assert (answer.status_code, answer.json["status"]) == (202, "accepted")
        assert client.post("/hooks/labelstudio?project=31337", json=bare, headers=HEADERS).json["status"] == "ignored"
        for bad in ("x", "0", "-3", "99999999999"):
            answer = client.post(f"/hooks/labelstudio?project={bad}", json=bare, headers=HEADERS)
            assert answer.status_code == 400 and "project" in answer.json["error"], bad
        assert client.post("/hooks/labelstudio?project=777", json={}, headers=HEADERS).status_code == 400
        assert _rows(db)[2:] == [("ANNOTATION_UPDATED", dataset_id)] * 2

    unconfigured = make_app(db, WEBHOOK_SECRET=None)
    with unconfigured.test_client() as client:
        assert client.post("/hooks/labelstudio", json=event, headers=HEADERS).status_code == 404


def _label(db: str, dataset_id: int, n: int, at: datetime) -> None:
    with session_scope(db) as s:
        tasks = s.scalars(
            select(Task).where(Task.dataset_id == dataset_id, Task.label.is_(None)).order_by(Task.id).limit(n)
        ).all()
        assert len(tasks) == n
        for task in tasks:
            task.status, task.label, task.labeled_at = TaskStatus.LABELED, "OK", at


def test_a_dataset_is_due_after_its_threshold_of_new_labels(db) -> None:
    from tests.webapp.factories import dataset_with_tasks

    dataset_id, _ = dataset_with_tasks(db, "live", 40)
    other_id, _ = dataset_with_tasks(db, "nightly-only", 40)
    with session_scope(db) as s:
        live_loop.set_threshold(s.get_one(Dataset, dataset_id), 10)
        live_loop.set_threshold(s.get_one(Dataset, other_id), None)
        with pytest.raises(ValueError, match="between 1 and 1000000"):
            live_loop.set_threshold(s.get_one(Dataset, dataset_id), 0)
    now = datetime.now(UTC)
    _label(db, dataset_id, 9, now - timedelta(minutes=10))
    _label(db, other_id, 30, now - timedelta(minutes=10))
    with session_scope(db) as s:
        assert live_loop.due(s, [dataset_id, other_id]) == []
    _label(db, dataset_id, 1, now - timedelta(minutes=9))
    with session_scope(db) as s:
        assert live_loop.due(s, [dataset_id, other_id]) == [live_loop.Due(dataset_id, 10, 10)]
        # A model trained since: only labels after it count.
        s.add(Experiment(name="e", dataset_id=dataset_id, started_at=now - timedelta(minutes=5)))
    with session_scope(db) as s:
        assert live_loop.due(s, [dataset_id]) == []
    _label(db, dataset_id, 10, now - timedelta(minutes=1))
    with session_scope(db) as s:
        assert [d.new_labels for d in live_loop.due(s, [dataset_id])] == [10]
        live_loop.mark_started(s, [dataset_id])  # started: not again until 10 more arrive
    with session_scope(db) as s:
        assert live_loop.due(s, [dataset_id]) == []
        state = live_loop.status(s, s.get_one(Dataset, dataset_id))
        assert (state["retrain_after_labels"], state["new_labels"]) == (10, 0)


def test_triggering_asset_events_pick_the_datasets() -> None:
    from types import SimpleNamespace

    from include.pipelines.entrypoints import triggering_datasets

    assert triggering_datasets({}) is None  # on the clock, or by hand: every dataset
    assert triggering_datasets({"triggering_asset_events": {}}) is None
    events = {
        "labelstudio_annotations": [SimpleNamespace(extra={"dataset_id": 3}), SimpleNamespace(extra={"dataset_id": 1})],
        "labels_ready": [SimpleNamespace(extra={"dataset_ids": [3, 7]}), SimpleNamespace(extra=None)],
    }
    assert triggering_datasets({"triggering_asset_events": events}) == [1, 3, 7]
    assert triggering_datasets({"triggering_asset_events": {"a": [SimpleNamespace(extra={"x": True})]}}) == []


def test_a_signal_that_may_not_have_reached_airflow_is_sent_again(db) -> None:
    """live_loop_due commits its signal before Airflow records the event: a retry of the same
    export run, or a signal no loop picked up within the lease, must not swallow the loop."""
    from tests.webapp.factories import dataset_with_tasks

    dataset_id, _ = dataset_with_tasks(db, "lost-signal", 40)
    with session_scope(db) as s:
        live_loop.set_threshold(s.get_one(Dataset, dataset_id), 5)
    _label(db, dataset_id, 5, datetime.now(UTC) - timedelta(minutes=2))
    with session_scope(db) as s:
        assert [d.dataset_id for d in live_loop.due(s, [dataset_id], "export-1")] == [dataset_id]
        live_loop.mark_started(s, [dataset_id], "export-1")
    with session_scope(db) as s:
        assert live_loop.due(s, [dataset_id], "export-2") == []  # another export: already signalled
        assert [d.new_labels for d in live_loop.due(s, [dataset_id], "export-1")] == [5]  # its own retry
    with session_scope(db) as s:  # the signal is older than the lease and no loop started: lost
        dataset = s.get_one(Dataset, dataset_id)
        dataset.live_loop_signalled_at = datetime.now(UTC) - live_loop.SIGNAL_LEASE - timedelta(minutes=1)
    with session_scope(db) as s:
        assert [d.new_labels for d in live_loop.due(s, [dataset_id], "export-3")] == [5]
        live_loop.mark_picked_up(s, [dataset_id])  # ... unless a loop run picked the dataset up
    with session_scope(db) as s:
        assert live_loop.due(s, [dataset_id], "export-3") == []
        assert live_loop.status(s, s.get_one(Dataset, dataset_id))["new_labels"] == 0


@pytest.mark.labelstudio
def test_a_rotated_secret_reaches_projects_with_nothing_to_import(db, ls, receiver) -> None:
    """The nightly import (every dataset) and the daily housekeeping re-check the webhook of
    every project the platform owns, not only of those that had new items."""
    from include.pipelines.housekeeping import run_housekeeping
    from include.services.housekeeping import RetentionPolicy

    client = ls.client()
    projects = []
    for name in ("rotate-a", "rotate-b"):
        with session_scope(db) as s:
            dataset = create_dataset(s, name, labels=["OK", "NG"], privacy=SYNTHETIC)
            add_items(s, dataset, [(f"{name} text", {})])
            dataset_id = dataset.id
        result = run_ls_import(
            db, client, RunRef(), ImportValues(dataset_id=dataset_id), webhook=WebhookRef(receiver, SECRET)
        )
        projects.append(result["datasets"][0]["ls_project_id"])

    def secrets() -> dict[int, str]:
        hooks = client.request("GET", "/api/webhooks/")
        return {h["project"]: h["headers"][webhooks.SECRET_HEADER] for h in hooks if h["project"] in projects}

    rotated = "rotated-secret-for-every-project"
    nightly = run_ls_import(db, client, RunRef(), ImportValues(), webhook=WebhookRef(receiver, rotated))
    assert nightly["skipped"] and "no dataset has items to import" in nightly["reason"]
    assert secrets() == {p: rotated for p in projects}
    again = "rotated-again-by-housekeeping-0"
    kept = run_housekeeping(db, client, RunRef(), RetentionPolicy(), webhook=WebhookRef(receiver, again))
    assert kept["webhooks_checked"] >= 2 and not kept["problems"]
    assert secrets() == {p: again for p in projects}


@pytest.mark.labelstudio
def test_the_platforms_own_deliveries_come_back_as_echoes_that_start_nothing(db, ls, receiver) -> None:
    """Each label the outbox writes comes back from the real Label Studio as a webhook: an echo,
    kept for the record and signalled to nobody. A change made in Label Studio itself, between
    them, still asks for an export."""
    from include.db.models import LsEcho, Role, User
    from include.services.assignment import auto_assign
    from include.services.labeling import submit_label
    from include.services.users import create_user
    from include.workers.label_dispatcher import deliver_due

    with session_scope(db) as s:
        dataset = create_dataset(s, "echoes", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, [(f"echo text {i}", {}) for i in range(6)])
        dana = create_user(s, "dana", "dana@echo.test", "dana-password-1", Role.ANNOTATOR)
        dataset_id, dana_id = dataset.id, dana.id
    client = ls.client()
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id), webhook=WebhookRef(receiver, SECRET))
    with session_scope(db) as s:
        auto_assign(s, dataset_id, s.get_one(User, dana_id), 6)
        tasks = s.execute(select(Task.id, Task.ls_task_id).where(Task.dataset_id == dataset_id).order_by(Task.id))
        pairs = [(int(a), int(b)) for a, b in tasks]

    def label(index: int, value: str) -> None:
        with session_scope(db) as s:
            submit_label(s, pairs[index][0], s.get_one(User, dana_id), value)

    def kept() -> list[tuple[str, bool, bool]]:
        with session_scope(db) as s:
            rows = s.scalars(select(LsWebhook).where(LsWebhook.dataset_id == dataset_id).order_by(LsWebhook.id))
            return [(r.action, r.echo, r.signalled_at is None) for r in rows]

    for i in range(4):
        label(i, "OK")
    assert deliver_due(db, client).delivered == 4
    assert _wait_rows(db, 4) and kept() == [("ANNOTATION_CREATED", True, False)] * 4
    label(0, "NG")  # a changed label is an update in Label Studio: its echo too
    assert deliver_due(db, client).delivered == 1
    assert _wait_rows(db, 5) and kept()[4] == ("ANNOTATION_UPDATED", True, False)
    with session_scope(db) as s:
        assert webhooks.claim(s) == []  # nothing for Airflow
        assert s.scalar(select(func.count()).select_from(LsEcho)) == 0  # every expectation taken

    client.create_annotation(pairs[5][1], choice_result("NG"))  # someone in Label Studio's UI
    assert _wait_rows(db, 6) and kept()[5] == ("ANNOTATION_CREATED", False, True)
    label(4, "OK")
    assert deliver_due(db, client).delivered == 1
    assert _wait_rows(db, 7) and kept()[6] == ("ANNOTATION_CREATED", True, False)
    with session_scope(db) as s:
        (pending,) = webhooks.claim(s)
    assert pending.dataset_id == dataset_id and len(pending.ids) == 1


def test_an_expected_echo_lapses_and_an_outside_delete_is_never_one(db) -> None:
    """An expectation Label Studio never answers stops counting after the window; a delete is
    never the outbox's, whatever is expected."""
    from include.db.models import LsEcho

    with session_scope(db) as s:
        dataset = create_dataset(s, "lapsed", labels=["OK", "NG"], privacy=SYNTHETIC)
        dataset.ls_project_id = 4242
        webhooks.expect_echo(s, 4242)
    with session_scope(db) as s:
        deleted = webhooks.record(s, b"{}", {"action": "ANNOTATIONS_DELETED"}, 4242)
        assert deleted.status == "accepted"
        assert webhooks.record(s, b"{}", {"action": "ANNOTATION_UPDATED"}, 4242).status == "echo"
        webhooks.expect_echo(s, 4242)
        s.flush()
        s.execute(update(LsEcho).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert webhooks.record(s, b"{}", {"action": "ANNOTATION_CREATED"}, 4242).status == "accepted"
        assert webhooks.forget_lapsed_echoes(s) == 1
