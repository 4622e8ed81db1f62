"""An operator's bad day, on the real platform that `make run` starts (real processes throughout).

One launcher runs for the whole module: embedded PostgreSQL, Label Studio, Airflow (api-server,
scheduler, dag-processor, triggerer) and gunicorn. Each case breaks something, as a bad day
would, and ends by comparing counts between Label Studio's API and the platform's database:
no label lost, none duplicated, none half-written, the failed attempts on record, and the
launcher still running.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psutil
import pytest
import requests

from include.runtime.embedded_pg import port_is_open
from tests.helpers.platform import Platform, pg_of, started_platform, stop_postgres, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio, pytest.mark.airflow]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    with started_platform(tmp_path_factory.mktemp("bad-day")) as running:
        yield running


def _assign(platform: Platform, dataset_id: int, user: str, count: int) -> list[int]:
    r = platform.api("POST", f"/datasets/{dataset_id}/auto_assign", json={"username": user, "count": count})
    assert r.status_code == 200, r.text
    return r.json()["task_ids"]


def _label_all(platform: Platform, user: str, task_ids: list[int], label: str, workers: int = 4) -> int:
    """Label through the API as an annotator would: a failed request is sent again."""
    retries = 0

    def one(task_id: int) -> None:
        nonlocal retries
        for _ in range(60):
            try:
                r = platform.api("POST", f"/annotator/tasks/{task_id}/label", user, json={"label": label})
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            retries += 1
            time.sleep(0.5)
        raise AssertionError(f"task {task_id} could not be labeled")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, task_ids))
    return retries


def _drained(platform: Platform) -> bool:
    return platform.api("GET", "/outbox").json()["waiting"] == 0


def _check_counts(platform: Platform, dataset_id: int) -> tuple[int, int]:
    """Label Studio's annotations equal the platform's, task by task: (annotations, tasks labeled)."""
    (project_id,) = platform.sql("SELECT ls_project_id FROM datasets WHERE id = :d", d=dataset_id)[0]
    in_ls = {k: v for k, v in platform.ls_annotation_counts(project_id).items() if v}
    ours = dict(
        platform.sql(
            "SELECT t.ls_task_id, count(a.id) FROM annotations a JOIN tasks t ON t.id = a.task_id "
            "WHERE t.dataset_id = :d GROUP BY t.ls_task_id",
            d=dataset_id,
        )
    )
    assert in_ls == {int(k): int(v) for k, v in ours.items()}
    assert all(v == 1 for v in in_ls.values()), "a label was duplicated"
    return sum(in_ls.values()), len(in_ls)


DEMO_REASON = "generated demo texts: no personal data"


def test_the_platform_is_up_and_imports(platform: Platform) -> None:
    # The demo's first loop is still busy on 2 cores: Airflow may miss /healthz's 1 s budget a while.
    wait_for("every dependency healthy", lambda: requests.get(f"{platform.web}/healthz", timeout=10).ok, timeout=90)
    health = requests.get(f"{platform.web}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert set(health.json()["checks"]) == {"database", "label_studio", "airflow"}
    job = platform.run_pipeline("ls_import", {"dataset_id": 1})
    assert job["status"] == "success", job
    assert platform.sql("SELECT count(*) FROM tasks WHERE dataset_id = 1")[0][0] == 100
    # The cases below count runs and attempts on dataset 1: no live retrain of it in between.
    off = platform.api("PUT", "/datasets/1/live-loop", json={"retrain_after_labels": None})
    assert off.status_code == 200 and off.json()["retrain_after_labels"] is None


def test_a_web_worker_killed_while_labels_are_in_flight(platform: Platform) -> None:
    tasks = _assign(platform, 1, "alice", 50)
    port = platform.ports["WEBAPP_PORT"]  # the web app's gunicorn, not the webhook receiver's
    master = psutil.Process(
        next(c.pid for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port and c.pid)
    )
    master = master if master.children() else master.parent()  # the gunicorn master has the workers
    killed = threading.Event()

    def kill_one_worker_soon() -> None:
        time.sleep(0.4)
        worker = master.children()[0]
        worker.send_signal(signal.SIGKILL)
        killed.set()

    threading.Thread(target=kill_one_worker_soon, daemon=True).start()
    _label_all(platform, "alice", tasks, "OK")
    assert killed.is_set()
    wait_for("the outbox to drain", lambda: _drained(platform), timeout=120, every=1)
    assert platform.run_pipeline("ls_export", {"dataset_id": 1})["status"] == "success"
    annotations, labeled = _check_counts(platform, 1)
    assert (annotations, labeled) == (50, 50)
    # Resubmitting what was already saved changes nothing anywhere.
    _label_all(platform, "alice", tasks[:5], "OK")
    wait_for("the outbox to drain", lambda: _drained(platform), timeout=60)
    assert _check_counts(platform, 1) == (50, 50)


def test_postgres_stops_for_a_few_seconds(platform: Platform) -> None:
    admin_browser = requests.Session()
    page = admin_browser.get(f"{platform.web}/login", timeout=10).text
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    admin_browser.post(
        f"{platform.web}/login",
        data={"username": "admin", "password": platform.passwords["admin"], "csrf_token": token},
        timeout=10,
    )
    assert admin_browser.get(f"{platform.web}/admin/", timeout=10).status_code == 200
    headers = platform.token("admin")
    trigger = platform.api("POST", "/pipelines/ls_export", json={"dataset_id": 1, "full": True})
    assert trigger.status_code == 202
    stop_postgres(platform.home, platform.ports["PG_PORT"])  # mid-export, and mid-request below
    try:
        for url, kwargs in (
            (f"{platform.web}/admin/", {}),
            (f"{platform.web}/api/v1/jobs", {"headers": headers}),
            (f"{platform.web}/me/tasks", {}),
        ):
            started = time.perf_counter()
            response = (admin_browser if not kwargs else requests).get(url, timeout=10, **kwargs)
            elapsed = time.perf_counter() - started
            assert response.status_code == 503 and elapsed < 1.0, (url, response.status_code, elapsed)
            assert response.headers["Retry-After"]
            if "/api/" in url:
                assert "database is unavailable" in response.json()["error"]
            else:
                assert "Database unavailable" in response.text
        health = requests.get(f"{platform.web}/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["checks"]["database"]["ok"] is False
    finally:
        pg_of(platform.home, platform.ports["PG_PORT"]).start()  # the operator starts it again by hand
    wait_for("pages to work again", lambda: admin_browser.get(f"{platform.web}/admin/", timeout=5).status_code == 200)
    wait_for(
        "Airflow to be healthy",
        lambda: requests.get(f"{platform.web}/healthz", timeout=5).status_code == 200,
        timeout=180,
        every=2,
    )
    assert platform.process.poll() is None, platform.launcher_log()[-3000:]
    assert platform.run_pipeline("ls_export", {"dataset_id": 1})["status"] == "success"
    assert _check_counts(platform, 1) == (50, 50)


def test_a_task_process_killed_mid_step_is_retried_and_on_record(platform: Platform) -> None:
    created = platform.api(
        "POST",
        "/datasets",
        json={"name": "big-embed", "demo": 3000, "no_personal_data": True, "no_personal_data_reason": DEMO_REASON},
    )
    assert created.status_code == 201, created.text
    dataset_id = created.json()["dataset"]["id"]
    response = platform.api("POST", "/pipelines/embed_items", json={"dataset_id": dataset_id, "batch_size": 128})
    run_id = response.json()["job"]["run_id"]

    def embedding_pid() -> int | None:
        rows = platform.sql(
            "SELECT a.pid FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE j.run_id = :r "
            "AND j.step = 'embed_items' AND a.state = 'running' AND j.message LIKE 'embedded%'",
            r=run_id,
        )
        return rows[0][0] if rows else None

    pid = wait_for("embedding to be under way", embedding_pid, timeout=240, every=0.5)
    os.kill(pid, signal.SIGKILL)  # as the OOM killer does
    job = wait_for(
        "the retry to finish",
        lambda: next(
            (
                j
                for j in platform.api("GET", f"/jobs?dataset_id={dataset_id}").json()["jobs"]
                if j["run_id"] == run_id and j["step"] == "embed_items" and j["status"] in ("success", "failed")
            ),
            None,
        ),
        timeout=300,
        every=2,
    )
    assert job["status"] == "success", job
    tries = job["attempts"]
    assert [a["try_number"] for a in tries] == [1, 2] and [a["state"] for a in tries] == ["failed", "success"]
    assert "ended without reporting" in tries[0]["message"]
    embedded = platform.sql(
        "SELECT count(*), count(DISTINCT e.text_hash) FROM embeddings e JOIN items i ON i.text_hash = e.text_hash "
        "WHERE i.dataset_id = :d",
        d=dataset_id,
    )[0]
    assert tuple(embedded) == (3000, 3000)


def test_labels_made_in_label_studio_retrain_that_dataset_alone(platform: Platform) -> None:
    """The live loop on the real scheduler: annotations made in Label Studio reach the web app as
    webhooks, Airflow as asset events, and start ls_export, then the loop for that dataset only."""
    from include.labelstudio.client import LabelStudioClient

    dataset_id = platform.labeled_dataset("live", 400, 200, retrain_after=200)
    (project_id,) = platform.sql("SELECT ls_project_id FROM datasets WHERE id = :d", d=dataset_id)[0]
    hooks = LabelStudioClient(platform.ls_url, platform.ls_token).request(
        "GET", "/api/webhooks/", params={"project": project_id}
    )
    # The ML backend has one too; the platform's names the project and carries no payload.
    receiver = f"http://127.0.0.1:{platform.ports['WEBHOOK_PORT']}/hooks/labelstudio"  # its own gunicorn
    (hook,) = [h for h in hooks if h["url"] == f"{receiver}?project={project_id}"]
    assert hook["send_payload"] is False
    assert hook["is_active"] and hook["project"] == project_id
    airflow = platform.airflow()

    def live_run() -> dict[str, Any] | None:
        runs = airflow._request("GET", "/dags/active_learning_nightly/dagRuns", params={"limit": 100})["dag_runs"]
        done = [r for r in runs if r["run_type"] == "asset_triggered" and r["state"] in ("success", "failed")]
        return done[0] if done else None

    run = wait_for("the live loop to run", live_run, timeout=600, every=3)
    assert run["state"] == "success", run
    steps = {
        step: (status, ds)
        for step, status, ds in platform.sql(
            "SELECT step, status, dataset_id FROM jobs WHERE run_id = :r", r=run["dag_run_id"]
        )
    }
    assert steps["train_classifier"] == ("success", dataset_id), steps  # this dataset, and only it
    assert {ds for _, ds in steps.values() if ds is not None} == {dataset_id}
    exports = airflow._request("GET", "/dags/ls_export/dagRuns", params={"limit": 100})["dag_runs"]
    assert any(r["run_type"] == "asset_triggered" and r["state"] == "success" for r in exports)
    kept, waiting = platform.sql(
        "SELECT count(*), count(*) FILTER (WHERE signalled_at IS NULL) FROM ls_webhooks WHERE dataset_id = :d",
        d=dataset_id,
    )[0]
    assert (kept, waiting) == (200, 0)
    promoted = platform.sql("SELECT count(*) FROM models WHERE dataset_id = :d AND status = 'promoted'", d=dataset_id)
    assert promoted[0][0] == 1, steps
    scored = platform.sql(
        "SELECT count(*) FROM tasks WHERE dataset_id = :d AND label IS NULL AND uncertainty_score IS NOT NULL",
        d=dataset_id,
    )
    assert scored[0][0] == 200  # the unlabeled half, in the annotators' new order


def test_label_studio_goes_down_while_annotators_label(platform: Platform) -> None:
    tasks = _assign(platform, 1, "bob", 20)
    ls_pid = next(
        c.pid
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == platform.ports["LS_PORT"]
    )
    os.killpg(os.getpgid(ls_pid), signal.SIGKILL)
    wait_for(
        "Label Studio to be gone",
        lambda: not port_is_open("127.0.0.1", platform.ports["LS_PORT"]),
        timeout=10,
        every=0.1,
    )
    started = time.perf_counter()
    _label_all(platform, "bob", tasks, "NG")  # no waiting on Label Studio: saved at once
    assert time.perf_counter() - started < 20
    outbox = platform.api("GET", "/annotator/outbox", "bob").json()
    assert outbox["waiting"] == 20
    wait_for(
        "Label Studio to be restarted",
        lambda: requests.get(f"{platform.ls_url}/health", timeout=2).ok,
        timeout=180,
        every=2,
    )
    wait_for("the outbox to drain", lambda: _drained(platform), timeout=120, every=2)
    assert platform.run_pipeline("ls_export", {"dataset_id": 1})["status"] == "success"
    assert _check_counts(platform, 1) == (70, 70)
    assert "restarted Label Studio" in platform.launcher_log()


def test_only_a_stop_signal_stops_it_and_only_what_it_started(platform: Platform) -> None:
    assert platform.process.poll() is None
    platform.process.send_signal(signal.SIGTERM)
    assert platform.process.wait(timeout=120) == 0
    for name in ("WEBAPP_PORT", "WEBHOOK_PORT", "AIRFLOW_PORT", "LS_PORT"):
        wait_for(f"{name} to be free", lambda n=name: not port_is_open("127.0.0.1", platform.ports[n]), timeout=30)
    # PostgreSQL was restarted by hand during the outage: not the launcher's to stop.
    assert port_is_open("127.0.0.1", platform.ports["PG_PORT"])
    assert "was not started by this process: leaving it running" in platform.launcher_log()
