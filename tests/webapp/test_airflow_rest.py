"""Pipeline buttons against a real Airflow 3 api-server (SimpleAuthManager, REST v2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from include.airflow_client import AirflowClient, AirflowError
from include.db.models import Job, JobStatus
from include.db.session import session_scope
from include.runtime.embedded_pg import free_port
from include.workers.job_reconciler import reconcile
from tests.webapp.conftest import api_token, login, make_app
from tests.webapp.factories import dataset_with_tasks

pytestmark = pytest.mark.airflow

PASSWORDS = {"admin": "admin-pass-123", "webapp": "webapp-pass-123"}


@pytest.fixture(scope="module")
def airflow_api(airflow_db, tmp_path_factory):
    """`airflow api-server` on the test metadata DB, with the DAGs serialized."""
    home = Path(os.environ["AIRFLOW_HOME"])
    passwords = tmp_path_factory.mktemp("af") / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,webapp:op",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-jwt-secret-that-is-long-enough-for-hmac-sha512-0123456789",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "dags", "reserialize"], env=env, check=True, capture_output=True, timeout=300)
    log = (home / "api-server.log").open("wb")
    proc = subprocess.Popen(
        [airflow, "api-server"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if requests.get(f"{url}/api/v2/monitor/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        assert proc.poll() is None, (home / "api-server.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "api-server did not start"
        time.sleep(1)
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


def test_button_triggers_a_real_dag_run(db, users, airflow_api) -> None:
    ds, _ = dataset_with_tasks(db, "rest", 2)
    app = make_app(db, AIRFLOW_API_URL=airflow_api, AIRFLOW_API_PASSWORD=PASSWORDS["webapp"])
    with app.test_client() as client:
        login(client, "admin")
        page = client.post(
            "/admin/pipelines/ls_import/run", data={"dataset_id": str(ds), "limit": "10"}, follow_redirects=True
        ).get_data(as_text=True)
        assert "Import to Label Studio started" in page
    with session_scope(db) as s:
        job = s.scalar(select(Job))
        conf = {"dataset_id": ds, "limit": 10, "batch_size": 5000}  # declared defaults filled in
        assert (job.status, job.dag_id, job.params) == (JobStatus.QUEUED, "ls_import", conf)
        run_id = job.run_id
    admin = AirflowClient(airflow_api, "admin", PASSWORDS["admin"])
    run = admin.get_run("ls_import", run_id)
    assert run["conf"] == conf and run["state"] == "queued"
    assert run["triggering_user_name"] == "webapp"

    # The run fails before its task starts (e.g. an operator kills it): the jobs page catches up.
    admin._request("PATCH", f"/dags/ls_import/dagRuns/{run_id}", json={"state": "failed"})
    with session_scope(db) as s:
        s.get(Job, job.id).created_at = s.get(Job, job.id).created_at.replace(year=2025)  # older than the grace period
    # The page only reads the database; looking at it wakes the reconciler, which settles the row.
    live = make_app(db, AIRFLOW_API_URL=airflow_api, AIRFLOW_API_PASSWORD=PASSWORDS["webapp"], JOB_RECONCILER=True)
    with live.test_client() as client:
        login(client, "admin")
        deadline = time.monotonic() + 60
        while (mine := client.get("/admin/jobs.json").json["jobs"][0])["status"] == "queued":
            assert time.monotonic() < deadline, "the reconciler never settled the queued job"
            time.sleep(0.5)
    live.extensions["labelops.reconciler"].stop()  # not left polling a database later tests stop
    assert mine["status"] == "failed" and "the Airflow run failed" in mine["message"]


def test_airflow_rejects_bad_params_and_bad_passwords(airflow_api) -> None:
    client = AirflowClient(airflow_api, "webapp", PASSWORDS["webapp"])
    with pytest.raises(AirflowError, match="400"):
        client.trigger("ls_import", {"limit": 0})
    with pytest.raises(AirflowError, match="rejected user 'webapp'"):
        AirflowClient(airflow_api, "webapp", "wrong").trigger("ls_import", {})


def test_an_attempt_killed_before_reporting_is_closed_from_airflows_record(db, users, airflow_api, run_dag) -> None:
    """The reconciler reads the try's state from Airflow's REST API and closes the attempt."""
    from airflow.utils.state import DagRunState

    from include.db.models import AttemptState, JobAttempt

    dag_run = run_dag("ls_import", {"dataset_id": 424242})  # its first step fails: no such dataset
    assert dag_run.state == DagRunState.FAILED
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == dag_run.run_id))
        attempt = s.scalar(select(JobAttempt).where(JobAttempt.job_id == job.id))
        assert (attempt.task_id, attempt.try_number, attempt.state) == ("deidentify", 1, AttemptState.FAILED)
        # As if the process had been SIGKILLed before it could report: still "running" here.
        job.status, job.message = JobStatus.RUNNING, "running"
        attempt.state, attempt.ended_at, attempt.message = AttemptState.RUNNING, None, ""
        attempt.started_at = attempt.started_at.replace(year=2025)  # older than the grace period
        job_id = job.id
    looked_up = reconcile(db, AirflowClient(airflow_api, "webapp", PASSWORDS["webapp"]))
    assert looked_up >= 1
    app = make_app(db, AIRFLOW_API_URL=airflow_api, AIRFLOW_API_PASSWORD=PASSWORDS["webapp"])
    with app.test_client() as client:
        login(client, "admin")
        jobs = client.get("/admin/jobs.json").json["jobs"]
        page = client.get("/admin/jobs").get_data(as_text=True)
    (mine,) = [j for j in jobs if j["id"] == job_id]
    assert mine["status"] == "failed"
    (closed,) = mine["attempts"]
    assert closed["state"] == "failed" and "ended without reporting" in closed["message"]
    assert "Airflow: failed" in closed["message"]
    assert "#1 failed" in page


def test_stopping_a_training_through_the_api_ends_its_airflow_run(db, users, airflow_api) -> None:
    """The experiment is marked stopped first, then Airflow's REST API fails the run."""
    from include.db.models import Experiment

    admin = AirflowClient(airflow_api, "admin", PASSWORDS["admin"])
    run = admin.trigger("train_classifier", {"dataset_id": 1})  # no scheduler here: it stays queued
    run_id = run["dag_run_id"]
    ds, _ = dataset_with_tasks(db, "stop-api", 2)
    with session_scope(db) as s:
        s.add(Job(step="train_classifier", dag_id="train_classifier", run_id=run_id, dataset_id=ds))
        experiment = Experiment(name="stop-me", dataset_id=ds, params={}, status="running", run_id=run_id)
        s.add(experiment)
        s.flush()
        experiment_id = experiment.id
    app = make_app(db, AIRFLOW_API_URL=airflow_api, AIRFLOW_API_PASSWORD=PASSWORDS["webapp"])
    with app.test_client() as client:
        headers = api_token(client, "admin")
        stopped = client.post(f"/api/v1/experiments/{experiment_id}/stop", headers=headers)
        again = client.post(f"/api/v1/experiments/{experiment_id}/stop", headers=headers)
        missing = client.post("/api/v1/experiments/999999/stop", headers=headers)
        shown = client.get(f"/api/v1/experiments/{experiment_id}", headers=headers).json["experiment"]
        annotator = client.post(f"/api/v1/experiments/{experiment_id}/stop", headers=api_token(client, "alice"))
    assert stopped.status_code == 200, stopped.json
    assert stopped.json["experiment"]["status"] == "stopped" and "is failed" in stopped.json["message"]
    assert admin.get_run("train_classifier", run_id)["state"] == "failed"
    assert again.status_code == 409 and "is stopped" in again.json["error"]
    assert missing.status_code == 404
    assert shown["status"] == "stopped" and shown["finished_at"]
    assert annotator.status_code == 403


