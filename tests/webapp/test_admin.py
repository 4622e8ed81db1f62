"""Admin pages: datasets, uploads, stats, tasks, assignment, users, pipelines and jobs."""

from __future__ import annotations

import io
import json
import re

from sqlalchemy import select

from include.db.models import Dataset, Item, Job, JobStatus, Task, TaskStatus, User
from include.db.session import session_scope
from include.services.jobs import queue_job
from include.services.sealing import Opened, unseal
from tests.webapp.conftest import PII_KEY, login
from tests.webapp.factories import dataset_with_tasks


def upload(client, path: str, content: str, filename: str, **fields: str):
    data = {"file": (io.BytesIO(content.encode()), filename), **fields}
    return client.post(path, data=data, content_type="multipart/form-data", follow_redirects=True)


def test_create_demo_dataset(db, client) -> None:
    login(client, "admin")
    response = client.post(
        "/admin/datasets/new",
        data={"name": "demo-a", "labels": "OK, NG", "source": "demo", "demo_count": "100", "text_column": "text"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Dataset “demo-a” created." in page and "added 100 items." in page
    with session_scope(db) as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "demo-a"))
        assert ds.item_count == 100 and ds.labels == ["OK", "NG"]


def test_upload_csv_reports_duplicates_and_empty_rows(db, client) -> None:
    login(client, "admin")
    csv = "id,text,customer\n1,The kettle leaks,Wang\n2,The lamp works,Li\n3,The kettle leaks,Wang\n4,,Zhao\n"
    response = upload(
        client,
        "/admin/datasets/new",
        csv,
        "notes.csv",
        name="csv-set",
        labels="OK,NG",
        source="upload",
        text_column="text",
    )
    page = response.get_data(as_text=True)
    assert "added 2 items, 1 duplicate texts skipped, 1 empty rows skipped." in page
    assert "Duplicates skipped: notes.csv line " in page and "(repeats an earlier row)" in page
    assert "kettle leaks" not in page.split("Duplicates skipped")[1].split("</")[0]  # lines, never the text
    # Columns beside the text may hold personal data: dropped unless the dataset keeps them.
    assert "Not kept (they may hold personal data): customer, id." in page
    with session_scope(db) as s:
        items = s.execute(select(Item.text, Item.source).order_by(Item.id)).all()
    assert items[0].source == {"file": "notes.csv", "line": 2}
    kept = upload(
        client,
        "/admin/datasets/new",
        csv.replace("1,The", "9,Another"),
        "notes.csv",
        name="csv-kept",
        labels="OK,NG",
        source="upload",
        text_column="text",
        keep_columns="id",
    )
    assert "Not kept (they may hold personal data): customer." in kept.get_data(as_text=True)
    with session_scope(db) as s:
        ds = s.scalar(select(Dataset).where(Dataset.name == "csv-kept"))
        first = s.scalars(select(Item).where(Item.dataset_id == ds.id).order_by(Item.id)).first()
        assert ds.keep_columns == ["id"] and first.source == {"file": "notes.csv", "line": 2}
        # kept, but sealed with the text until the dataset's deidentify step
        assert unseal(first.sealed, PII_KEY.encode()) == Opened("Another kettle leaks", {"id": "9"})


def test_upload_jsonl_to_an_existing_dataset(db, client) -> None:
    ds, _ = dataset_with_tasks(db, "jsonl-set", 1)
    login(client, "admin")
    response = upload(
        client,
        f"/admin/datasets/{ds}/upload",
        '{"text": "new one"}\n{"text": "jsonl-set text 0"}\n',
        "more.jsonl",
        text_column="text",
    )
    assert "added 1 items, 1 duplicate texts skipped." in response.get_data(as_text=True)


