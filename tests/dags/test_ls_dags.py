"""ls_import and ls_export through dag.test() against the real Label Studio and PostgreSQL."""

from __future__ import annotations

import pytest
from airflow.utils.state import DagRunState
from sqlalchemy import func, select

from include.db.models import Job, JobStatus, Task, TaskStatus
from include.db.session import session_scope
from include.labelstudio.label_config import choice_result
from include.services.datasets import add_items, create_dataset

pytestmark = [pytest.mark.airflow, pytest.mark.labelstudio]


def test_import_then_export_dags(db, ls, run_dag) -> None:
    with session_scope(db) as s:
        dataset = create_dataset(s, "dag-run", labels=["OK", "NG"])
        add_items(s, dataset, [(f"dag text {i}", {}) for i in range(120)])
        dataset_id = dataset.id

    dr = run_dag("ls_import", {"dataset_id": dataset_id, "limit": 100, "batch_size": 100})
    assert dr.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        steps = {j.step: j for j in s.scalars(select(Job).where(Job.run_id == dr.run_id))}
        assert steps["deidentify"].status == JobStatus.SKIPPED  # no policy on this dataset
        job = steps["ls_import"]
        assert (job.status, job.message) == (JobStatus.SUCCESS, "imported 100 tasks")
        assert job.dag_id == "ls_import"
        ls_ids = s.scalars(select(Task.ls_task_id).order_by(Task.id)).all()
    assert len(ls_ids) == 100

    client = ls.client()
    client.create_annotation(ls_ids[0], choice_result("NG"))
    dr = run_dag("ls_export", {"dataset_id": dataset_id})
    assert dr.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == dr.run_id))
        assert job.message.startswith("exported 1 labeled tasks")
        task = s.scalar(select(Task).where(Task.ls_task_id == ls_ids[0]))
        assert (task.status, task.label) == (TaskStatus.LABELED, "NG")


def test_failed_run_is_recorded(db, ls, run_dag) -> None:
    dr = run_dag("ls_import", {"dataset_id": 999})
    assert dr.state == DagRunState.FAILED
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == dr.run_id))
        assert job.status == JobStatus.FAILED
        assert "dataset 999 does not exist" in job.message
        assert s.scalar(select(func.count(Task.id))) == 0


def test_invalid_params_are_rejected(dagbag) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        dagbag.get_dag("ls_import").test(run_conf={"limit": 0})