def test_webhooks_become_one_asset_event_per_dataset(db, airflow_api) -> None:
    """Webhooks the receiver kept reach Airflow's REST API as ``labelstudio_annotations`` events
    (as the web app's user), once; with Airflow away they wait and back off."""
    from include.db.models import LsWebhook
    from include.pipelines.assets import ANNOTATIONS_CHANGED
    from include.services import webhooks
    from include.workers.asset_signaller import signal_pending

    first, _ = dataset_with_tasks(db, "signal-a", 1)
    second, _ = dataset_with_tasks(db, "signal-b", 1)
    with session_scope(db) as s:
        from include.db.models import Dataset

        s.get(Dataset, first).ls_project_id, s.get(Dataset, second).ls_project_id = 901, 902
    secret = "webhook-secret-0123456789"
    app = make_app(db, WEBHOOK_SECRET=secret)
    with app.test_client() as client:
        for k, project in enumerate((901, 901, 902)):
            event = {"action": "ANNOTATION_CREATED", "annotation": {"id": k}, "project": {"id": project}}
            assert (
                client.post("/hooks/labelstudio", json=event, headers={webhooks.SECRET_HEADER: secret}).status_code
                == 202
            )

    away = AirflowClient("http://127.0.0.1:9", "webapp", PASSWORDS["webapp"], timeout=2)
    assert signal_pending(db, away) == 0
    with session_scope(db) as s:
        rows = s.scalars(select(LsWebhook)).all()
        assert all(r.attempts == 1 and r.signalled_at is None and "not reachable" in r.last_error for r in rows)
        for r in rows:  # as if the backoff had passed
            r.next_attempt_at = r.received_at

    webapp_user = AirflowClient(airflow_api, "webapp", PASSWORDS["webapp"])
    assert signal_pending(db, webapp_user) == 3
    assert signal_pending(db, webapp_user) == 0  # each delivery once
    admin = AirflowClient(airflow_api, "admin", PASSWORDS["admin"])
    (asset,) = [
        a for a in admin._request("GET", "/assets", params={"limit": 100})["assets"] if a["uri"] == ANNOTATIONS_CHANGED
    ]
    events = admin._request("GET", "/assets/events", params={"asset_id": asset["id"], "limit": 100})["asset_events"]
    extras = sorted(
        (e["extra"]["dataset_id"], e["extra"]["webhooks"])
        for e in events
        if e["extra"].get("dataset_id") in (first, second)
    )
    assert extras == [(first, 2), (second, 1)]
    with session_scope(db) as s:
        assert all(r.signalled_at is not None and r.last_error == "" for r in s.scalars(select(LsWebhook)))