def test_bad_uploads_get_clear_messages(db, client) -> None:
    login(client, "admin")
    cases = [
        ("body\nhello\n", "a.csv", "has no &#39;text&#39; column"),
        ('{"text": "ok"}\nnot json\n', "b.jsonl", "line 2 is not valid JSON"),
        ('{"body": "x"}\n', "c.jsonl", "line 1 has no string &#39;text&#39; field"),
        ("text\n" + "\n".join(f"row {i}" for i in range(20)), "d.csv", "more than 10 rows"),
    ]
    client.application.config["UPLOAD_MAX_ROWS"] = 10
    for content, filename, message in cases:
        response = upload(
            client,
            "/admin/datasets/new",
            content,
            filename,
            name=f"bad-{filename[0]}",
            labels="OK,NG",
            source="upload",
            text_column="text",
        )
        assert response.status_code == 400 and message in response.get_data(as_text=True), filename
    response = upload(
        client, "/admin/datasets/new", "x", "e.xlsx", name="bad-e", labels="OK,NG", source="upload", text_column="text"
    )
    assert response.status_code == 400 and "upload a .csv (with a header row) or a .jsonl file" in response.get_data(
        as_text=True
    )
    bad_bytes = client.post(
        "/admin/datasets/new",
        data={
            "file": (io.BytesIO(b"\xff\xfe\x00bad"), "f.csv"),
            "name": "bad-f",
            "labels": "OK,NG",
            "source": "upload",
            "text_column": "text",
        },
        content_type="multipart/form-data",
    )
    assert "is not UTF-8 text" in bad_bytes.get_data(as_text=True)
    with session_scope(db) as s:
        assert s.scalar(select(Dataset.id)) is None  # nothing half-created


def test_form_validation_messages(client) -> None:
    login(client, "admin")
    response = client.post(
        "/admin/datasets/new", data={"name": "", "labels": "OK", "source": "empty", "text_column": "text"}
    )
    assert response.status_code == 400 and b"Name is required" in response.data
    response = client.post(
        "/admin/datasets/new", data={"name": "one-label", "labels": "OK", "source": "empty", "text_column": "text"}
    )
    assert b"a dataset needs at least two labels" in response.data


def test_dataset_page_shows_stats_and_per_annotator_progress(db, client, users) -> None:
    ds, tasks = dataset_with_tasks(db, "stats", 5)
    with session_scope(db) as s:
        s.query(Task).filter(Task.id.in_(tasks[:3])).update(
            {"assigned_to": users["alice"], "status": TaskStatus.ASSIGNED}
        )
        s.query(Task).filter(Task.id == tasks[0]).update({"status": TaskStatus.LABELED, "label": "OK"})
        s.query(Task).filter(Task.id == tasks[1]).update({"status": TaskStatus.CONFLICT})
    login(client, "admin")
    page = client.get(f"/admin/datasets/{ds}/labeling").get_data(as_text=True)
    for stat, value in (
        ("items", 5),
        ("imported", 5),
        ("assigned", 3),
        ("labeled", 1),
        ("conflicts", 1),
        ("unassigned", 2),
    ):
        assert f'data-stat="{stat}"><span class="stat-value">{value}<' in page, stat
    assert 'data-stat="label-OK"><span class="stat-value">1<' in page
    assert '<tr data-annotator="alice"><td>alice</td><td>3</td><td>1</td><td data-col="labeled">1</td>' in page


def test_task_table_filters_and_orders_by_priority(db, client, users) -> None:
    ds, tasks = dataset_with_tasks(db, "table", 4, priorities=[10, 500, 250, 0])
    with session_scope(db) as s:
        s.query(Task).filter(Task.id == tasks[1]).update({"assigned_to": users["bob"], "status": TaskStatus.ASSIGNED})
    login(client, "admin")
    page = client.get(f"/admin/tasks?dataset_id={ds}").get_data(as_text=True)
    order = [page.index(f'data-task="{t}"') for t in (tasks[1], tasks[2], tasks[0], tasks[3])]
    assert order == sorted(order)
    page = client.get(f"/admin/tasks?dataset_id={ds}&assignee=bob").get_data(as_text=True)
    assert f'data-task="{tasks[1]}"' in page and f'data-task="{tasks[0]}"' not in page
    page = client.get(f"/admin/tasks?dataset_id={ds}&assignee=none&status=imported").get_data(as_text=True)
    assert f'data-task="{tasks[1]}"' not in page and f'data-task="{tasks[0]}"' in page
    assert "status must be one of" in client.get("/admin/tasks?status=bogus").get_data(as_text=True)


def test_task_table_paginates(db, client) -> None:
    dataset_with_tasks(db, "pages", 60)
    login(client, "admin")
    first = client.get("/admin/tasks").get_data(as_text=True)
    assert first.count('data-task="') == 50 and "Next →" in first
    second = client.get("/admin/tasks?page=2").get_data(as_text=True)
    assert second.count('data-task="') == 10 and "← Previous" in second and "Next →" not in second


