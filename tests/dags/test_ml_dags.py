"""The ML DAGs and the nightly loop through dag.test(), against real Label Studio and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from airflow.utils.state import DagRunState
from sqlalchemy import select

from include.db.models import Item, Job, JobStatus, ModelStatus, ModelVersion, Task
from include.db.session import session_scope
from include.demo.texts import generate_demo_texts
from include.labelstudio.label_config import choice_result
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC

pytestmark = [pytest.mark.airflow, pytest.mark.labelstudio]


def seeded_dataset(db: str, n: int) -> int:
    with session_scope(db) as s:
        ds = create_dataset(s, f"dag-ml-{uuid.uuid4().hex[:6]}", labels=["OK", "NG"], privacy=SYNTHETIC)
        ds.eval_labels = "any"  # one Label Studio annotation per task: they judge models too
        add_items(s, ds, [(t.text, {"truth": t.true_label}) for t in generate_demo_texts(n, seed=21)])
        return ds.id


def annotate(db: str, ls, dataset_id: int, n: int) -> None:
    client = ls.client()
    with session_scope(db) as s:
        rows = s.execute(
            select(Task.ls_task_id, Item.source)
            .join(Item, Item.id == Task.item_id)
            .where(Task.dataset_id == dataset_id, Task.label.is_(None))
            .order_by(Task.id)
            .limit(n)
        ).all()
    for ls_id, source in rows:
        client.create_annotation(ls_id, choice_result(source["truth"]))


def jobs_of(db: str, run_id: str) -> dict[str, tuple[JobStatus, str]]:
    with session_scope(db) as s:
        return {
            j.step: (j.status, j.message) for j in s.scalars(select(Job).where(Job.run_id == run_id).order_by(Job.id))
        }


def test_each_ml_dag(db, ls, minilm, run_dag) -> None:
    dataset_id = seeded_dataset(db, 110)  # 70 labeled, 40 left to pre-label and score
    assert run_dag("ls_import", {"dataset_id": dataset_id}).state == DagRunState.SUCCESS
    annotate(db, ls, dataset_id, 70)
    assert run_dag("ls_export", {"dataset_id": dataset_id}).state == DagRunState.SUCCESS

    dr = run_dag("embed_items", {"dataset_id": dataset_id})
    assert dr.state == DagRunState.SUCCESS
    assert jobs_of(db, dr.run_id)["embed_items"] == (JobStatus.SUCCESS, "embedded 110 new texts with all-MiniLM-L6-v2")

    dr = run_dag("train_classifier", {"dataset_id": dataset_id, "model_kind": "logistic", "lr": 0.01, "min_f1": 0.5})
    assert dr.state == DagRunState.SUCCESS
    jobs = jobs_of(db, dr.run_id)
    reserved = eval_size(db, dataset_id)
    assert reserved >= 20  # at least 10 evaluation labels per label, never trained on
    assert (
        jobs["train_classifier"][0] == JobStatus.SUCCESS and f"on {70 - reserved} labels" in jobs["train_classifier"][1]
    )
    assert jobs["gate"][0] == JobStatus.SUCCESS and jobs["gate"][1].startswith("promoted logistic-ds"), jobs["gate"]

    dr = run_dag("prelabel", {"dataset_id": dataset_id})
    assert dr.state == DagRunState.SUCCESS
    assert jobs_of(db, dr.run_id)["prelabel"][1].startswith("pre-labeled 40 tasks with logistic-ds")  # 110 - 70

    dr = run_dag("score_uncertainty", {"dataset_id": dataset_id, "strategy": "entropy"})
    assert dr.state == DagRunState.SUCCESS
    assert "scored 40 tasks by entropy" in jobs_of(db, dr.run_id)["score_uncertainty"][1]


def eval_size(db: str, dataset_id: int) -> int:
    from include.db.models import Dataset
    from include.services import eval_set

    with session_scope(db) as s:
        return eval_set.current_set(s, s.get_one(Dataset, dataset_id)).size


def test_nightly_loop_end_to_end_and_skips_cleanly(db, ls, minilm, run_dag) -> None:
    dataset_id = seeded_dataset(db, 100)
    assert run_dag("ls_import", {"dataset_id": dataset_id}).state == DagRunState.SUCCESS
    annotate(db, ls, dataset_id, 60)

    dr = run_dag("active_learning_nightly", {"dataset_id": dataset_id, "model_kind": "logistic", "min_f1": 0.5})
    assert dr.state == DagRunState.SUCCESS
    jobs = jobs_of(db, dr.run_id)
    assert list(jobs)[:5] == ["ls_export", "embed_items", "build_index", "train_classifier", "gate"]
    assert set(list(jobs)[5:]) == {"prelabel", "score_uncertainty"}  # side by side after the gate
    assert jobs.pop("build_index") == (JobStatus.SKIPPED, "the HNSW index of all-MiniLM-L6-v2 is up to date")
    assert all(status == JobStatus.SUCCESS for status, _ in jobs.values()), jobs
    assert jobs["ls_export"][1].startswith("exported 60 labeled tasks")
    with session_scope(db) as s:
        promoted = s.scalar(select(ModelVersion).where(ModelVersion.dataset_id == dataset_id))
        assert promoted.status == ModelStatus.PROMOTED
        priorities = s.scalars(select(Task.priority).where(Task.dataset_id == dataset_id, Task.label.is_(None))).all()
    assert len(priorities) == 40 and max(priorities) > 0

    # Nothing new: every step but scoring skips cleanly, and the run still succeeds.
    dr = run_dag("active_learning_nightly", {"dataset_id": dataset_id, "model_kind": "logistic"})
    assert dr.state == DagRunState.SUCCESS
    jobs = jobs_of(db, dr.run_id)
    assert jobs["embed_items"][0] == JobStatus.SKIPPED
    assert jobs["train_classifier"] == (JobStatus.SKIPPED, f"no new labels since experiment {promoted.experiment_id}")
    assert jobs["gate"][0] == JobStatus.SKIPPED and jobs["prelabel"][0] == JobStatus.SKIPPED
    assert jobs["score_uncertainty"][0] == JobStatus.SUCCESS


def test_the_first_nightly_run_orders_a_dataset_with_no_labels_from_its_own_pre_labels(db, ls, minilm, run_dag) -> None:
    """Cold start: no labels, no model. The loop pre-labels by similarity to the label names, then
    scores from those pre-labels, in the same run, so "hardest first" works from the first night."""
    dataset_id = seeded_dataset(db, 30)
    assert run_dag("ls_import", {"dataset_id": dataset_id}).state == DagRunState.SUCCESS
    dr = run_dag("active_learning_nightly", {"dataset_id": dataset_id, "backend": "similarity"})
    assert dr.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        jobs = {j.step: j for j in s.scalars(select(Job).where(Job.run_id == dr.run_id))}
        assert jobs["train_classifier"].status == JobStatus.SKIPPED
        prelabel, score = jobs["prelabel"], jobs["score_uncertainty"]
        assert (prelabel.status, score.status) == (JobStatus.SUCCESS, JobStatus.SUCCESS)
        assert score.started_at >= prelabel.finished_at  # scored after this run's pre-labels
        assert "pre-labels" in score.message
        # Each job records the values it ran with, every declared field of its step.
        from include.pipelines.catalog import GateValues, PrelabelValues

        assert prelabel.params == PrelabelValues.parse({"dataset_id": dataset_id, "backend": "similarity"}).as_params()
        assert set(GateValues.parse({"dataset_id": dataset_id}).as_params()) <= set(jobs["gate"].params)
        assert "require_baseline" in jobs["gate"].params
        tasks = s.scalars(select(Task).where(Task.dataset_id == dataset_id)).all()
    assert len(tasks) == 30 and all(t.prelabel_label is not None for t in tasks)
    assert sum(t.priority > 0 for t in tasks) == 30