def _events(admin: AirflowClient, uri: str) -> list[dict]:
    (asset,) = [a for a in admin._request("GET", "/assets", params={"limit": 100})["assets"] if a["uri"] == uri]
    return admin._request("GET", "/assets/events", params={"asset_id": asset["id"], "limit": 100})["asset_events"]


def test_a_dataset_has_at_most_one_export_waiting(db, airflow_api) -> None:
    """Webhooks while an export is asked for and not started are covered by it (no new event);
    once it starts reading, the next webhook asks for one more."""
    from include.db.models import Dataset, LsWebhook
    from include.pipelines.assets import ANNOTATIONS_CHANGED
    from include.services import webhooks
    from include.workers.asset_signaller import signal_pending

    dataset_id, _ = dataset_with_tasks(db, "coalesce", 1)
    with session_scope(db) as s:
        s.get_one(Dataset, dataset_id).ls_project_id = 903
    secret = "webhook-secret-0123456789"
    app = make_app(db, WEBHOOK_SECRET=secret)
    webapp_user = AirflowClient(airflow_api, "webapp", PASSWORDS["webapp"])
    admin = AirflowClient(airflow_api, "admin", PASSWORDS["admin"])

    def hooks(n: int) -> None:
        with app.test_client() as client:
            for _ in range(n):
                answer = client.post(
                    "/hooks/labelstudio?project=903",
                    json={"action": "ANNOTATION_UPDATED"},
                    headers={webhooks.SECRET_HEADER: secret},
                )
                assert answer.status_code == 202 and answer.json["status"] == "accepted"

    before = len(_events(admin, ANNOTATIONS_CHANGED))  # dataset ids repeat across tests: count new ones

    def ours() -> list[dict]:
        return [e for e in _events(admin, ANNOTATIONS_CHANGED)[before:] if e["extra"].get("dataset_id") == dataset_id]

    hooks(2)
    assert signal_pending(db, webapp_user) == 2 and len(ours()) == 1
    hooks(3)  # the export asked for has not started: these are its changes too
    assert signal_pending(db, webapp_user) == 3 and len(ours()) == 1
    with session_scope(db) as s:
        rows = s.scalars(select(LsWebhook).where(LsWebhook.dataset_id == dataset_id).order_by(LsWebhook.id)).all()
        assert [r.coalesced for r in rows] == [False, False, True, True, True]
        assert all(r.signalled_at is not None for r in rows)
        webhooks.export_started(s, [dataset_id])
    hooks(1)  # it may have read Label Studio before this change: one more export
    assert signal_pending(db, webapp_user) == 1 and len(ours()) == 2
    hooks(1)
    assert signal_pending(db, webapp_user) == 1 and len(ours()) == 2
    with session_scope(db) as s:  # an export asked for long ago and never started counts as lost
        s.get_one(Dataset, dataset_id).export_signalled_at = datetime.now(UTC) - webhooks.EXPORT_WAIT
    hooks(1)
    assert signal_pending(db, webapp_user) == 1 and len(ours()) == 3


