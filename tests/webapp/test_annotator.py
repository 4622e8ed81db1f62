"""Annotator pages against the real Label Studio: own tasks only, one-action labeling, failures."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from include.db.models import Annotation, AnnotationSource, Task, TaskStatus, User
from include.db.session import session_scope
from include.labelstudio.client import LabelStudioClient
from include.labelstudio.label_config import label_of
from include.pipelines.catalog import ExportValues, ImportValues
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.services.assignment import auto_assign
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC
from include.workers.label_dispatcher import deliver_due
from tests.webapp.conftest import login

pytestmark = pytest.mark.labelstudio


@pytest.fixture
def imported(db, ls, users):
    """Six tasks in Label Studio: three assigned to alice (priority 300, 200, 100), one to bob."""
    with session_scope(db) as s:
        ds = create_dataset(s, "annotate", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, ds, [(f"note {i}: the kettle {'leaks' if i % 2 else 'works'}", {}) for i in range(6)])
        dataset_id = ds.id
    run_ls_import(db, ls.client(), RunRef(), ImportValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        tasks = s.scalars(select(Task).where(Task.dataset_id == dataset_id).order_by(Task.id)).all()
        for task, prio in zip(tasks, (300, 200, 100, 50, 0, 0), strict=True):
            task.priority = prio
        s.flush()
        auto_assign(s, dataset_id, s.get(User, users["alice"]), 3)
        auto_assign(s, dataset_id, s.get(User, users["bob"]), 1)
        ids = [t.id for t in tasks]
    return {"dataset_id": dataset_id, "tasks": ids}


def test_my_tasks_shows_only_mine_in_priority_order(client, imported) -> None:
    login(client, "alice")
    page = client.get("/me/tasks").get_data(as_text=True)
    mine = imported["tasks"][:3]
    assert all(f'data-task="{t}"' in page for t in mine)
    assert f'data-task="{imported["tasks"][3]}"' not in page  # bob's
    assert [page.index(f'data-task="{t}"') for t in mine] == sorted(page.index(f'data-task="{t}"') for t in mine)
    assert 'data-stat="pending"><span class="stat-value">3<' in page


def test_labeling_goes_to_label_studio_attributed_and_to_the_shadow_index(db, ls, ls_app, imported, users) -> None:
    with ls_app.test_client() as client:
        login(client, "alice")
        first, second = imported["tasks"][0], imported["tasks"][1]
        assert client.get("/me/next").headers["Location"] == f"/me/tasks/{first}"
        page = client.get(f"/me/tasks/{first}").get_data(as_text=True)
        assert "<kbd>1</kbd> OK" in page and "Open in Label Studio" in page
        response = client.post(f"/me/tasks/{first}/label", data={"label": "NG"})
        assert response.headers["Location"] == f"/me/tasks/{second}"  # straight to the next task
        client.post(f"/me/tasks/{second}/label", data={"label": "OK"})
        stats = client.get("/me/tasks").get_data(as_text=True)
        assert 'data-stat="labeled"><span class="stat-value">2<' in stats
        assert 'data-stat="today"><span class="stat-value">2<' in stats
        assert "2 labels of yours are saved here and on their way to Label Studio" in stats
        assert deliver_due(db, ls.client()).delivered == 2
        assert "on their way to Label Studio" not in client.get("/me/tasks").get_data(as_text=True)
    with session_scope(db) as s:
        task = s.get(Task, first)
        ann = s.scalar(select(Annotation).where(Annotation.task_id == first))
        alice_ls_id = s.get(User, users["alice"]).ls_user_id
    assert (task.status, task.label) == (TaskStatus.LABELED, "NG")
    assert ann.source == AnnotationSource.WEBAPP and ann.annotator_id == users["alice"]
    ls_task = ls.client().request("GET", f"/api/tasks/{task.ls_task_id}")
    (ls_annotation,) = ls_task["annotations"]
    assert ls_annotation["id"] == ann.ls_annotation_id and label_of(ls_annotation["result"]) == "NG"
    completed_by = ls_annotation["completed_by"]
    assert (completed_by["id"] if isinstance(completed_by, dict) else completed_by) == alice_ls_id
    users_in_ls = {u["id"]: u["email"] for u in ls.client().list_users()}
    assert users_in_ls[alice_ls_id] == "alice@labelops.test"


def test_relabeling_updates_the_same_annotation(db, ls, ls_app, imported) -> None:
    task_id, other_id = imported["tasks"][0], imported["tasks"][1]
    with ls_app.test_client() as client:
        login(client, "alice")
        client.post(f"/me/tasks/{task_id}/label", data={"label": "OK"})
        deliver_due(db, ls.client())  # in Label Studio as OK
        client.post(f"/me/tasks/{task_id}/label", data={"label": "NG"})  # an update
        client.post(f"/me/tasks/{task_id}/label", data={"label": "NG"})  # the same again: nothing to do
        client.post(f"/me/tasks/{other_id}/label", data={"label": "OK"})
        client.post(f"/me/tasks/{other_id}/label", data={"label": "NG"})  # changed before delivery
        assert deliver_due(db, ls.client()).delivered == 2
    for tid in (task_id, other_id):
        with session_scope(db) as s:
            anns = s.scalars(select(Annotation).where(Annotation.task_id == tid)).all()
            task = s.get(Task, tid)
        assert len(anns) == 1 and anns[0].label == "NG" and task.label == "NG"
        (in_ls,) = ls.client().request("GET", f"/api/tasks/{task.ls_task_id}")["annotations"]
        assert in_ls["id"] == anns[0].ls_annotation_id and label_of(in_ls["result"]) == "NG"


def test_label_studio_down_keeps_labels_until_it_is_back(db, ls, imported, users) -> None:
    from include.db.models import LabelOutbox, OutboxStatus
    from include.runtime.embedded_pg import free_port
    from tests.webapp.conftest import make_app

    down = f"http://127.0.0.1:{free_port()}"
    app = make_app(db, LS_URL=down, LS_API_TOKEN=ls.token)
    task_id = imported["tasks"][0]
    with app.test_client() as client:
        login(client, "alice")
        page = client.post(f"/me/tasks/{task_id}/label", data={"label": "OK"}, follow_redirects=True).get_data(
            as_text=True
        )
        assert "Saved “OK”." in page and "1 label of yours is saved here and on its way to Label Studio" in page
        attempt = deliver_due(db, LabelStudioClient(down, ls.token, retries=0))
        assert (attempt.delivered, attempt.failed) == (0, 1)
        page = client.get("/me/tasks").get_data(as_text=True)
        assert "Label Studio is not answering right now, so they will be sent as soon as it is back" in page
    with session_scope(db) as s:
        task = s.get(Task, task_id)
        assert (task.status, task.label) == (TaskStatus.LABELED, "OK")
        entry = s.scalar(select(LabelOutbox))
        assert entry.status == OutboxStatus.PENDING and "cannot reach Label Studio" in entry.last_error
        s.execute(LabelOutbox.__table__.update().values(next_attempt_at=func.now()))  # no waiting in tests
    assert ls.client().request("GET", f"/api/tasks/{task.ls_task_id}")["annotations"] == []
    assert deliver_due(db, ls.client()).delivered == 1  # back: the outbox drains
    (in_ls,) = ls.client().request("GET", f"/api/tasks/{task.ls_task_id}")["annotations"]
    assert label_of(in_ls["result"]) == "OK"


def test_a_label_outside_the_set_is_refused(ls_app, imported) -> None:
    with ls_app.test_client() as client:
        login(client, "alice")
        page = client.post(f"/me/tasks/{imported['tasks'][0]}/label", data={"label": "MAYBE"}, follow_redirects=True)
    assert "choose one of: OK, NG" in page.get_data(as_text=True)


def test_disagreement_becomes_a_conflict_the_admin_resolves(db, ls, ls_app, imported, users) -> None:
    task_id = imported["tasks"][0]
    with session_scope(db) as s:
        ls_task_id = s.get(Task, task_id).ls_task_id
    # bob labels the same task in Label Studio's own UI (through its API), differently.
    client_ls: LabelStudioClient = ls.client()
    from include.labelstudio.label_config import choice_result
    from include.pipelines.ls_export import run_ls_export

    bob_ls = client_ls.create_user("bob@labelops.test", "bob-ls")["id"]
    client_ls.create_annotation(ls_task_id, choice_result("OK"), completed_by=bob_ls)
    with ls_app.test_client() as client:
        login(client, "alice")
        page = client.post(f"/me/tasks/{task_id}/label", data={"label": "NG"}, follow_redirects=True).get_data(
            as_text=True
        )
        assert "Saved “NG”." in page
        run_ls_export(db, client_ls, RunRef(), ExportValues(dataset_id=imported["dataset_id"]))
        with session_scope(db) as s:
            assert s.get(Task, task_id).status == TaskStatus.CONFLICT
        login(client, "admin")
        page = client.get(f"/admin/tasks/{task_id}/resolve").get_data(as_text=True)
        assert "NG</strong> by alice" in page and "OK</strong> by bob" in page
        page = client.post(f"/admin/tasks/{task_id}/resolve", data={"label": "NG"}, follow_redirects=True).get_data(
            as_text=True
        )
        assert f"Task {task_id} resolved as NG." in page
    run_ls_export(db, client_ls, RunRef(), ExportValues(dataset_id=imported["dataset_id"]))  # before delivery: still NG
    with session_scope(db) as s:
        assert (s.get(Task, task_id).status, s.get(Task, task_id).label) == (TaskStatus.LABELED, "NG")
    assert deliver_due(db, client_ls).delivered == 2  # alice's label and the admin's decision
    run_ls_export(db, client_ls, RunRef(), ExportValues(dataset_id=imported["dataset_id"]))  # Label Studio agrees
    with session_scope(db) as s:
        task = s.get(Task, task_id)
        assert (task.status, task.label) == (TaskStatus.LABELED, "NG")


def test_admin_deletes_a_dataset_with_its_label_studio_tasks(db, ls, ls_app, imported) -> None:
    from include.db.models import Dataset

    with session_scope(db) as s:
        project_id = s.get(Dataset, imported["dataset_id"]).ls_project_id
    with ls_app.test_client() as client:
        login(client, "admin")
        page = client.post(
            f"/admin/datasets/{imported['dataset_id']}/delete", data={"confirm_name": "wrong"}, follow_redirects=True
        ).get_data(as_text=True)
        assert "Type the exact name of the dataset to delete it." in page
        page = client.post(
            f"/admin/datasets/{imported['dataset_id']}/delete", data={"confirm_name": "annotate"}, follow_redirects=True
        ).get_data(as_text=True)
        assert "Deleted dataset “annotate” and 6 Label Studio tasks." in page
    from include.labelstudio.client import LabelStudioNotFound

    with pytest.raises(LabelStudioNotFound):
        ls.client().get_project(project_id)


def test_the_time_to_label_reaches_label_studio_as_its_lead_time(db, ls, ls_app, imported) -> None:
    """The page measures seconds from opening the task to the press; the API client may send its
    own. Both are kept with the annotation and sent as Label Studio's ``lead_time``, a relabel too."""
    first, second = imported["tasks"][0], imported["tasks"][1]
    with ls_app.test_client() as client:
        login(client, "alice")
        page = client.get(f"/me/tasks/{first}").get_data(as_text=True)
        assert 'name="lead_time"' in page
        client.post(f"/me/tasks/{first}/label", data={"label": "NG", "lead_time": "4.25"})
        refused = client.post(f"/me/tasks/{second}/label", data={"label": "OK", "lead_time": "-1"})
        assert refused.status_code == 400
        client.post(f"/me/tasks/{second}/label", data={"label": "OK"})  # not measured: none sent
        assert deliver_due(db, ls.client()).delivered == 2
        client.post(f"/me/tasks/{first}/label", data={"label": "OK", "lead_time": "9.5"})  # relabel
        assert deliver_due(db, ls.client()).delivered == 1
    with session_scope(db) as s:
        rows = {
            a.task_id: (a.lead_time, a.ls_annotation_id)
            for a in s.scalars(select(Annotation).where(Annotation.task_id.in_([first, second])))
        }
        ls_ids = {t.id: t.ls_task_id for t in s.scalars(select(Task).where(Task.id.in_([first, second])))}
    assert rows[first][0] == 9.5 and rows[second][0] is None
    (relabeled,) = ls.client().request("GET", f"/api/tasks/{ls_ids[first]}")["annotations"]
    assert relabeled["lead_time"] == pytest.approx(9.5) and label_of(relabeled["result"]) == "OK"
    (unmeasured,) = ls.client().request("GET", f"/api/tasks/{ls_ids[second]}")["annotations"]
    assert not unmeasured.get("lead_time")
