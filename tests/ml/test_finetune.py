"""SetFit-style encoder fine-tuning: pair sampling, a tiny encoder that learns on CPU, the archive
round trip; then through dag.test(): a new embedding model, re-embedding, the gate against the
dataset's serving model on each model's own vectors, and scoring with the tuned encoder."""

from __future__ import annotations

import numpy as np
import pytest
from airflow.utils.state import DagRunState
from sqlalchemy import func, select

from include.db.models import (
    Dataset,
    Embedding,
    EmbeddingModel,
    EvalItem,
    Experiment,
    ExperimentItem,
    Job,
    ModelStatus,
    ModelVersion,
    Task,
)
from include.db.session import session_scope
from include.ml.training.finetune import FinetuneDataError, FinetuneParams, contrastive_pairs, finetune, pack, unpack
from include.pipelines.catalog import FinetuneValues
from tests.helpers.tiny_encoder import build_tiny_encoder
from tests.ml.test_eval_set import demo, label, make_dataset


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> str:
    return str(build_tiny_encoder(tmp_path_factory.mktemp("encoder")))


def _load(path: str):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device="cpu", local_files_only=True)


def test_pairs_are_setfit_pairs() -> None:
    y = [0] * 6 + [1] * 3
    pairs = contrastive_pairs(y, iterations=4, max_pairs=1000, seed=1)
    positives = [(a, b) for a, b, t in pairs if t == 1.0]
    negatives = [(a, b) for a, b, t in pairs if t == 0.0]
    assert len(positives) == len(negatives) == 4 * 9  # one of each per text and iteration
    assert all(y[a] == y[b] and a != b for a, b in positives)
    assert all(y[a] != y[b] for a, b in negatives)
    capped = contrastive_pairs(y, iterations=4, max_pairs=10, seed=1)
    assert len(capped) == 10 and sum(t for _, _, t in capped) == 5
    assert contrastive_pairs(y, 4, 1000, seed=1) == pairs  # seeded
    with pytest.raises(FinetuneDataError, match="two labels"):
        contrastive_pairs([1, 1, 1], 2, 100, seed=0)


def test_a_tiny_encoder_learns_the_labels_and_survives_the_archive(tiny_encoder, tmp_path) -> None:
    good = [f"great lovely product number {i} works well" for i in range(12)]
    bad = [f"awful broken junk number {i} failed again" for i in range(12)]
    texts, y = good[:9] + bad[:9], [0] * 9 + [1] * 9
    held_out, held_y = good[9:] + bad[9:], [0] * 3 + [1] * 3
    model = _load(tiny_encoder)
    before = model.encode(held_out, normalize_embeddings=True)
    records = finetune(
        model,
        texts,
        y,
        FinetuneParams(pair_iterations=10, max_pairs=400, batch_size=16, lr=1e-3, epochs=2, seed=3),
        val_texts=held_out,
        val_y=held_y,
        every=5,
    )
    assert records[-1].step == records[-1].steps == 2 * 23  # 18 texts x 10 x 2 = 360 pairs, 16 a step, twice
    assert records[-1].val_loss < records[0].val_loss  # held-out pairs: texts never paired in training
    after = model.encode(held_out, normalize_embeddings=True)

    def margin(vectors: np.ndarray) -> float:  # same-label minus cross-label mean cosine, held-out texts
        sims = vectors @ vectors.T
        same = np.equal.outer(held_y, held_y) & ~np.eye(6, dtype=bool)
        return float(sims[same].mean() - sims[~np.equal.outer(held_y, held_y)].mean())

    assert margin(after) > margin(before) + 0.1

    archive, sha = pack(model)
    assert len(sha) == 64 and len(archive) > 10_000
    again = _load(str(unpack(archive, tmp_path / "unpacked")))
    assert np.allclose(again.encode(held_out, normalize_embeddings=True), after, atol=1e-5)