def test_labels_taken_in_by_the_web_app_start_the_live_loop(db, airflow_api) -> None:
    """The platform's own labels start no export (their webhooks are echoes), so the signaller
    counts them in the database and posts ``labels_ready`` itself, once per threshold."""
    from include.db.models import Dataset, Role, User
    from include.pipelines.assets import LABELS_READY
    from include.services.assignment import assign_task
    from include.services.labeling import submit_label
    from include.services.users import create_user
    from include.workers.asset_signaller import signal_live_loop

    dataset_id, task_ids = dataset_with_tasks(db, "live-from-platform", 5)
    with session_scope(db) as s:
        s.get_one(Dataset, dataset_id).retrain_after_labels = 3
        carol = create_user(s, "carol-live", "carol-live@example.com", "carol-password-1", Role.ANNOTATOR)
        for task_id in task_ids:
            assign_task(s, task_id, carol)
        carol_id = carol.id
    webapp_user = AirflowClient(airflow_api, "webapp", PASSWORDS["webapp"])
    admin = AirflowClient(airflow_api, "admin", PASSWORDS["admin"])

    def label(task_ids: list[int]) -> None:
        with session_scope(db) as s:
            for task_id in task_ids:
                submit_label(s, task_id, s.get_one(User, carol_id), "OK")

    before = len(_events(admin, LABELS_READY))

    def ours() -> list[dict]:
        return [e for e in _events(admin, LABELS_READY)[before:] if dataset_id in (e["extra"].get("dataset_ids") or [])]

    label(task_ids[:2])
    assert signal_live_loop(db, webapp_user) == [] and ours() == []
    label(task_ids[2:3])
    assert signal_live_loop(db, webapp_user) == [dataset_id]
    (event,) = ours()
    assert event["extra"]["new_labels"] == {str(dataset_id): 3}
    assert signal_live_loop(db, webapp_user) == []  # counted from the signal on
    label(task_ids[3:])
    assert signal_live_loop(db, webapp_user) == [] and len(ours()) == 1
