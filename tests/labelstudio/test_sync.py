"""Import, export, predictions and deletion against the real Label Studio and PostgreSQL."""

from __future__ import annotations

import shutil
import uuid

import pytest
from sqlalchemy import event, func, select

from include.db.models import Annotation, Dataset, Job, JobStatus, LsProject, Role, Task, TaskStatus
from include.db.session import get_engine, session_scope
from include.labelstudio.client import LabelStudioClient, LabelStudioConfigError, LabelStudioError
from include.labelstudio.label_config import build_label_config, choice_result
from include.pipelines import ls_import as ls_import_pipeline
from include.pipelines.catalog import ExportValues, ImportValues
from include.pipelines.ls_export import run_ls_export
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.services.datasets import add_items, create_dataset
from include.services.deletion import delete_dataset, delete_items
from include.services.predictions import Prediction, push_predictions
from include.services.privacy import SYNTHETIC
from include.services.users import create_user
from tests.helpers.proxy import FaultyProxy

pytestmark = pytest.mark.labelstudio


def make_dataset(db: str, n: int, name: str | None = None) -> int:
    with session_scope(db) as s:
        dataset = create_dataset(s, name or f"ds-{uuid.uuid4().hex[:8]}", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, [(f"{dataset.name} item {i}", {"i": i}) for i in range(n)])
        return dataset.id


def ls_task_count(client: LabelStudioClient, project_id: int) -> int:
    return int(client.get_project(project_id)["task_number"])


def db_tasks(db: str, dataset_id: int) -> list[Task]:
    with session_scope(db) as s:
        return list(s.scalars(select(Task).where(Task.dataset_id == dataset_id).order_by(Task.item_id)))


def project_of(db: str, dataset_id: int) -> int:
    with session_scope(db) as s:
        return int(s.get(Dataset, dataset_id).ls_project_id)


def ls_user(client: LabelStudioClient, email: str) -> int:
    for user in client.list_users():
        if user["email"] == email:
            return int(user["id"])
    return int(client.create_user(email, email.split("@")[0])["id"])


# -- import ----------------------------------------------------------------------------------
def test_import_1000_then_rerun_imports_nothing_twice(db, ls) -> None:
    dataset_id = make_dataset(db, 1000)
    client = ls.client()
    result = run_ls_import(
        db, client, RunRef("ls_import", "run-1"), ImportValues(dataset_id=dataset_id, batch_size=300)
    )
    assert result["imported"] == 1000
    project_id = project_of(db, dataset_id)
    assert ls_task_count(client, project_id) == 1000

    again = run_ls_import(db, client, RunRef("ls_import", "run-2"), ImportValues(dataset_id=dataset_id))
    assert again["imported"] == 0 and again["recovered"] == 0
    assert ls_task_count(client, project_id) == 1000
    tasks = db_tasks(db, dataset_id)
    assert len(tasks) == 1000 and len({t.ls_task_id for t in tasks}) == 1000
    # The item id in each Label Studio task points back at the right item.
    by_ls = {
        t["id"]: t["data"]["item_id"] for t in client.iter_tasks(project_id, fields="task_only", include=["id", "data"])
    }
    assert all(by_ls[t.ls_task_id] == t.item_id for t in tasks)
    with session_scope(db) as s:
        messages = [j.message for j in s.scalars(select(Job).order_by(Job.id))]
    assert messages == ["imported 1000 tasks", "imported 0 tasks"]


def test_a_long_dataset_name_still_imports(db, ls) -> None:
    """Label Studio refuses project titles over 50 characters; the dataset's name is shortened."""
    name = "customer-complaints-2026-q4-shanghai-hotline-escalations"
    dataset_id = make_dataset(db, 30, name=name)
    client = ls.client()
    result = run_ls_import(db, client, RunRef("ls_import", "long"), ImportValues(dataset_id=dataset_id))
    assert result["imported"] == 30
    project = client.get_project(project_of(db, dataset_id))
    assert len(project["title"]) <= 50 and project["title"].startswith("customer-complaints-2026-q4")
    assert project["title"].endswith(f"(LabelOps dataset {dataset_id})") and ls_task_count(client, project["id"]) == 30