@pytest.mark.airflow
def test_finetune_dag_registers_an_encoder_and_gates_it_against_the_serving_model(
    db, minilm, run_dag, tiny_encoder
) -> None:
    dataset_id = make_dataset(db, "finetune", demo(200, seed=41))
    label(db, dataset_id, 140)
    tuning = {
        "dataset_id": dataset_id,
        "base_model": f"st:{tiny_encoder}",
        "pair_iterations": 2,
        "max_pairs": 160,
        "finetune_lr": 0.001,
        "min_f1": 0.0,
    }
    first = run_dag("finetune_encoder", tuning)
    assert first.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        encoder = s.scalar(select(EmbeddingModel).where(EmbeddingModel.dataset_id == dataset_id))
        assert encoder.name.startswith(f"ft:ds{dataset_id}-") and encoder.dimension == 32
        assert len(encoder.artifact_sha256) == 64 and encoder.origin["base_model"] == f"st:{tiny_encoder}"
        n_items = s.scalar(select(func.count()).select_from(Task).where(Task.dataset_id == dataset_id))
        vectors = s.scalar(select(func.count()).select_from(Embedding).where(Embedding.model_id == encoder.id))
        assert vectors == n_items == 200  # the whole dataset re-embedded, evaluation items included
        experiment = s.scalar(select(Experiment).where(Experiment.run_id == first.run_id))
        assert experiment.status == "finished" and experiment.embedding_model_id == encoder.id
        assert experiment.params["finetune"]["pair_iterations"] == 2 and len(experiment.epochs) >= 1
        tuned = s.scalar(select(ModelVersion).where(ModelVersion.experiment_id == experiment.id))
        assert tuned.kind == "setfit" and tuned.embedding_model_id == encoder.id
        assert tuned.status == ModelStatus.PROMOTED and tuned.gate["incumbent"] is None  # first model, min_f1 0
        eval_hashes = set(s.scalars(select(EvalItem.text_hash).where(EvalItem.dataset_id == dataset_id)))
        tuned_on = set(s.scalars(select(ExperimentItem.text_hash).where(ExperimentItem.experiment_id == experiment.id)))
        assert eval_hashes and tuned_on and not eval_hashes & tuned_on  # the evaluation set was never paired

    # Scoring and pre-labeling serve with the tuned encoder, loaded from its registry row.
    scored = run_dag("score_uncertainty", {"dataset_id": dataset_id})
    assert scored.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == scored.run_id, Job.step == "score_uncertainty"))
        assert job.status.value == "success" and tuned.version in job.message
        unscored = s.scalar(
            select(func.count()).select_from(Task).where(Task.dataset_id == dataset_id, Task.priority.is_(None))
        )
    assert unscored < 200 - 140

    # A head on the frozen MiniLM must now beat the tuned encoder's model, each on its own vectors.
    frozen = run_dag("train_classifier", {"dataset_id": dataset_id, "force": True})
    assert frozen.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        experiment = s.scalar(select(Experiment).where(Experiment.run_id == frozen.run_id))
        head = s.scalar(select(ModelVersion).where(ModelVersion.experiment_id == experiment.id))
        assert head.embedding_model_id != encoder.id
        assert head.gate["incumbent"] is not None  # compared with the serving (tuned) model
        assert head.gate["eval_size"] == tuned.gate["eval_size"]


def test_the_loop_retunes_when_labels_reach_the_setting_and_then_trains_on_the_tuned_encoder(db, tiny_encoder) -> None:
    """The nightly loop's training step (entrypoints.loop_train, the DAG's train_classifier task)."""
    from include.pipelines import entrypoints
    from include.services import retune

    dataset_id = make_dataset(db, "retune", demo(120, seed=43))
    label(db, dataset_id, 40)
    # The scheduled loop's params leave retune_at_labels empty: the dataset's own setting decides.
    context = {"params": {"base_model": f"st:{tiny_encoder}", "pair_iterations": 2, "min_f1": 0.0}}
    with session_scope(db) as s:
        assert retune.due(s, dataset_id) is None  # automatic: never on a CPU-only worker
        assert retune.next_tune_at(s, s.get_one(Dataset, dataset_id), gpu=True) == retune.AUTO_RETUNE_AT
        retune.set_threshold(s.get_one(Dataset, dataset_id), 60)
        with pytest.raises(ValueError, match="must be between 20 and 10000000, or 0"):
            retune.set_threshold(s.get_one(Dataset, dataset_id), 10)
    with session_scope(db) as s:
        assert retune.due(s, dataset_id) is None  # 40 labeled tasks: not yet
        assert retune.serving_encoder(s, dataset_id) is None

    label(db, dataset_id, 20)
    tuned = entrypoints.loop_train(context, dataset_id)
    with session_scope(db) as s:
        encoder = retune.last_tuned(s, dataset_id)
        assert encoder is not None and encoder.origin["labeled_tasks"] == 60
        assert s.scalar(select(Job.step).where(Job.dataset_id == dataset_id)) == "finetune_encoder"
    gated = entrypoints.gate(context, tuned, dataset_id)
    assert gated["promoted"] is True, gated
    with session_scope(db) as s:
        assert retune.serving_encoder(s, dataset_id) == encoder.name
        assert retune.due(s, dataset_id) is None  # tuned at 60, and 60 have not doubled
        assert retune.next_tune_at(s, s.get_one(Dataset, dataset_id), gpu=False) == 120

    # New labels: the next head trains on the serving tuned encoder, not on a frozen default.
    label(db, dataset_id, 30)
    trained = entrypoints.loop_train(context, dataset_id)
    with session_scope(db) as s:
        experiment = s.scalar(select(Experiment).where(Experiment.id == trained["experiment_id"]))
        assert experiment.embedding_model_id == encoder.id and experiment.params.get("finetune") is None
        assert retune.last_tuned(s, dataset_id).id == encoder.id  # no second tune
        label_count = retune.labeled_tasks(s, dataset_id)
    assert label_count == 90

    label(db, dataset_id, 30)  # 120 = twice the 60 it was tuned at
    with session_scope(db) as s:
        reason, by_run = retune.due(s, dataset_id), retune.due(s, dataset_id, 500)
    assert reason is not None and "2x the 60" in reason
    assert by_run is None  # a run's own setting (500) wins over the dataset's
    with session_scope(db) as s:
        retune.set_threshold(s.get_one(Dataset, dataset_id), 0)
    with session_scope(db) as s:
        assert retune.due(s, dataset_id, gpu=True) is None  # 0: never, even on a GPU
        retune.set_threshold(s.get_one(Dataset, dataset_id), 60)
        assert retune.due(s, dataset_id, 0, gpu=True) is None  # a run's 0 is never too, whatever the dataset says


