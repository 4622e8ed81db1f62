"""The JSON API, following the seed's scripted flow (login, dataset, stats, assign, annotator views)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from include.db.models import Task, TaskStatus
from include.db.session import session_scope
from include.pipelines.catalog import ImportValues
from include.services.jobs import queue_job
from include.services.privacy import SYNTHETIC
from tests.webapp.conftest import api_token
from tests.webapp.factories import dataset_with_tasks


def test_seed_flow(db, client, users) -> None:
    admin = api_token(client, "admin")
    me = client.get("/api/v1/me", headers=admin).json
    assert me["role"] == "admin" and me["username"] == "admin"

    created = client.post("/api/v1/datasets", json={"name": "demo-dataset", "demo": 100}, headers=admin)
    assert created.status_code == 201 and created.json["items_added"] == 100
    ds = created.json["dataset"]["id"]
    stats = client.get(f"/api/v1/datasets/{ds}/stats", headers=admin).json
    assert (stats["items"], stats["imported"], stats["not_imported"]) == (100, 0, 100)
    assert [d["name"] for d in client.get("/api/v1/datasets", headers=admin).json["datasets"]] == ["demo-dataset"]

    other, tasks = dataset_with_tasks(db, "api-tasks", 30, priorities=list(range(30)))
    assigned = client.post(f"/api/v1/tasks/{tasks[0]}/assign/alice", headers=admin)
    assert assigned.status_code == 200 and assigned.json["task"]["status"] == "assigned"
    auto = client.post(f"/api/v1/datasets/{other}/auto_assign?username=alice&count=20", headers=admin).json
    assert auto["assigned"] == 20
    assert set(auto["task_ids"]) == set(tasks[10:30])  # highest priorities 10..29

    annotator = api_token(client, "alice")
    mine = client.get(f"/api/v1/annotator/tasks?dataset_id={other}&status=assigned&limit=50", headers=annotator).json
    assert len(mine["tasks"]) == 21 and mine["tasks"][0]["priority"] == 29 and "text" in mine["tasks"][0]
    assert client.get("/api/v1/annotator/stats", headers=annotator).json["assigned"] == 21
    bob = api_token(client, "bob")
    assert client.get("/api/v1/annotator/tasks", headers=bob).json["tasks"] == []
    assert (
        client.post(f"/api/v1/annotator/tasks/{tasks[0]}/label", json={"label": "OK"}, headers=bob).status_code == 404
    )

    top = client.get(f"/api/v1/datasets/{other}/priority_tasks?limit=5", headers=admin).json["tasks"]
    assert [t["priority"] for t in top] == [29, 28, 27, 26, 25]


def test_validation_errors_are_clear(db, client, users) -> None:
    admin = api_token(client, "admin")
    ds, _ = dataset_with_tasks(db, "api-bad", 2)
    cases = [
        (client.post("/api/v1/auth/login", json={"username": "admin"}), 400, "password is required"),
        (client.post("/api/v1/auth/login", json={"username": "admin", "password": "nope-nope"}), 401, "wrong username"),
        (client.post("/api/v1/datasets", json={"name": "x!"}, headers=admin), 400, "a dataset name is"),
        (client.post("/api/v1/datasets", json={"name": "ok-name", "demo": -1}, headers=admin), 400, "demo must be"),
        (
            client.post(f"/api/v1/datasets/{ds}/auto_assign?username=alice&count=abc", headers=admin),
            400,
            "count must be a whole number",
        ),
        (client.post(f"/api/v1/datasets/{ds}/auto_assign?username=ghost&count=3", headers=admin), 400, "no such user"),
        (
            client.post(f"/api/v1/datasets/{ds}/auto_assign?username=admin&count=3", headers=admin),
            400,
            "not an annotator",
        ),
        (client.post("/api/v1/tasks/999999/assign/alice", headers=admin), 404, "does not exist"),
        (client.get("/api/v1/datasets/999/stats", headers=admin), 404, "dataset 999 does not exist"),
        (client.get(f"/api/v1/datasets/{ds}/priority_tasks?limit=0", headers=admin), 400, "limit must be"),
        (client.post("/api/v1/pipelines/nope", json={}, headers=admin), 404, "unknown pipeline"),
        (
            client.post("/api/v1/pipelines/ls_import", json={"dataset_id": ds, "limit": "many"}, headers=admin),
            400,
            "whole number",
        ),
        (client.post("/api/v1/pipelines/ls_import", json={"dataset_id": ds}, headers=admin), 503, "not reachable"),
        (client.get("/api/v1/jobs/12345", headers=admin), 404, "job 12345 not found"),
    ]
    for response, status, message in cases:
        assert response.status_code == status, (response.json, status)
        assert message in response.json["error"], response.json


def test_jobs_api(db, client, users) -> None:
    admin = api_token(client, "admin")
    with session_scope(db) as s:
        job = queue_job(s, step="ls_export", dag_id="ls_export", run_id="api-run")
        job_id = job.id
    listed = client.get("/api/v1/jobs", headers=admin).json["jobs"]
    assert [j["id"] for j in listed] == [job_id] and listed[0]["status"] == "queued"
    assert client.get(f"/api/v1/jobs/{job_id}", headers=admin).json["run_id"] == "api-run"


@pytest.mark.labelstudio
def test_annotator_labels_through_the_api(db, ls, ls_app, users) -> None:
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.runner import RunRef
    from include.services.datasets import add_items, create_dataset
    from include.workers.label_dispatcher import deliver_due

    with session_scope(db) as s:
        ds = create_dataset(s, "api-label", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, ds, [("The router drops the connection constantly.", {})])
        dataset_id = ds.id
    run_ls_import(db, ls.client(), RunRef(), ImportValues(dataset_id=dataset_id))
    with ls_app.test_client() as client:
        admin = api_token(client, "admin")
        with session_scope(db) as s:
            task_id = s.scalar(select(Task.id).where(Task.dataset_id == dataset_id))
        client.post(f"/api/v1/tasks/{task_id}/assign/alice", headers=admin)
        alice = api_token(client, "alice")
        bad = client.post(f"/api/v1/annotator/tasks/{task_id}/label", json={"label": "maybe"}, headers=alice)
        assert bad.status_code == 400 and "choose one of" in bad.json["error"]
        ok = client.post(f"/api/v1/annotator/tasks/{task_id}/label", json={"label": "NG"}, headers=alice)
        assert ok.status_code == 200 and ok.json["task"]["status"] == "labeled"
        assert client.get("/api/v1/annotator/outbox", headers=alice).json["waiting"] == 1
        assert client.get("/api/v1/outbox", headers=admin).json["waiting"] == 1
        assert client.get("/api/v1/outbox", headers=alice).status_code == 403
        assert deliver_due(db, ls.client()).delivered == 1
        assert client.get("/api/v1/annotator/outbox", headers=alice).json["waiting"] == 0
        again = client.post(f"/api/v1/annotator/tasks/{task_id}/label", json={"label": "NG"}, headers=alice)
        assert again.status_code == 200 and client.get("/api/v1/outbox", headers=admin).json["waiting"] == 0
    with session_scope(db) as s:
        task = s.get(Task, task_id)
        assert task.status == TaskStatus.LABELED
    assert len(ls.client().request("GET", f"/api/tasks/{task.ls_task_id}")["annotations"]) == 1
