"""End to end in headless Chromium (Debian's package, driven by Playwright) against the real
Label Studio: an admin creates a dataset and auto-assigns; an annotator sees only their tasks and
labels two with the keyboard; the admin sees the statistics change."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from include.db.models import Dataset, Job, JobStatus, Task, TaskStatus, User
from include.db.session import session_scope
from include.pipelines.catalog import ImportValues
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.services.assignment import auto_assign
from include.services.jobs import queue_job
from tests.webapp.conftest import log_in, make_app

pytestmark = [pytest.mark.browser, pytest.mark.labelstudio]


@pytest.fixture
def live_url(db, users, ls) -> Iterator[str]:
    app = make_app(
        db,
        WTF_CSRF_ENABLED=True,
        LOGIN_THROTTLE_ENABLED=True,
        OUTBOX_DISPATCHER=True,  # labels reach Label Studio from the app's own thread, as in production
        OUTBOX_SWEEP_SECONDS=0.5,
        LS_URL=ls.url,
        LS_API_TOKEN=ls.token,
        LS_PUBLIC_URL=ls.url,
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    dispatcher = app.extensions.get("labelops.dispatcher")
    if dispatcher is not None:
        dispatcher.stop()


def log_out(page: Any) -> None:
    page.click("button:has-text('Log out')")
    page.wait_for_url("**/login")


def stat(page: Any, name: str) -> str:
    return page.inner_text(f"[data-stat='{name}'] .stat-value")


def test_admin_and_annotator_flow(db, ls, live_url, page, users) -> None:
    log_in(page, live_url, "admin")
    page.click("text=+ New dataset")
    page.fill("input[name=name]", "browser-demo")
    page.check("input[name=source][value=demo]")
    page.fill("input[name=demo]", "100")
    # Privacy by default: without a choice the platform's policy applies; demo texts hold none.
    assert "Platform default" in page.locator("[data-testid=new-privacy]").inner_text()
    page.check("input[name=no_personal_data]")
    page.fill("textarea[name=no_personal_data_reason]", "generated demo texts: no personal data")
    page.click("button:has-text('Create dataset')")
    page.wait_for_selector("text=added 100 items.")
    assert stat(page, "items") == "100" and stat(page, "imported") == "0"

    with session_scope(db) as s:
        dataset_id = s.scalar(select(Dataset.id).where(Dataset.name == "browser-demo"))
    run_ls_import(db, ls.client(), RunRef(), ImportValues(dataset_id=dataset_id))  # what the Import button's DAG runs
    with session_scope(db) as s:
        auto_assign(s, dataset_id, s.get(User, users["bob"]), 1)  # bob's task must stay invisible to alice

    page.reload()
    assert stat(page, "imported") == "100"
    page.click("[data-testid=dataset-tabs] >> text=Labeling")
    page.select_option("[data-testid=auto-assign] select[name=username]", "alice")
    page.fill("[data-testid=auto-assign] input[name=count]", "5")
    page.click("button:has-text('Auto-assign')")
    page.wait_for_selector("text=Assigned 5 tasks to alice, hardest first.")
    assert stat(page, "assigned") == "6"
    log_out(page)

    log_in(page, live_url, "alice")
    rows = page.locator("[data-testid=my-task-table] tbody tr")
    assert rows.count() == 5
    with session_scope(db) as s:
        bobs = s.scalar(select(Task.id).where(Task.assigned_to == users["bob"]))
        alices = set(s.scalars(select(Task.id).where(Task.assigned_to == users["alice"])))
    shown = {int(rows.nth(i).get_attribute("data-task")) for i in range(5)}
    assert shown == alices and bobs not in shown
    hidden = page.goto(f"{live_url}/me/tasks/{bobs}")
    assert hidden.status == 404 and "task not found" in page.content()  # the same as a task that does not exist

    page.goto(f"{live_url}/me/tasks")
    page.click("[data-testid=start-labeling]")
    first_url = page.url
    text = page.inner_text("[data-testid=task-text]")
    assert text
    page.keyboard.press("1")  # OK
    page.wait_for_selector("text=Saved “OK”.")
    assert page.url != first_url
    second_url = page.url
    page.keyboard.press("2")  # NG
    page.wait_for_selector("text=Saved “NG”.")
    assert page.url != second_url
    page.goto(f"{live_url}/me/tasks")
    assert stat(page, "labeled") == "2" and stat(page, "pending") == "3" and stat(page, "today") == "2"
    log_out(page)

    log_in(page, live_url, "admin")
    page.goto(f"{live_url}/admin/datasets/{dataset_id}/labeling")
    assert stat(page, "labeled") == "2" and stat(page, "label-OK") == "1" and stat(page, "label-NG") == "1"
    assert page.inner_text("tr[data-annotator=alice] [data-col=labeled]") == "2"
    with session_scope(db) as s:
        labeled = s.scalars(select(Task.ls_task_id).where(Task.status == TaskStatus.LABELED)).all()
    deadline = time.monotonic() + 30
    while any(not ls.client().request("GET", f"/api/tasks/{i}")["annotations"] for i in labeled):
        assert time.monotonic() < deadline, "the outbox did not deliver the labels"
        time.sleep(0.5)
    emails = {u["id"]: u["email"] for u in ls.client().list_users()}
    for ls_id in labeled:  # and Label Studio has them, attributed to alice
        (annotation,) = ls.client().request("GET", f"/api/tasks/{ls_id}")["annotations"]
        who = annotation["completed_by"]
        assert emails[who["id"] if isinstance(who, dict) else who] == "alice@labelops.test"


def test_jobs_page_refreshes_itself(db, live_url, page) -> None:
    with session_scope(db) as s:
        job_id = queue_job(s, step="ls_import", dag_id="ls_import", run_id="live-1").id
        s.get(Job, job_id).status = JobStatus.RUNNING
        s.get(Job, job_id).message = "imported 5000 of 20000 tasks"
    log_in(page, live_url, "admin")
    page.goto(f"{live_url}/admin/jobs")
    page.wait_for_selector("text=imported 5000 of 20000 tasks")
    with session_scope(db) as s:
        s.get(Job, job_id).status = JobStatus.SUCCESS
        s.get(Job, job_id).message = "imported 20000 tasks"
    page.wait_for_selector(f"tr[data-job='{job_id}'] .badge-success", timeout=15_000)  # no reload
    assert page.inner_text(f"tr[data-job='{job_id}'] [data-col=message]") == "imported 20000 tasks"
    page.wait_for_selector("text=All runs finished.")