def test_the_automatic_retune_follows_the_training_device(db, caplog: pytest.LogCaptureFixture) -> None:
    """No setting: a GPU worker tunes at AUTO_RETUNE_AT labeled tasks, a CPU-only one never does."""
    from include.pipelines import loop_train
    from include.services import retune

    dataset_id = make_dataset(db, "auto-retune", demo(150, seed=47))
    label(db, dataset_id, retune.AUTO_RETUNE_AT)
    with session_scope(db) as s:
        assert s.get_one(Dataset, dataset_id).retune_at_labels is None
        assert retune.due(s, dataset_id, gpu=False) is None
        reason = retune.due(s, dataset_id, gpu=True)
    assert reason is not None and f"retune_at_labels={retune.AUTO_RETUNE_AT}" in reason
    # The loop's decision probes the device of the worker it runs on.
    with caplog.at_level("INFO", logger="include.pipelines.loop_train"):
        assert loop_train.choose(db, dataset_id, None).retune is None  # this machine has no GPU
    assert "no encoder tune (CPU-only worker; run setting the dataset's, dataset setting automatic): next at never" in (
        caplog.text
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop_train, "torch_device", lambda: "cuda")
        assert loop_train.choose(db, dataset_id, None).retune == reason
        assert loop_train.choose(db, dataset_id, 0).retune is None  # a run's 0 is never, even on a GPU


def test_a_retried_tune_keeps_what_the_killed_try_committed(db, tiny_encoder) -> None:
    """Killed after the tune committed, before Airflow heard: the retry hands the gate that model
    instead of tuning again (minutes on a GPU, far more on CPU)."""
    from include.pipelines.finetune_encoder import run_finetune_encoder
    from include.pipelines.runner import RunRef

    dataset_id = make_dataset(db, "tune-retry", demo(80, seed=53))
    label(db, dataset_id, 60)
    run = {"dag_id": "finetune_encoder", "run_id": "manual__tune-retry", "task_id": "finetune_encoder"}
    tuning = FinetuneParams(pair_iterations=2, max_pairs=80, lr=1e-3, seed=5)
    values = FinetuneValues(dataset_id=dataset_id, tuning=tuning, base_model=f"st:{tiny_encoder}")
    first = run_finetune_encoder(db, RunRef(**run, try_number=1), values)
    retry = run_finetune_encoder(db, RunRef(**run, try_number=2), values)
    assert (retry["model_id"], retry["encoder"]) == (first["model_id"], first["encoder"])
    with session_scope(db) as s:
        assert s.scalar(select(func.count()).select_from(Experiment).where(Experiment.dataset_id == dataset_id)) == 1
        job = s.scalars(select(Job).where(Job.run_id == run["run_id"])).one()
        assert job.status.value == "success" and "trained by an earlier try" in job.message
