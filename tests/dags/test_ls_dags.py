"""ls_import and ls_export through dag.test() against the real Label Studio and PostgreSQL."""

from __future__ import annotations

import pytest
from airflow.utils.state import DagRunState
from sqlalchemy import func, select

from include.db.models import Job, JobStatus, Task, TaskStatus
from include.db.session import session_scope
from include.labelstudio.label_config import choice_result
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC

pytestmark = [pytest.mark.airflow, pytest.mark.labelstudio]


def test_import_then_export_dags(db, ls, run_dag) -> None:
    with session_scope(db) as s:
        dataset = create_dataset(s, "dag-run", labels=["OK", "NG"], privacy=SYNTHETIC)
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


def test_export_starts_the_live_loop_after_enough_new_labels(db, ls, run_dag) -> None:
    """``live_loop_due`` emits ``labels_ready`` naming the dataset once it has
    ``retrain_after_labels`` new labels, and skips (no event) before that and right after."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from include.pipelines.assets import LABELS_READY

    with session_scope(db) as s:
        dataset = create_dataset(s, "live-dag", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, [(f"live dag text {i}", {}) for i in range(6)])
        dataset.retrain_after_labels = 2
        dataset_id = dataset.id
    assert run_dag("ls_import", {"dataset_id": dataset_id}).state == DagRunState.SUCCESS
    with session_scope(db) as s:
        ls_ids = s.scalars(select(Task.ls_task_id).where(Task.dataset_id == dataset_id).order_by(Task.id)).all()
    client = ls.client()

    def export_and_due() -> tuple[str, object]:
        dr = run_dag("ls_export", {"dataset_id": dataset_id})
        assert dr.state == DagRunState.SUCCESS
        ti = next(t for t in dr.get_task_instances() if t.task_id == "live_loop_due")
        return ti.state, ti.xcom_pull(task_ids="live_loop_due") if ti.state == "success" else None

    def ready_events() -> list[dict]:
        with create_session() as session:
            rows = session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetModel.uri == LABELS_READY)
            ).all()
            return [dict(e.extra or {}) for e in rows]

    before = len(ready_events())
    client.create_annotation(ls_ids[0], choice_result("NG"))
    assert export_and_due()[0] == "skipped"
    client.create_annotation(ls_ids[1], choice_result("OK"))
    assert export_and_due() == ("success", [dataset_id])
    events = ready_events()[before:]
    assert events == [{"dataset_ids": [dataset_id], "new_labels": {str(dataset_id): 2}}]
    assert export_and_due()[0] == "skipped"  # started for these labels: not again until 2 more
    assert len(ready_events()) == before + 1
