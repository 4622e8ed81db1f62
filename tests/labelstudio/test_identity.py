"""A new or reset Label Studio at the same address must not corrupt labels across datasets
(issue 23): it numbers projects and tasks from 1 again, so every sync path checks that the
instance and each project are the ones the platform's tasks live in, and stops otherwise."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from include.db.models import (
    Annotation,
    Dataset,
    Job,
    JobStatus,
    LabelOutbox,
    LsInstance,
    LsProject,
    Role,
    Task,
    TaskStatus,
    User,
)
from include.db.session import session_scope
from include.labelstudio.client import LabelStudioClient
from include.labelstudio.label_config import choice_result
from include.pipelines.catalog import ExportValues, ImportValues
from include.pipelines.ls_export import run_ls_export
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.services import labeling, ls_identity
from include.services.datasets import add_items, create_dataset
from include.services.ls_identity import LabelStudioChanged
from include.services.privacy import SYNTHETIC
from include.services.users import create_user
from include.workers.label_dispatcher import deliver_due

pytestmark = pytest.mark.labelstudio


class Instance:
    """A Label Studio made from the pristine template (no projects): what a wiped folder or a new
    server at the same address looks like."""

    def __init__(self, data_dir: Path, port: int) -> None:
        from include.runtime.labelstudio_server import LabelStudioServer
        from tests.conftest import LS_TEMPLATE

        if (LS_TEMPLATE / "label_studio.sqlite3").exists():
            shutil.copytree(LS_TEMPLATE, data_dir, ignore=shutil.ignore_patterns("*.log", "media"))
        self.server = LabelStudioServer(
            data_dir, port, admin_email="admin@example.com", admin_password="admin-pass-123"
        )
        self.server.start()
        self.client = LabelStudioClient(self.server.url, self.server.mint_token())

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def instances(label_studio, tmp_path) -> Iterator[list[Instance]]:
    """Fresh instances, one after the other on the same port (so the same LS_URL)."""
    from include.runtime.embedded_pg import free_port

    port, made = free_port(), []

    def start() -> Instance:
        for old in made:
            old.stop()
        made.append(Instance(tmp_path / f"ls-{len(made)}", port))
        return made[-1]

    yield start  # type: ignore[misc]
    for instance in made:
        instance.stop()
    ls_identity.forget_checks()


def _dataset(db: str, name: str, n: int = 4) -> int:
    with session_scope(db) as s:
        dataset = create_dataset(s, name, labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, [(f"{name} text {i}", {}) for i in range(n)])
        return dataset.id


def test_a_reset_label_studio_at_the_same_address_stops_sync(db, instances) -> None:
    first = instances()
    a = _dataset(db, "alpha")
    run_ls_import(db, first.client, RunRef(), ImportValues(dataset_id=a))
    with session_scope(db) as s:
        a_tasks = s.scalars(select(Task).where(Task.dataset_id == a).order_by(Task.id)).all()
        a_project = int(s.get_one(Dataset, a).ls_project_id)
        assert s.get_one(LsProject, a_project).ls_created_at  # recorded at creation
        annotator = create_user(s, f"ann-{uuid.uuid4().hex[:6]}", f"ann-{uuid.uuid4().hex[:6]}@example.com",
                                "password-123", Role.ANNOTATOR)  # fmt: skip
        annotator_id = annotator.id
    first.client.create_annotation(a_tasks[0].ls_task_id, choice_result("NG"))
    run_ls_export(db, first.client, RunRef(), ExportValues(dataset_id=a))

    # The folder is wiped: a new Label Studio, the same address, its first project is 1 again.
    second = instances()
    ls_identity.forget_checks()
    b = _dataset(db, "beta")
    with pytest.raises(LabelStudioChanged, match=f"gave a new project the id {a_project}"):
        run_ls_import(db, second.client, RunRef(run_id="b-import"), ImportValues(dataset_id=b))
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == "b-import"))
        assert job.status == JobStatus.FAILED and "not the one that project lives in" in job.message
        assert s.scalars(select(Task).where(Task.dataset_id == b)).all() == []
        assert s.get_one(Dataset, b).ls_project_id is None  # nothing recorded against the wrong project

    # Its project 1 is beta's (created before the refusal): alpha's export refuses it.
    with pytest.raises(LabelStudioChanged, match=f"project {a_project} .* is not the project"):
        run_ls_export(db, second.client, RunRef(run_id="a-export"), ExportValues(dataset_id=a))
    with session_scope(db) as s:
        tasks = s.scalars(select(Task).where(Task.dataset_id == a).order_by(Task.id)).all()
        assert [t.status for t in tasks].count(TaskStatus.DELETED) == 0  # nothing marked deleted
        assert s.scalar(select(Annotation.label).where(Annotation.task_id == tasks[0].id)) == "NG"

    # A label pressed on the platform waits in the outbox, with why, instead of landing there.
    with session_scope(db) as s:
        task = s.get_one(Task, a_tasks[1].id)
        task.assigned_to, task.status = annotator_id, TaskStatus.ASSIGNED
    with session_scope(db) as s:
        labeling.submit_label(s, a_tasks[1].id, s.get_one(User, annotator_id), "OK")
    ls_identity.forget_checks()
    delivery = deliver_due(db, second.client)
    assert (delivery.delivered, delivery.failed) == (0, 1) and "is not the project" in delivery.error
    with session_scope(db) as s:
        (entry,) = s.scalars(select(LabelOutbox)).all()
        assert entry.status == "pending" and "is not the project" in entry.last_error
    projects = second.client.request("GET", "/api/projects")["results"]
    assert projects and all(p["total_annotations_number"] == 0 and p["task_number"] == 0 for p in projects)


def test_another_instance_is_refused_before_anything_is_written(db, ls) -> None:
    ls_identity.forget_checks()
    a = _dataset(db, "gamma")
    run_ls_import(db, ls.client(), RunRef(), ImportValues(dataset_id=a))
    with session_scope(db) as s:
        row = s.get_one(LsInstance, 1)
        assert row.url == ls.url and row.organization_created_at
        # as if the platform had first met another instance (its organization made at another time)
        s.execute(update(LsInstance).values(organization_created_at="2020-01-01T00:00:00.000000Z"))
    ls_identity.forget_checks()
    with pytest.raises(LabelStudioChanged, match="is not the instance this platform's tasks live in"):
        run_ls_import(db, ls.client(), RunRef(), ImportValues(dataset_id=_dataset(db, "delta")))
    with pytest.raises(LabelStudioChanged, match="created 2020-01-01"):
        run_ls_export(db, ls.client(), RunRef(), ExportValues(dataset_id=a))