def test_assign_unassign_and_refusals(db, client, users) -> None:
    _, tasks = dataset_with_tasks(db, "assign", 2)
    login(client, "admin")
    page = client.post(f"/admin/tasks/{tasks[0]}/assign", data={"username": "alice"}, follow_redirects=True)
    assert f"Task {tasks[0]} assigned to alice." in page.get_data(as_text=True)
    page = client.post(f"/admin/tasks/{tasks[0]}/unassign", follow_redirects=True)
    assert f"Task {tasks[0]} is unassigned." in page.get_data(as_text=True)
    page = client.post(f"/admin/tasks/{tasks[0]}/assign", data={"username": "admin"}, follow_redirects=True)
    assert page.status_code == 400 and "admin is not an annotator" in page.get_data(as_text=True)
    with session_scope(db) as s:
        s.query(Task).filter(Task.id == tasks[1]).update({"status": TaskStatus.LABELED, "label": "OK"})
    page = client.post(f"/admin/tasks/{tasks[1]}/assign", data={"username": "bob"}, follow_redirects=True)
    assert "is labeled; only unlabeled tasks can be assigned" in page.get_data(as_text=True)


def test_auto_assign_takes_highest_priority_first(db, client, users) -> None:
    ds, tasks = dataset_with_tasks(db, "auto", 6, priorities=[5, 900, 300, 900, 0, 700])
    login(client, "admin")
    page = client.post(
        f"/admin/datasets/{ds}/auto-assign", data={"username": "alice", "count": "3"}, follow_redirects=True
    )
    assert "Assigned 3 tasks to alice, hardest first." in page.get_data(as_text=True)
    with session_scope(db) as s:
        mine = set(s.scalars(select(Task.id).where(Task.assigned_to == users["alice"])))
    assert mine == {tasks[1], tasks[3], tasks[5]}
    page = client.post(
        f"/admin/datasets/{ds}/auto-assign", data={"username": "bob", "count": "10"}, follow_redirects=True
    )
    assert "Assigned 3 tasks to bob" in page.get_data(as_text=True)
    page = client.post(
        f"/admin/datasets/{ds}/auto-assign", data={"username": "bob", "count": "10"}, follow_redirects=True
    )
    assert "No unassigned, unlabeled tasks left in this dataset." in page.get_data(as_text=True)
    page = client.post(
        f"/admin/datasets/{ds}/auto-assign", data={"username": "bob", "count": "0"}, follow_redirects=True
    )
    assert page.status_code == 400 and "Tasks must be between 1 and 50000" in page.get_data(as_text=True)


