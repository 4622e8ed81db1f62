"""Pre-labeling, scoring, training and the promotion gate against real Label Studio and PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from include.config import load_settings
from include.db.models import Dataset, Item, Job, ModelStatus, ModelVersion, Role, Task, TaskStatus
from include.db.session import session_scope
from include.demo.texts import DEMO_LABEL_DESCRIPTIONS, DEMO_LABELS, generate_demo_texts
from include.labelstudio.client import LabelStudioClient, LabelStudioError
from include.labelstudio.label_config import choice_result
from include.ml.training.params import TrainParams
from include.pipelines import score_uncertainty as score_pipeline
from include.pipelines.catalog import ExportValues, GateValues, ImportValues, PrelabelValues, ScoreValues, TrainValues
from include.pipelines.ls_export import run_ls_export
from include.pipelines.ls_import import run_ls_import
from include.pipelines.prelabel import run_prelabel
from include.pipelines.runner import RunRef
from include.pipelines.score_uncertainty import run_score_uncertainty
from include.pipelines.train_classifier import run_train_classifier
from include.pipelines.training.gate import run_gate
from include.services import eval_set
from include.services.assignment import auto_assign
from include.services.datasets import add_items, create_dataset
from include.services.experiments import labeled_examples
from include.services.privacy import SYNTHETIC
from include.services.task_queries import priority_tasks
from include.services.users import create_user
from tests.helpers.proxy import FaultyProxy

pytestmark = pytest.mark.labelstudio


def demo_dataset(db: str, client: LabelStudioClient, n: int, seed: int = 3) -> int:
    texts = generate_demo_texts(n, seed=seed)
    with session_scope(db) as s:
        ds = create_dataset(
            s,
            f"loop-{uuid.uuid4().hex[:8]}",
            labels=DEMO_LABELS,
            label_descriptions=DEMO_LABEL_DESCRIPTIONS,
            privacy=SYNTHETIC,
        )
        ds.eval_labels = "any"  # one annotator per task here (the review stage: tests/webapp/test_review.py)
        add_items(s, ds, [(t.text, {"truth": t.true_label}) for t in texts])
        dataset_id = ds.id
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
    return dataset_id


def tasks_of(db: str, dataset_id: int) -> list[tuple[Task, dict]]:
    with session_scope(db) as s:
        rows = s.execute(
            select(Task, Item.source)
            .join(Item, Item.id == Task.item_id)
            .where(Task.dataset_id == dataset_id)
            .order_by(Task.id)
        ).all()
        return [(t, src) for t, src in rows]


def label_in_ls(db: str, client: LabelStudioClient, dataset_id: int, n: int) -> None:
    """Annotate the first n tasks in Label Studio with their true label, then export."""
    for task, source in tasks_of(db, dataset_id)[:n]:
        client.create_annotation(task.ls_task_id, choice_result(source["truth"]))
    run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id))


def test_cold_start_similarity_prelabel_reaches_label_studio(db, ls, minilm) -> None:
    client = ls.client()
    dataset_id = demo_dataset(db, client, 80)
    result = run_prelabel(
        db, client, RunRef("prelabel", "p1"), load_settings(), PrelabelValues(dataset_id=dataset_id), embedder=minilm
    )
    assert result["prelabeled"] == 80 and result["model_version"] == "similarity-all-MiniLM-L6-v2"
    rows = tasks_of(db, dataset_id)
    correct = sum(t.prelabel_label == src["truth"] for t, src in rows)
    assert correct / len(rows) > 0.7  # label descriptions alone beat chance clearly on the demo data
    project_id = rows[0][0].ls_project_id
    ls_tasks = {t["id"]: t for t in client.iter_tasks(project_id, fields="all")}
    for task, _ in rows:
        (prediction,) = ls_tasks[task.ls_task_id]["predictions"]
        assert prediction["score"] == pytest.approx(task.prelabel_score, abs=1e-5)  # score = confidence
        assert prediction["model_version"] == task.model_version == "similarity-all-MiniLM-L6-v2"
        assert task.prelabel_json["probs"][task.prelabel_label] == pytest.approx(task.prelabel_score, abs=1e-5)
    assert client.get_project(project_id)["model_version"] == "similarity-all-MiniLM-L6-v2"
    again = run_prelabel(
        db, client, RunRef("prelabel", "p2"), load_settings(), PrelabelValues(dataset_id=dataset_id), embedder=minilm
    )
    assert again["skipped"] is True  # nothing new for this model version


def test_llm_prelabel_counts_malformed_answers(db, ls, llm_server, monkeypatch) -> None:
    client = ls.client()
    dataset_id = demo_dataset(db, client, 30)
    monkeypatch.setenv("OLLAMA_BASE_URL", llm_server.url)
    monkeypatch.setenv("OLLAMA_MODEL", "llama3.2:1b")
    llm_server.malformed_every = 5
    result = run_prelabel(
        db, client, RunRef("prelabel", "llm"), load_settings(), PrelabelValues(dataset_id=dataset_id, backend="ollama")
    )
    assert (result["prelabeled"], result["malformed"]) == (24, 6)
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == "llm"))
        assert job.message == "pre-labeled 24 tasks with ollama-llama3.2:1b (6 malformed answers)"
        assert job.counts["malformed"] == 6
    rows = tasks_of(db, dataset_id)
    assert sum(t.prelabel_label is not None for t, _ in rows) == 24


def test_llm_not_configured_fails_clearly(db, ls) -> None:
    client = ls.client()
    dataset_id = demo_dataset(db, client, 3)
    with pytest.raises(ValueError, match="OPENAI_BASE_URL"):
        run_prelabel(db, client, RunRef(), load_settings({}), PrelabelValues(dataset_id=dataset_id, backend="openai"))


def test_scores_order_auto_assign_hardest_first(db, ls, minilm, monkeypatch) -> None:
    client = ls.client()
    dataset_id = demo_dataset(db, client, 60)
    run_prelabel(db, client, RunRef(), load_settings(), PrelabelValues(dataset_id=dataset_id), embedder=minilm)
    result = run_score_uncertainty(db, RunRef("score_uncertainty", "s1"), ScoreValues(dataset_id=dataset_id))
    assert result["scored"] == 60 and result["source"] == "pre-labels"
    rows = tasks_of(db, dataset_id)
    for task, _ in rows:
        assert task.model_prob == pytest.approx(task.prelabel_score, abs=1e-6)
        assert task.uncertainty_score == pytest.approx(1 - task.prelabel_score, abs=1e-6)
        assert task.priority == int(task.uncertainty_score * 1000 + 1e-6)
    with session_scope(db) as s:
        annotator = create_user(
            s, f"a-{uuid.uuid4().hex[:6]}", f"{uuid.uuid4().hex[:6]}@x.io", "password-123", Role.ANNOTATOR
        )
        picked = auto_assign(s, dataset_id, annotator, 10, strategy="top")
        top = priority_tasks(s, dataset_id, limit=60, only_unlabeled=False)
    expected = [t.id for t in sorted((t for t, _ in rows), key=lambda t: (-t.priority, t.id))[:10]]
    assert sorted(picked) == sorted(expected)
    assert [t.priority for t in top] == sorted((t.priority for t in top), reverse=True)

    # A rescore writes the tasks in annotators' lists first, then the pool, each task once.
    written: list[list[int]] = []
    real_write = score_pipeline.write_scores

    def spy(session, ids, probs, strategy):
        written.append(list(ids))
        return real_write(session, ids, probs, strategy)

    monkeypatch.setattr(score_pipeline, "write_scores", spy)
    again = run_score_uncertainty(
        db, RunRef("score_uncertainty", "s2"), ScoreValues(dataset_id=dataset_id), batch_size=4
    )
    order = [i for batch in written for i in batch]
    assert again["scored"] == 60 and sorted(order) == sorted(t.id for t, _ in rows)
    assert set(order[:10]) == set(picked) and len(written) == 3 + 13  # 10 assigned in 3 batches, 50 in 13


def test_train_gate_promotes_then_rejects_a_worse_model(db, ls, minilm, tmp_path: Path) -> None:
    client = ls.client()
    dataset_id = demo_dataset(db, client, 160, seed=11)
    skipped = run_train_classifier(
        db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams()), embedder=minilm
    )
    assert skipped["skipped"] and "training needs at least 20" in skipped["reason"]

    label_in_ls(db, client, dataset_id, 120)
    trained = run_train_classifier(
        db,
        RunRef("train_classifier", "t1"),
        TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="mlp", lr=3e-3)),
        embedder=minilm,
    )
    assert trained["metrics"]["f1"] > 0.75
    gate = run_gate(
        db, RunRef("train_classifier", "t1"), GateValues(dataset_id=dataset_id), model_id=trained["model_id"]
    )
    assert gate["promoted"] and "first model" in gate["reason"]

    again = run_train_classifier(db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams()), embedder=minilm)
    assert again["skipped"] and "no new labels" in again["reason"]

    weak = run_train_classifier(
        db,
        RunRef(),
        TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="mlp", epochs=1, lr=1e-5), force=True),
        embedder=minilm,
    )
    verdict = run_gate(db, RunRef(), GateValues(dataset_id=dataset_id), model_id=weak["model_id"])
    assert not verdict["promoted"] and "not better beyond noise" in verdict["reason"]
    assert verdict["decided"] and "90 % interval" in verdict["reason"]
    with session_scope(db) as s:
        statuses = dict(s.execute(select(ModelVersion.version, ModelVersion.status)).tuples().all())
        experiment_epochs = s.scalar(select(Job.counts).where(Job.run_id == "t1", Job.step == "train_classifier"))
    assert statuses == {trained["version"]: ModelStatus.PROMOTED, weak["version"]: ModelStatus.REJECTED}
    with session_scope(db) as s:  # heads live in their registry rows: no file on any worker's disk
        stored = s.execute(select(ModelVersion.artifact_path, ModelVersion.artifact)).all()
    assert all(path == "" and blob and len(blob) > 1000 for path, blob in stored)
    from tests.webapp.conftest import make_app

    with session_scope(db) as s:
        admin = create_user(
            s, f"adm-{uuid.uuid4().hex[:6]}", f"{uuid.uuid4().hex[:6]}@adm.io", "password-123", Role.ADMIN
        )
        admin_name = admin.username
    with make_app(db).test_client() as web:
        web.post("/login", data={"username": admin_name, "password": "password-123"})
        page = web.get("/admin/models").get_data(as_text=True)
        assert f'data-model="{trained["version"]}"' in page and "first model: macro F1" in page
        assert "not better beyond noise" in page
        epochs = web.get(f"/admin/experiments/{trained['experiment_id']}").get_data(as_text=True)
        assert epochs.count("<tr") > 5 and "★" in epochs
    with session_scope(db) as s:
        reserved = eval_set.current_set(s, s.get_one(Dataset, dataset_id)).size
    assert reserved >= 20 and experiment_epochs["labels"] + reserved == 120  # the eval set is never trained on

    # The promoted classifier now drives pre-labeling and scoring.
    result = run_prelabel(db, client, RunRef(), load_settings(), PrelabelValues(dataset_id=dataset_id), embedder=minilm)
    assert result["model_version"] == trained["version"] and result["prelabeled"] == 40
    scored = run_score_uncertainty(db, RunRef(), ScoreValues(dataset_id=dataset_id))
    assert scored["source"] == trained["version"] and scored["scored"] == 40
    unlabeled = [(t, src) for t, src in tasks_of(db, dataset_id) if t.status == TaskStatus.IMPORTED]
    accuracy = sum(t.prelabel_label == src["truth"] for t, src in unlabeled) / len(unlabeled)
    assert accuracy > 0.75


def test_conflicts_stay_out_of_training(db, ls) -> None:
    client = ls.client()
    dataset_id = demo_dataset(db, client, 6)
    rows = tasks_of(db, dataset_id)
    client.create_annotation(rows[0][0].ls_task_id, choice_result("OK"))
    client.create_annotation(rows[0][0].ls_task_id, choice_result("NG"))
    client.create_annotation(rows[1][0].ls_task_id, choice_result("NG"))
    run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        examples = labeled_examples(s, s.get_one(Dataset, dataset_id))
    assert [label for _, label in examples] == ["NG"]


def test_a_failed_prelabel_keeps_finished_batches_and_the_next_run_completes(db, ls, minilm) -> None:
    dataset_id = demo_dataset(db, ls.client(), 50)
    with FaultyProxy(ls.url) as proxy:
        client = LabelStudioClient(proxy.url, ls.token, retries=0)
        calls = {"n": 0}
        real = client.import_predictions

        def failing_second_batch(project_id, predictions):
            calls["n"] += 1
            if calls["n"] == 2:
                proxy.fail_next_status = [500]
            return real(project_id, predictions)

        client.import_predictions = failing_second_batch  # type: ignore[method-assign]
        with pytest.raises(LabelStudioError):
            run_prelabel(
                db,
                client,
                RunRef("prelabel", "half"),
                load_settings(),
                PrelabelValues(dataset_id=dataset_id),
                batch_size=20,
                embedder=minilm,
            )
    rows = tasks_of(db, dataset_id)
    assert sum(t.prelabel_label is not None for t, _ in rows) == 20  # batch 1 complete, batch 2 not claimed
    result = run_prelabel(
        db,
        ls.client(),
        RunRef(),
        load_settings(),
        PrelabelValues(dataset_id=dataset_id),
        batch_size=20,
        embedder=minilm,
    )
    assert result["prelabeled"] == 30
    ls_tasks = {t["id"]: t for t in ls.client().iter_tasks(rows[0][0].ls_project_id, fields="all")}
    assert all(len(ls_tasks[t.ls_task_id]["predictions"]) == 1 for t, _ in rows)


@dataclass
class _Renamed:
    """The offline encoder under another registry name: a second model version to pre-label with."""

    inner: Any
    name: str = "minilm-renamed"
    backend: str = "sentence_transformers"
    model: str = "minilm-renamed"
    dimension: int = 384

    def embed(self, texts: list[str]) -> Any:
        return self.inner.embed(texts)


def test_a_new_model_version_writes_first_and_prunes_the_old_predictions_after(db, ls, minilm, monkeypatch) -> None:
    from include.services import predictions

    monkeypatch.setattr(predictions, "PRUNE_ABOVE", 1)  # prune at once (the default waits for 3)
    client = ls.client()
    dataset_id = demo_dataset(db, client, 60)
    calls: list[tuple[str, int]] = []
    for name in ("delete_predictions", "import_predictions"):
        real = getattr(client, name)

        def traced(project_id: int, items: Any, _real: Any = real, _name: str = name) -> Any:
            calls.append((_name, len(items)))
            return _real(project_id, items)

        setattr(client, name, traced)
    first = run_prelabel(
        db, client, RunRef(), load_settings(), PrelabelValues(dataset_id=dataset_id), batch_size=25, embedder=minilm
    )
    assert first["ls_predictions"] == 60 and first["superseded_pruned"] == 0
    assert [c for c, _ in calls] == ["import_predictions"] * 3  # nothing to delete on a first pre-label

    calls.clear()
    second = run_prelabel(
        db,
        client,
        RunRef(),
        load_settings(),
        PrelabelValues(dataset_id=dataset_id),
        batch_size=25,
        embedder=_Renamed(minilm),
    )
    assert second["model_version"] == "similarity-minilm-renamed" and second["superseded_pruned"] == 60
    names = [c for c, _ in calls]
    # the new version's predictions go in first; only then are the old ones removed (and the current rewritten)
    assert names[:3] == ["import_predictions"] * 3 and names[3:] == ["delete_predictions", "import_predictions"]
    project_id = tasks_of(db, dataset_id)[0][0].ls_project_id
    assert client.get_project(project_id)["model_version"] == "similarity-minilm-renamed"
    ls_tasks = {t["id"]: t for t in client.iter_tasks(project_id, fields="all")}
    for task, _ in tasks_of(db, dataset_id):
        (prediction,) = ls_tasks[task.ls_task_id]["predictions"]
        assert prediction["model_version"] == task.model_version == "similarity-minilm-renamed"
        assert prediction["score"] == pytest.approx(task.prelabel_score, abs=1e-5)

    calls.clear()
    again = run_prelabel(
        db,
        client,
        RunRef(),
        load_settings(),
        PrelabelValues(dataset_id=dataset_id, only_new=False),
        batch_size=25,
        embedder=_Renamed(minilm),
    )
    assert again["superseded_pruned"] == 0  # the same version again: replaced in place, batch by batch
    assert [c for c, _ in calls] == ["delete_predictions", "import_predictions"] * 3
    ls_tasks = {t["id"]: t for t in client.iter_tasks(project_id, fields="all")}
    assert all(len(t["predictions"]) == 1 for t in ls_tasks.values())


def test_a_run_killed_between_label_studio_and_the_shadow_index_leaves_no_duplicate(db, ls, minilm, monkeypatch):
    """Label Studio took the batch, the process died before the shadow index recorded it: the
    next run writes each task's prediction once (it replaces in its first batches)."""
    from include.pipelines import prelabel as pipeline

    client = ls.client()
    dataset_id = demo_dataset(db, client, 50)
    real_record = pipeline.record_prelabels

    def dies(session: Any, rows: Any) -> None:
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(pipeline, "record_prelabels", dies)
    values = PrelabelValues(dataset_id=dataset_id)
    with pytest.raises(KeyboardInterrupt):
        run_prelabel(db, client, RunRef(), load_settings(), values, batch_size=20, embedder=minilm)
    monkeypatch.setattr(pipeline, "record_prelabels", real_record)
    rows = tasks_of(db, dataset_id)
    assert all(t.prelabel_label is None for t, _ in rows)  # the shadow index claims nothing
    result = run_prelabel(db, client, RunRef(), load_settings(), values, batch_size=20, embedder=minilm)
    assert result["prelabeled"] == 50
    ls_tasks = client.iter_tasks(rows[0][0].ls_project_id, fields="all")
    assert sorted(len(t["predictions"]) for t in ls_tasks) == [1] * 50


