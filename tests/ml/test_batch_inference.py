"""Batch inference and training lineage on real PostgreSQL + pgvector with the MiniLM encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from airflow.utils.state import DagRunState
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from include.db.models import (
    Experiment,
    ExperimentItem,
    InferenceResult,
    InferenceRun,
    Job,
    ModelStatus,
    ModelVersion,
    Snapshot,
)
from include.db.session import session_scope
from include.ml.training.params import TrainParams
from include.pipelines.batch_inference import run_batch_inference
from include.pipelines.catalog import BatchInferenceValues, TrainValues
from include.pipelines.runner import RunRef
from include.pipelines.train_classifier import run_train_classifier
from include.services import inference, snapshots
from include.services.datasets import DatasetError
from include.services.registry import load_head
from include.services.vectors import get_model, load_vectors
from tests.ml.test_eval_set import demo, label, make_dataset


@pytest.fixture
def trained(db, minilm, tmp_path: Path) -> dict:
    dataset_id = make_dataset(db, "inference", demo(160, seed=4))
    label(db, dataset_id, 120)
    result = run_train_classifier(
        db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic")), embedder=minilm
    )
    with session_scope(db) as s:
        s.execute(update(ModelVersion).where(ModelVersion.id == result["model_id"]).values(status=ModelStatus.PROMOTED))
    return {"dataset_id": dataset_id, **result}


def test_training_records_the_snapshot_it_used(db, trained) -> None:
    with session_scope(db) as s:
        experiment = s.get(Experiment, trained["experiment_id"])
        snapshot = s.get(Snapshot, experiment.snapshot_id)
        assert snapshot is not None and snapshot.rows == 120 and snapshot.version == 1
        used = set(s.scalars(select(ExperimentItem.text_hash).where(ExperimentItem.experiment_id == experiment.id)))
        training = {h for h, _ in snapshots.training_examples(s, snapshot.id)}
        assert used == training and len(used) == experiment.n_train + experiment.n_val


def test_batch_inference_matches_the_heads_own_predictions(db, minilm, trained) -> None:
    result = run_batch_inference(
        db, RunRef(), BatchInferenceValues(dataset_id=trained["dataset_id"]), embedder=minilm, batch_size=64
    )
    assert result["predicted"] == 160
    with session_scope(db) as s:
        model = s.get(ModelVersion, trained["model_id"])
        head = load_head(s, model.id)
        rows = (
            s.execute(
                select(InferenceResult)
                .where(InferenceResult.run_id == result["inference_run_id"])
                .order_by(InferenceResult.row)
            )
            .scalars()
            .all()
        )
        vectors = load_vectors(s, get_model(s, minilm.name).id, [r.text_hash for r in rows])
        run = s.get(InferenceRun, result["inference_run_id"])
        job = s.get(Job, run.job_id)
        assert (run.status, run.rows, run.source) == ("done", 160, "dataset")
        assert job.message.startswith(f"predicted 160 texts with {model.version}")
    expected = head.predict_proba(np.stack([vectors[r.text_hash] for r in rows]))
    got = np.asarray([r.probs for r in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert [r.label for r in rows] == [head.labels[i] for i in expected.argmax(axis=1)]
    assert all(abs(r.confidence - max(r.probs)) < 1e-9 for r in rows)
    # a retried run resumes: nothing is predicted twice
    with session_scope(db) as s:
        s.execute(update(InferenceRun).where(InferenceRun.id == run.id).values(status="running"))
    again = run_batch_inference(db, RunRef(), BatchInferenceValues(inference_run_id=run.id), embedder=minilm)
    assert again["predicted"] == 160


def test_an_uploaded_file_through_the_dag(db, minilm, trained, run_dag, monkeypatch) -> None:
    texts = ["The kettle is broken and leaks water.", "Works perfectly, arrived on time.", "屏幕碎了 😡"]
    body = ("text,extra\n" + "\n".join(f'"{t}",x' for t in texts) + "\n").encode()
    with session_scope(db) as s:
        prepared = inference.create_for_upload(s, "mine.csv", body, trained["model_id"], None)
        run_id = prepared.id
        assert prepared.rows == 3
    dr = run_dag("batch_inference", {"inference_run_id": run_id})
    assert dr.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        run = s.get(InferenceRun, run_id)
        head = load_head(s, trained["model_id"])
        csv_text = b"".join(inference.download_chunks(s, run, "csv", head.labels)).decode("utf-8")
        jsonl = b"".join(inference.download_chunks(s, run, "jsonl", head.labels)).decode("utf-8").splitlines()
    assert run.status == "done" and run.rows == 3
    expected = head.predict_proba(minilm.embed(texts))
    import json

    records = [json.loads(line) for line in jsonl]
    assert [r["text"] for r in records] == texts
    for record, probs in zip(records, expected, strict=True):
        assert record["label"] == head.labels[int(probs.argmax())]
        assert record["probs"] == pytest.approx(dict(zip(head.labels, probs.tolist(), strict=True)), abs=1e-5)
    assert csv_text.splitlines()[0] == "\ufeffrow,text,label,confidence,uncertainty," + ",".join(
        f"p_{label}" for label in head.labels
    )


def test_bad_requests_are_refused(db, trained) -> None:
    with session_scope(db) as s:
        with pytest.raises(inference.InferenceError, match="no model version 9999"):
            inference.resolve_model(s, None, 9999)
        with pytest.raises(inference.InferenceError, match="needs a model_id"):
            inference.create_for_upload(s, "x.csv", b"text\nhello\n", None, None)
        with pytest.raises(DatasetError, match="no 'text' column"):
            inference.create_for_upload(s, "x.csv", b"words\nhello\n", trained["model_id"], None)
        other = make_dataset(db, "untrained", demo(10, seed=1))
        with pytest.raises(inference.InferenceError, match="has no promoted model yet"):
            inference.resolve_model(s, other, None)
    with pytest.raises(inference.InferenceError, match="name a dataset"):
        run_batch_inference(db, RunRef(), BatchInferenceValues())


def test_an_upload_goes_through_the_models_datasets_policy(db, trained) -> None:
    """No original of an uploaded file is stored: its texts are de-identified before they become
    inputs, by the policy of the dataset the model was trained on."""
    from include.db.models import Dataset, InferenceInput
    from include.services import pii

    body = "text\n请回电 13812345678，屏幕坏了\n".encode()
    with session_scope(db) as s:
        policy = pii.save_policy(s, "phones", {"PHONE": "placeholder"})
        pii.attach(s, s.get_one(Dataset, trained["dataset_id"]), policy.id, Fernet.generate_key())
        run = inference.create_for_upload(s, "calls.csv", body, trained["model_id"], None)
        (stored,) = s.scalars(select(InferenceInput.text).where(InferenceInput.run_id == run.id)).all()
    assert stored == "请回电 <PHONE_1>，屏幕坏了"
    with session_scope(db) as s:
        llm_policy = pii.save_policy(s, "names", {"PERSON": "placeholder"}, use_llm=True)
        pii.attach(s, s.get_one(Dataset, trained["dataset_id"]), llm_policy.id, Fernet.generate_key())
        with pytest.raises(pii.PolicyError, match="LLM recognizer"):  # not sent to an LLM from a request
            inference.create_for_upload(s, "calls.csv", body, trained["model_id"], None)
        dataset = s.get_one(Dataset, trained["dataset_id"])
        dataset.pii_policy_id, dataset.pii_exempt_reason = None, None
        with pytest.raises(pii.PrivacyUndecided):
            inference.create_for_upload(s, "calls.csv", body, trained["model_id"], None)


def test_runs_are_purged_after_their_retention_and_can_be_deleted(db, trained) -> None:
    from datetime import UTC, datetime, timedelta

    from include.db.models import InferenceInput
    from include.errors import Conflict

    with session_scope(db) as s:
        old = inference.create_for_upload(s, "old.csv", b"text\nhello\nworld\n", trained["model_id"], None)
        fresh = inference.create_for_upload(s, "new.csv", b"text\nhi\n", trained["model_id"], None)
        old.status, old.finished_at = "done", datetime.now(UTC) - inference.RETENTION - timedelta(hours=1)
        fresh.status, fresh.finished_at = "done", datetime.now(UTC)
        old_id, fresh_id = old.id, fresh.id
    with session_scope(db) as s:
        assert inference.purge_expired(s) == 1
    with session_scope(db) as s:
        assert s.get_one(InferenceRun, old_id).status == "purged"
        assert s.scalars(select(InferenceInput.run_id).distinct()).all() == [fresh_id]  # the old inputs are gone
        running = inference.create_for_upload(s, "busy.csv", b"text\nhi\n", trained["model_id"], None)
        running.status = "running"
        with pytest.raises(Conflict, match="once it has ended"):
            inference.delete_run(s, running)
        inference.delete_run(s, s.get_one(InferenceRun, fresh_id))
    with session_scope(db) as s:
        assert s.get(InferenceRun, fresh_id) is None
        assert s.scalars(select(InferenceInput).where(InferenceInput.run_id == fresh_id)).all() == []


def test_a_policy_attached_later_removes_the_evaluations_quoted_mistakes(db, trained) -> None:
    from include.db.models import Dataset, ModelEvaluation
    from include.services import pii

    with session_scope(db) as s:
        report = {"macro_f1": 0.5, "mistakes": [{"task_id": 1, "text": "call me on 13812345678", "label": "OK"}]}
        s.add(ModelEvaluation(model_id=trained["model_id"], eval_version="v1", n=1, macro_f1=0.5, report=report))
        policy = pii.save_policy(s, "phones", {"PHONE": "placeholder"})
    with session_scope(db) as s:
        pii.attach(s, s.get_one(Dataset, trained["dataset_id"]), policy.id, Fernet.generate_key())
    with session_scope(db) as s:
        (evaluation,) = s.scalars(select(ModelEvaluation).where(ModelEvaluation.model_id == trained["model_id"])).all()
    assert evaluation.report["mistakes"] == [] and evaluation.report["macro_f1"] == 0.5  # the figures stay