def test_the_demo_reports_where_the_dataset_stands_whichever_run_imported_it(db, ls) -> None:
    """A scheduled import may beat the demo's own run to the dataset: the report says so."""
    from include.demo.report import import_report

    dataset_id = make_dataset(db, 40, name="demo-report")
    client = ls.client()
    run_ls_import(db, client, RunRef("ls_import", "scheduled__1"), ImportValues(dataset_id=dataset_id, limit=25))
    run_ls_import(db, client, RunRef("ls_import", "demo"), ImportValues(dataset_id=dataset_id))
    run_ls_import(db, client, RunRef("ls_import", "demo-again"), ImportValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        line = import_report(s, dataset_id, "demo-again")
    assert line == (
        "dataset 'demo-report': 40 of 40 items are tasks in Label Studio "
        "(imported 25 by run scheduled__1, 15 by run demo)"
    )


def test_limit_and_progress(db, ls) -> None:
    dataset_id = make_dataset(db, 250)
    result = run_ls_import(
        db, ls.client(), RunRef("ls_import", "lim"), ImportValues(dataset_id=dataset_id, limit=120, batch_size=100)
    )
    assert result["imported"] == 120 and result["datasets"][0]["remaining"] == 130
    with session_scope(db) as s:
        job = s.scalar(select(Job))
        assert job.counts["imported"] == 120 and job.counts["total"] == 120


def test_crash_between_label_studio_and_db_write_then_rerun(db, ls, monkeypatch) -> None:
    dataset_id = make_dataset(db, 500)
    client = ls.client()
    real_record = ls_import_pipeline.record_imported
    calls = {"n": 0}

    def crash_on_second_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")  # after Label Studio created batch 2
        return real_record(*args, **kwargs)

    monkeypatch.setattr(ls_import_pipeline, "record_imported", crash_on_second_batch)
    with pytest.raises(RuntimeError, match="worker killed"):
        run_ls_import(db, client, RunRef("ls_import", "crash"), ImportValues(dataset_id=dataset_id, batch_size=200))
    project_id = project_of(db, dataset_id)
    in_ls = ls_task_count(client, project_id)
    assert len(db_tasks(db, dataset_id)) == 200  # only the first batch was recorded
    assert in_ls > 200  # but Label Studio got more (the write runs beside the next POST)
    with session_scope(db) as s:
        assert s.scalar(select(Job.status).where(Job.run_id == "crash")) == JobStatus.FAILED

    monkeypatch.setattr(ls_import_pipeline, "record_imported", real_record)
    result = run_ls_import(
        db, client, RunRef("ls_import", "rerun"), ImportValues(dataset_id=dataset_id, batch_size=200)
    )
    assert result["recovered"] == in_ls - 200 and result["imported"] == 500 - in_ls
    assert ls_task_count(client, project_id) == 500
    tasks = db_tasks(db, dataset_id)
    assert len(tasks) == 500 and len({t.ls_task_id for t in tasks}) == 500


def test_lost_response_after_label_studio_accepted_the_batch(db, ls) -> None:
    """The import POST reaches Label Studio but its answer never comes back."""
    dataset_id = make_dataset(db, 300)
    with FaultyProxy(ls.url) as proxy:
        client = LabelStudioClient(proxy.url, ls.token, retries=1, backoff=0.01)
        posts = {"n": 0}

        def drop_second_import(method: str, path: str) -> bool:
            if method == "POST" and path.endswith("/import?return_task_ids=true"):
                posts["n"] += 1
                return posts["n"] == 2
            return False

        proxy.drop_after_forward = drop_second_import
        with pytest.raises(LabelStudioError):
            run_ls_import(db, client, RunRef("ls_import", "lost"), ImportValues(dataset_id=dataset_id, batch_size=100))
        project_id = project_of(db, dataset_id)
        # The failed run already adopted the batch Label Studio created.
        assert len(db_tasks(db, dataset_id)) == 200
        proxy.drop_after_forward = lambda method, path: False
        result = run_ls_import(
            db, client, RunRef("ls_import", "after-lost"), ImportValues(dataset_id=dataset_id, batch_size=100)
        )
    assert result["imported"] == 100
    assert ls_task_count(ls.client(), project_id) == 300
    assert len({t.ls_task_id for t in db_tasks(db, dataset_id)}) == 300


@pytest.fixture
def private_ls(label_studio, tmp_path):
    """A second, throwaway Label Studio server this test may stop and start."""
    from include.runtime.embedded_pg import free_port
    from include.runtime.labelstudio_server import LabelStudioServer

    shutil.copytree(label_studio.server.data_dir, tmp_path / "ls", ignore=shutil.ignore_patterns("*.log", "media"))
    server = LabelStudioServer(tmp_path / "ls", free_port(), admin_email="admin@example.com")
    server.start()
    yield server
    server.stop()


def test_label_studio_stopped_mid_run(db, private_ls, monkeypatch) -> None:
    dataset_id = make_dataset(db, 600)
    token = private_ls.mint_token()
    client = LabelStudioClient(private_ls.url, token, retries=1, backoff=0.01, timeout=20)
    real_record = ls_import_pipeline.record_imported

    def stop_after_first_batch(*args, **kwargs):
        written = real_record(*args, **kwargs)
        private_ls.stop()
        return written

    monkeypatch.setattr(ls_import_pipeline, "record_imported", stop_after_first_batch)
    with pytest.raises(LabelStudioError) as err:
        run_ls_import(db, client, RunRef("ls_import", "ls-down"), ImportValues(dataset_id=dataset_id, batch_size=200))
    assert private_ls.url in str(err.value)
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == "ls-down"))
        assert job.status == JobStatus.FAILED
        assert private_ls.url in job.message
    assert len(db_tasks(db, dataset_id)) == 200

    monkeypatch.setattr(ls_import_pipeline, "record_imported", real_record)
    private_ls.start()
    client = LabelStudioClient(private_ls.url, token)
    result = run_ls_import(
        db, client, RunRef("ls_import", "ls-up"), ImportValues(dataset_id=dataset_id, batch_size=200)
    )
    assert result["imported"] == 400
    project_id = project_of(db, dataset_id)
    assert ls_task_count(client, project_id) == 600
    assert len({t.ls_task_id for t in db_tasks(db, dataset_id)}) == 600