def test_users_page_creates_resets_and_deactivates(db, client, users) -> None:
    login(client, "admin")
    created = client.post("/admin/users", data={"username": "carol", "email": "Carol@Example.com", "role": "annotator"})
    page = created.get_data(as_text=True)
    assert created.status_code == 200 and "Created carol. Their password (shown once):" in page
    password = re.search(r'<code class="secret">([^<]+)</code>', page).group(1)
    # On the answer itself, never in the (signed, not encrypted) session cookie, and not cached.
    assert created.headers["Cache-Control"] == "no-store"
    with client.session_transaction() as session:
        assert password not in json.dumps(dict(session), default=str)
    assert password not in client.get("/admin/users").get_data(as_text=True)
    page = client.post(
        "/admin/users",
        data={"username": "carol2", "email": "carol@example.com", "role": "annotator"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "that username or email is already in use" in page
    page = client.post("/admin/users", data={"username": "x", "email": "not-an-email", "role": "annotator"}).get_data(
        as_text=True
    )
    assert "a username is 2-64 letters" in page
    reset = client.post(f"/admin/users/{users['bob']}/reset-password")
    assert reset.status_code == 200 and "New password for bob (shown once):" in reset.get_data(as_text=True)
    assert reset.headers["Cache-Control"] == "no-store"
    page = client.post(f"/admin/users/{users['bob']}/toggle-active", follow_redirects=True).get_data(as_text=True)
    assert "bob is now deactivated." in page
    page = client.post(f"/admin/users/{users['admin']}/toggle-active", follow_redirects=True).get_data(as_text=True)
    assert "You cannot deactivate your own account." in page
    with session_scope(db) as s:
        assert s.scalar(select(User.email).where(User.username == "carol")) == "carol@example.com"


def test_pipeline_button_with_airflow_down_explains_and_leaves_nothing(db, client) -> None:
    ds, _ = dataset_with_tasks(db, "pipe", 1)
    login(client, "admin")
    page = client.post("/admin/pipelines/ls_import/run", data={"dataset_id": str(ds)}, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert page.status_code == 503 and page.headers["Retry-After"]
    assert "Could not start Import to Label Studio: Airflow at http://127.0.0.1:9 is not reachable" in text
    with session_scope(db) as s:
        assert s.scalar(select(Job.id)) is None
    bad = client.post(
        "/admin/pipelines/ls_import/run", data={"dataset_id": str(ds), "limit": "-4"}, follow_redirects=True
    )
    assert "Most tasks must be between 1 and 1000000" in bad.get_data(as_text=True)
    assert client.post("/admin/pipelines/nope/run").status_code == 404
    assert client.get("/admin/pipelines").status_code == 200


def test_jobs_page_refreshes_only_while_runs_are_active(db, client) -> None:
    login(client, "admin")
    with session_scope(db) as s:
        job = queue_job(s, step="ls_import", dag_id="ls_import", run_id="r-1")
        job_id = job.id
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert 'data-active="1"' in page and "Refreshing while runs are active" in page
    data = client.get("/admin/jobs.json").json
    assert data["active"] is True and data["jobs"][0]["status"] == "queued"
    with session_scope(db) as s:
        s.get(Job, job_id).status = JobStatus.SUCCESS
        s.get(Job, job_id).message = "imported 100 tasks"
    data = client.get("/admin/jobs.json").json
    assert data["active"] is False and data["jobs"][0]["message"] == "imported 100 tasks"
    assert 'data-active="0"' in client.get("/admin/jobs").get_data(as_text=True)


def test_healthz_reports_each_dependency(client, app) -> None:
    assert client.get("/livez").json == {"status": "alive"}
    response = client.get("/healthz")  # the test app's Airflow address has nothing listening
    assert response.status_code == 503
    body = response.json
    assert body["status"] == "degraded" and body["checks"]["database"]["ok"] is True
    assert body["checks"]["airflow"]["ok"] is False and body["checks"]["airflow"]["error"] == "not reachable"
    assert "label_studio" not in body["checks"]  # not configured: not checked
    app.config["AIRFLOW_API_PASSWORD"] = None
    healthy = client.get("/healthz")
    assert healthy.status_code == 200 and healthy.json["status"] == "ok"


def test_the_lag_behind_label_studio_is_on_healthz_and_the_admin_pages(client, app, db, users) -> None:
    """Labels on their way to Label Studio: how many, how old the oldest, how fast it goes;
    on /healthz (never a 503 for it) and on the admin's datasets page."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from include.db.models import LabelOutbox
    from include.services.assignment import assign_task
    from include.services.labeling import submit_label

    app.config["AIRFLOW_API_PASSWORD"] = None
    assert client.get("/healthz").json["label_outbox"] == {
        "waiting": 0,
        "oldest_waiting_s": 0.0,
        "failing": 0,
        "undeliverable": 0,
        "delivered_last_minute": 0,
    }
    _, task_ids = dataset_with_tasks(db, "lagging", 3)
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        for task_id in task_ids:
            assign_task(s, task_id, alice)
            submit_label(s, task_id, alice, "OK")
        s.flush()
        s.execute(update(LabelOutbox).values(created_at=datetime.now(UTC) - timedelta(minutes=3)))
        first = s.scalar(select(LabelOutbox).order_by(LabelOutbox.id).limit(1))
        first.status, first.sent_at = "sent", datetime.now(UTC)
    answer = client.get("/healthz")
    assert answer.status_code == 200  # a lagging Label Studio is not an unhealthy web app
    lag = answer.json["label_outbox"]
    assert lag["waiting"] == 2 and lag["delivered_last_minute"] == 1
    assert 170 <= lag["oldest_waiting_s"] <= 300
    login(client, "admin")
    html = client.get("/admin/").get_data(as_text=True)
    assert "2 labels are saved here and on their way to Label Studio" in html
    assert re.search(r'data-testid="outbox-lag">The oldest has waited 3 minutes; Label Studio took 1 in', html)
    client.post("/language", data={"language": "zh_CN", "next": "/admin/"})
    assert "最早的一条已等待 3分钟" in client.get("/admin/").get_data(as_text=True)