def test_two_pre_labelings_of_one_dataset_at_once_write_each_prediction_once(db, ls, minilm) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client = ls.client()
    dataset_id = demo_dataset(db, client, 40)
    values = PrelabelValues(dataset_id=dataset_id)

    def one() -> dict:
        return run_prelabel(db, ls.client(), RunRef(), load_settings(), values, batch_size=10, embedder=minilm)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: one(), range(2)))
    assert sorted(r.get("prelabeled", 0) for r in results) == [0, 40]  # the second waited, then had nothing new
    ls_tasks = client.iter_tasks(tasks_of(db, dataset_id)[0][0].ls_project_id, fields="all")
    assert sorted(len(t["predictions"]) for t in ls_tasks) == [1] * 40


def test_older_versions_wait_until_a_task_holds_more_than_three(db, ls, minilm) -> None:
    client = ls.client()
    dataset_id = demo_dataset(db, client, 30)
    project_id = tasks_of(db, dataset_id)[0][0].ls_project_id
    for n in range(1, 5):
        result = run_prelabel(
            db,
            client,
            RunRef(),
            load_settings(),
            PrelabelValues(dataset_id=dataset_id),
            embedder=_Renamed(minilm, name=f"minilm-v{n}", model=f"minilm-v{n}"),
        )
        counts = {len(t["predictions"]) for t in client.iter_tasks(project_id, fields="all")}
        if n < 4:
            assert result["superseded_pruned"] == 0 and counts == {n}
        else:
            assert result["superseded_pruned"] == 30 and counts == {1}
    versions = {p["model_version"] for t in client.iter_tasks(project_id, fields="all") for p in t["predictions"]}
    assert versions == {"similarity-minilm-v4"} == {client.get_project(project_id)["model_version"]}