def test_bad_token_fails_the_job_with_a_clear_message(db, ls) -> None:
    dataset_id = make_dataset(db, 5)
    client = LabelStudioClient(ls.url, "not-a-valid-token-0000", retries=0)
    with pytest.raises(LabelStudioError):
        run_ls_import(db, client, RunRef("ls_import", "bad-token"), ImportValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        job = s.scalar(select(Job))
        assert job.status == JobStatus.FAILED
        assert "LS_API_TOKEN" in job.message and ls.url in job.message
        assert s.scalar(select(func.count(Task.id))) == 0


def test_existing_project_is_validated(db, ls) -> None:
    client = ls.client()
    wrong = client.create_project("wrong labels", build_label_config(["Yes", "No"]))
    right = client.create_project("right labels", build_label_config(["OK", "NG"]))
    dataset_id = make_dataset(db, 10)
    with pytest.raises(LabelStudioConfigError, match=r"lacks the labels"):
        run_ls_import(
            db,
            client,
            RunRef("ls_import", "wrong"),
            ImportValues(dataset_id=dataset_id),
            default_project_id=wrong["id"],
        )
    run_ls_import(
        db, client, RunRef("ls_import", "right"), ImportValues(dataset_id=dataset_id), default_project_id=right["id"]
    )
    assert project_of(db, dataset_id) == right["id"]
    assert ls_task_count(client, right["id"]) == 10


def test_statements_per_batch_are_constant(db, ls) -> None:
    """SQL round trips grow with batches, not with rows."""
    from include.services.ls_identity import check_instance

    client = ls.client()
    with session_scope(db) as s:
        check_instance(s, client)  # first contact records the instance once: not per batch
    counts = []
    for n in (200, 1000):
        dataset_id = make_dataset(db, n)
        statements = {"n": 0}

        def count(*args: object, statements: dict[str, int] = statements) -> None:
            statements["n"] += 1

        engine = get_engine(db)
        event.listen(engine, "before_cursor_execute", count)
        try:
            run_ls_import(
                db, client, RunRef("ls_import", f"count-{n}"), ImportValues(dataset_id=dataset_id, batch_size=n)
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        counts.append(statements["n"])
    assert counts[0] == counts[1], counts  # one batch each: same statements for 200 and 1000 rows


# -- export ----------------------------------------------------------------------------------
@pytest.fixture
def labeled_setup(db, ls):
    """A dataset of 6 imported tasks and two annotators known to both sides by email."""
    suffix = uuid.uuid4().hex[:6]
    emails = [f"ann1-{suffix}@example.com", f"ann2-{suffix}@example.com"]
    with session_scope(db) as s:
        users = [create_user(s, f"ann{i}-{suffix}", e, "password-123", Role.ANNOTATOR) for i, e in enumerate(emails, 1)]
        user_ids = [u.id for u in users]
    dataset_id = make_dataset(db, 6)
    client = ls.client()
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
    ls_ids = [t.ls_task_id for t in db_tasks(db, dataset_id)]
    ls_users = [ls_user(client, e) for e in emails]
    return {"client": client, "dataset_id": dataset_id, "ls_ids": ls_ids, "ls_users": ls_users, "user_ids": user_ids}


def test_export_agreement_conflict_and_attribution(db, labeled_setup) -> None:
    c, ls_ids, (u1, u2) = labeled_setup["client"], labeled_setup["ls_ids"], labeled_setup["ls_users"]
    c.create_annotation(ls_ids[0], choice_result("OK"), completed_by=u1)
    c.create_annotation(ls_ids[0], choice_result("OK"), completed_by=u2)  # agree
    c.create_annotation(ls_ids[1], choice_result("OK"), completed_by=u1)
    c.create_annotation(ls_ids[1], choice_result("NG"), completed_by=u2)  # disagree
    c.create_annotation(ls_ids[2], choice_result("NG"), completed_by=u2)  # single
    result = run_ls_export(db, c, RunRef("ls_export", "e1"), ExportValues(dataset_id=labeled_setup["dataset_id"]))
    assert (result["labeled"], result["conflicts"]) == (2, 1)
    tasks = {t.ls_task_id: t for t in db_tasks(db, labeled_setup["dataset_id"])}
    assert (tasks[ls_ids[0]].status, tasks[ls_ids[0]].label) == (TaskStatus.LABELED, "OK")
    assert (tasks[ls_ids[1]].status, tasks[ls_ids[1]].label) == (TaskStatus.CONFLICT, None)
    assert (tasks[ls_ids[2]].status, tasks[ls_ids[2]].label) == (TaskStatus.LABELED, "NG")
    assert tasks[ls_ids[3]].status == TaskStatus.IMPORTED
    with session_scope(db) as s:
        rows = s.execute(select(Annotation.annotator_id, Annotation.label).order_by(Annotation.ls_annotation_id)).all()
        job = s.scalar(select(Job).where(Job.run_id == "e1"))
    assert [r.annotator_id for r in rows] == [labeled_setup["user_ids"][i] for i in (0, 1, 0, 1, 1)]
    assert job.message == "exported 2 labeled tasks (1 in conflict)"


def test_export_reflects_updated_and_deleted_annotations(db, labeled_setup) -> None:
    c, ls_ids, (u1, u2) = labeled_setup["client"], labeled_setup["ls_ids"], labeled_setup["ls_users"]
    a = c.create_annotation(ls_ids[0], choice_result("OK"), completed_by=u1)
    b = c.create_annotation(ls_ids[1], choice_result("OK"), completed_by=u1)
    conflict_a = c.create_annotation(ls_ids[2], choice_result("OK"), completed_by=u1)
    c.create_annotation(ls_ids[2], choice_result("NG"), completed_by=u2)
    run_ls_export(db, c, RunRef(), ExportValues(dataset_id=labeled_setup["dataset_id"]))

    c.update_annotation(a["id"], choice_result("NG"))  # relabel
    c.delete_annotation(b["id"])  # unlabel
    c.update_annotation(conflict_a["id"], choice_result("NG"))  # conflict settled by agreement
    result = run_ls_export(db, c, RunRef(), ExportValues(dataset_id=labeled_setup["dataset_id"]))
    assert result["annotations_deleted"] == 1 and result["unlabeled"] == 1
    tasks = {t.ls_task_id: t for t in db_tasks(db, labeled_setup["dataset_id"])}
    assert (tasks[ls_ids[0]].status, tasks[ls_ids[0]].label) == (TaskStatus.LABELED, "NG")
    assert (tasks[ls_ids[1]].status, tasks[ls_ids[1]].label) == (TaskStatus.IMPORTED, None)
    assert (tasks[ls_ids[2]].status, tasks[ls_ids[2]].label) == (TaskStatus.LABELED, "NG")
    with session_scope(db) as s:
        assert s.scalar(select(func.count()).where(Annotation.ls_annotation_id == b["id"])) == 0


def test_ground_truth_resolves_a_conflict(db, labeled_setup) -> None:
    c, ls_ids, (u1, u2) = labeled_setup["client"], labeled_setup["ls_ids"], labeled_setup["ls_users"]
    c.create_annotation(ls_ids[0], choice_result("OK"), completed_by=u1)
    c.create_annotation(ls_ids[0], choice_result("NG"), completed_by=u2)
    c.create_annotation(ls_ids[0], choice_result("NG"), ground_truth=True)
    run_ls_export(db, c, RunRef(), ExportValues(dataset_id=labeled_setup["dataset_id"]))
    task = next(t for t in db_tasks(db, labeled_setup["dataset_id"]) if t.ls_task_id == ls_ids[0])
    assert (task.status, task.label) == (TaskStatus.LABELED, "NG")


def test_tasks_deleted_in_label_studio_are_marked(db, labeled_setup) -> None:
    c, ls_ids = labeled_setup["client"], labeled_setup["ls_ids"]
    project_id = project_of(db, labeled_setup["dataset_id"])
    c.delete_tasks(project_id, ls_ids[:2])
    result = run_ls_export(db, c, RunRef(), ExportValues(dataset_id=labeled_setup["dataset_id"]))
    assert result["tasks_deleted"] == 2
    statuses = {t.ls_task_id: t.status for t in db_tasks(db, labeled_setup["dataset_id"])}
    assert [statuses[i] for i in ls_ids] == [TaskStatus.DELETED] * 2 + [TaskStatus.IMPORTED] * 4


def test_export_is_incremental(db, labeled_setup, ls) -> None:
    """After the first sync, a run reads only changed tasks: no full export, no per-task GETs."""
    c, ls_ids, (u1, _) = labeled_setup["client"], labeled_setup["ls_ids"], labeled_setup["ls_users"]
    c.create_annotation(ls_ids[0], choice_result("OK"), completed_by=u1)
    run_ls_export(db, c, RunRef(), ExportValues(dataset_id=labeled_setup["dataset_id"]))
    with session_scope(db) as s:
        watermark = s.get(LsProject, project_of(db, labeled_setup["dataset_id"])).export_watermark
    assert watermark is not None
    c.create_annotation(ls_ids[5], choice_result("NG"), completed_by=u1)
    with FaultyProxy(ls.url) as proxy:
        client = LabelStudioClient(proxy.url, ls.token)
        result = run_ls_export(db, client, RunRef(), ExportValues(dataset_id=labeled_setup["dataset_id"]))
    assert result["labeled"] == 1
    paths = [p for _, p in proxy.requests]
    assert not any("/export" in p for p in paths)
    assert not any(p.startswith("/api/tasks/") for p in paths)  # never one request per task
    assert sum(p.startswith("/api/tasks?") for p in paths) <= 2


# -- predictions and deletion ----------------------------------------------------------------
def test_predictions_bulk_score_is_confidence_and_model_version_set(db, labeled_setup) -> None:
    c, ls_ids = labeled_setup["client"], labeled_setup["ls_ids"]
    project_id = project_of(db, labeled_setup["dataset_id"])
    preds = [Prediction(i, "OK" if n % 2 else "NG", 0.5 + n / 20) for n, i in enumerate(ls_ids)]
    assert push_predictions(c, project_id, preds, "clf-v1") == len(ls_ids)
    assert push_predictions(c, project_id, preds, "clf-v2") == len(ls_ids)  # replaces, not appends
    assert c.get_project(project_id)["model_version"] == "clf-v2"
    tasks = {t["id"]: t for t in c.iter_tasks(project_id, fields="all")}
    for n, ls_id in enumerate(ls_ids):
        (pred,) = tasks[ls_id]["predictions"]
        assert pred["model_version"] == "clf-v2"
        assert pred["score"] == pytest.approx(0.5 + n / 20)


def test_delete_dataset_removes_its_label_studio_project(db, labeled_setup) -> None:
    c = labeled_setup["client"]
    project_id = project_of(db, labeled_setup["dataset_id"])
    with session_scope(db) as s:
        removed = delete_dataset(s, c, s.get(Dataset, labeled_setup["dataset_id"]))
    assert removed == 6
    from include.labelstudio.client import LabelStudioNotFound

    with pytest.raises(LabelStudioNotFound):
        c.get_project(project_id)
    with session_scope(db) as s:
        assert s.scalar(select(func.count(Task.id))) == 0


def test_delete_in_a_shared_project_removes_only_that_datasets_tasks(db, ls) -> None:
    client = ls.client()
    shared = client.create_project("shared project", build_label_config(["OK", "NG"]))
    keep = make_dataset(db, 4)
    drop = make_dataset(db, 3)
    for ds in (keep, drop):
        run_ls_import(db, client, RunRef(), ImportValues(dataset_id=ds), default_project_id=shared["id"])
    assert ls_task_count(client, shared["id"]) == 7
    with session_scope(db) as s:
        delete_dataset(s, client, s.get(Dataset, drop))
    assert ls_task_count(client, shared["id"]) == 4
    with session_scope(db) as s:
        dataset = s.get(Dataset, keep)
        one_item = db_tasks(db, keep)[0].item_id
        assert delete_items(s, client, dataset, [one_item]) == 1
    assert ls_task_count(client, shared["id"]) == 3
    with session_scope(db) as s:
        assert s.get(Dataset, keep).item_count == 3


def test_crash_right_after_the_project_was_created_reuses_it(db, ls, monkeypatch) -> None:
    from include.services import ls_projects

    dataset_id = make_dataset(db, 30)
    client = ls.client()
    real_remember = ls_projects._remember

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed before the project id was saved")

    monkeypatch.setattr(ls_projects, "_remember", crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        dataset = s.get(Dataset, dataset_id)
        assert dataset.ls_project_id is None and dataset.ls_project_requested_at is not None
        title = ls_projects.project_title(dataset)

    def projects_titled() -> list[dict]:
        listed = client.request("GET", "/api/projects", params={"title": title})["results"]
        return [p for p in listed if p["title"] == title]

    made = projects_titled()
    assert len(made) == 1

    monkeypatch.setattr(ls_projects, "_remember", real_remember)
    result = run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
    assert result["imported"] == 30
    assert project_of(db, dataset_id) == made[0]["id"]  # found again, not created twice
    assert len(projects_titled()) == 1


def test_a_policy_attached_after_import_rewrites_label_studios_copy(db, ls, monkeypatch) -> None:
    """Label Studio held the originals; after de-identification the next import rewrites each
    task's data there, keeping its annotations."""
    from cryptography.fernet import Fernet

    from include.config import load_settings
    from include.pipelines.catalog import AnyDatasetValues
    from include.pipelines.deidentify import run_deidentify
    from include.services import pii, privacy

    key = Fernet.generate_key()
    monkeypatch.setenv("PII_KEY", key.decode())
    with session_scope(db) as s:
        dataset = create_dataset(s, "late-policy", labels=["OK", "NG"], privacy=privacy.Decision.none_needed(
            "assumed to hold no personal data"))  # fmt: skip
        add_items(s, dataset, [(f"call me on 1381234567{i}, the screen is broken", {}) for i in range(3)])
        dataset_id = dataset.id
    client = ls.client()
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
    tasks = db_tasks(db, dataset_id)
    client.create_annotation(tasks[0].ls_task_id, choice_result("NG"))
    with session_scope(db) as s:
        policy = pii.save_policy(s, "phones later", {"PHONE": "placeholder"})
        privacy.decide(s, s.get_one(Dataset, dataset_id), privacy.Decision(policy.id), None, key)
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    result = run_ls_import(db, client, RunRef(run_id="rewrite"), ImportValues(dataset_id=dataset_id))
    assert result["imported"] == 0 and result["datasets"][0]["rewritten"] == 3
    for task in tasks:
        data = client.request("GET", f"/api/tasks/{task.ls_task_id}/")["data"]
        assert data["text"] == "call me on <PHONE_1>, the screen is broken" and "13812345" not in str(data)
    annotated = client.request("GET", f"/api/tasks/{tasks[0].ls_task_id}/")
    assert annotated["total_annotations"] == 1  # the label stays
    assert not any(t.ls_data_stale for t in db_tasks(db, dataset_id))
    with session_scope(db) as s:
        assert "rewrote 3 tasks in Label Studio" in s.scalar(select(Job.message).where(Job.run_id == "rewrite"))
    again = run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
    assert again["datasets"][0]["rewritten"] == 0


def test_two_exports_of_one_project_take_turns(db, labeled_setup, monkeypatch) -> None:
    """The hourly export, the nightly loop's and the webhooks' may start at once: with a
    per-project lock the second waits for the first, so no older page lands after a newer one."""
    import threading
    import time

    from include.pipelines import ls_export as export_pipeline

    client, ls_ids, ls_users = labeled_setup["client"], labeled_setup["ls_ids"], labeled_setup["ls_users"]
    client.create_annotation(ls_ids[0], choice_result("OK"), completed_by=ls_users[0])
    project_id = project_of(db, labeled_setup["dataset_id"])
    spans: list[tuple[float, float]] = []
    real_apply = export_pipeline.apply_ls_tasks

    def slow_apply(*args, **kwargs):
        start = time.monotonic()
        time.sleep(1.0)  # a page being applied while the other export starts
        try:
            return real_apply(*args, **kwargs)
        finally:
            spans.append((start, time.monotonic()))

    monkeypatch.setattr(export_pipeline, "apply_ls_tasks", slow_apply)
    runs = [
        threading.Thread(target=export_pipeline.export_project, args=(db, client, project_id), kwargs={"full": True})
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert len(spans) == 2
    first, second = sorted(spans)
    assert second[0] >= first[1]  # one after the other, never interleaved
    with session_scope(db) as s:
        ours = select(Task.label).where(Task.ls_task_id == ls_ids[0], Task.ls_project_id == project_id)
        assert s.scalar(ours) == "OK"


def test_an_older_page_never_deletes_a_newer_annotation(db, labeled_setup) -> None:
    """A page read before another export applied a newer one (a webhook's export, a retry) is
    stale for its tasks: applying it late must not remove the annotation the newer page added."""
    from include.services.ls_export import apply_ls_tasks, platform_users_by_email

    client, ls_ids, (u1, u2) = labeled_setup["client"], labeled_setup["ls_ids"], labeled_setup["ls_users"]
    dataset_id = labeled_setup["dataset_id"]
    project_id = project_of(db, dataset_id)
    client.create_annotation(ls_ids[0], choice_result("OK"), completed_by=u1)
    old_page = list(client.tasks_updated_since(project_id, None, filters=[], page_size=100))
    client.create_annotation(ls_ids[0], choice_result("NG"), completed_by=u2)  # newer: now a conflict
    run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id))
    ls_users = {int(u["id"]): str(u.get("email") or "") for u in client.list_users()}
    with session_scope(db) as s:
        late = apply_ls_tasks(s, project_id, old_page, ls_users=ls_users, users_by_email=platform_users_by_email(s))
    assert late.stale_tasks >= 1 and late.annotations_deleted == 0
    task = {t.ls_task_id: t for t in db_tasks(db, dataset_id)}[ls_ids[0]]
    assert task.status == TaskStatus.CONFLICT
    with session_scope(db) as s:
        assert s.scalar(select(func.count()).select_from(Annotation).where(Annotation.task_id == task.id)) == 2


def test_deletions_are_seen_in_a_project_with_hand_made_tasks(db, labeled_setup) -> None:
    """A task someone made in Label Studio's own UI made the counts look complete while one of
    the platform's tasks was gone: the count check now expects the hand-made ones."""
    c, ls_ids = labeled_setup["client"], labeled_setup["ls_ids"]
    dataset_id = labeled_setup["dataset_id"]
    project_id = project_of(db, dataset_id)
    c.import_tasks(project_id, [{"data": {"text": "made by hand in Label Studio"}}])
    first = run_ls_export(db, c, RunRef(), ExportValues(dataset_id=dataset_id))
    assert first["tasks_deleted"] == 0
    c.delete_tasks(project_id, ls_ids[:1])  # Label Studio: 6 tasks again, one of them not ours
    second = run_ls_export(db, c, RunRef(), ExportValues(dataset_id=dataset_id))
    assert second["tasks_deleted"] == 1
    assert {t.ls_task_id for t in db_tasks(db, dataset_id) if t.status == TaskStatus.DELETED} == {ls_ids[0]}
    assert run_ls_export(db, c, RunRef(), ExportValues(dataset_id=dataset_id))["tasks_deleted"] == 0