def test_a_retried_training_replaces_the_killed_tries_experiment(db) -> None:
    """A try killed mid-training left a running experiment with some epochs; the retry (same run,
    same dataset, same trial) replaces it: one experiment, its epochs once. Other trials and
    finished experiments of the run are kept."""
    from include.db.models import Experiment, ExperimentEpoch
    from include.services.datasets import create_dataset
    from include.services.experiments import record_epoch, start_experiment

    with session_scope(db) as s:
        dataset_id = create_dataset(s, "retried", labels=["OK", "NG"], privacy=SYNTHETIC).id

    def start(s, run_id: str, extra: dict | None = None) -> int:
        return start_experiment(
            s, dataset=s.get_one(Dataset, dataset_id), embedding_model_id=None, embedding_model="m",
            params=TrainParams(), n_labeled=10, snapshot="x", run_id=run_id, extra=extra,
        )  # fmt: skip

    with session_scope(db) as s:
        killed = start(s, "run-1")
        record_epoch(s, killed, 1, 0.9, 0.8, {})
        other_trial = start(s, "run-1", {"trial": 2})
        other_run = start(s, "run-0")
    with session_scope(db) as s:
        retry = start(s, "run-1")
        record_epoch(s, retry, 1, 0.7, 0.6, {})
    with session_scope(db) as s:
        left = {e.id for e in s.scalars(select(Experiment))}
        assert left == {retry, other_trial, other_run}
        assert s.scalars(select(ExperimentEpoch.experiment_id)).all() == [retry]
