"""Label reliability: Dawid-Skene recovers each annotator's accuracy, keeps known labels, marks a
weak annotator's likely mistakes for review, and weighs training labels by how sure it is."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from include.db.models import Annotation, Dataset, ExtraAssignee, Item, Role, Task
from include.db.session import session_scope
from include.ml.reliability import estimate
from include.ml.training.params import TrainParams
from include.ml.training.train import TrainingDataError, train_head
from include.pipelines.training.data import training_labels
from include.services import reliability, review
from include.services.assignment import auto_assign
from include.services.labeling import submit_label
from include.services.users import create_user
from tests.webapp.factories import dataset_with_tasks

ACCURACY = {"careful": 0.95, "good": 0.9, "sloppy": 0.65}


def _simulate(n: int, seed: int) -> tuple[np.ndarray, list[tuple[int, str, int]]]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    labels = []
    for i in range(n):
        for who in rng.choice(list(ACCURACY), size=2, replace=False):
            said = truth[i] if rng.random() < ACCURACY[who] else 1 - truth[i]
            labels.append((i, str(who), int(said)))
    return truth, labels


def test_dawid_skene_recovers_each_annotators_accuracy_and_beats_the_vote() -> None:
    truth, labels = _simulate(2000, seed=3)
    result = estimate(2000, 2, labels)
    for who, accuracy in ACCURACY.items():
        assert result.accuracy(who) == pytest.approx(accuracy, abs=0.04)
    votes = {}
    for i, _, said in labels:  # the vote, the first label breaking ties
        votes.setdefault(i, []).append(said)
    majority = np.asarray(
        [max(set(v), key=v.count) if v.count(0) != v.count(1) else v[0] for _, v in sorted(votes.items())]
    )
    assert (result.label() == truth).mean() > (majority == truth).mean() + 0.02
    assert np.all((result.weight() >= 0.5) & (result.weight() <= 1.0))


def test_known_labels_stay_put_and_anchor_a_lone_annotator() -> None:
    # One annotator who is always wrong: without anchors the estimate cannot tell; two known items can.
    labels = [(i, "contrary", 1 - (i % 2)) for i in range(40)]
    known = {i: i % 2 for i in range(6)}  # six gold answers: enough to seed their record
    result = estimate(40, 2, labels, known)
    assert list(result.label()[:6]) == [0, 1, 0, 1, 0, 1]
    assert result.accuracy("contrary") < 0.2
    assert (result.label() == np.arange(40) % 2).mean() > 0.9  # it reads the contrary one right


def test_the_weights_change_the_logistic_head_and_the_mlp_refuses_them() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    y[:30] = 1 - y[:30]  # thirty wrong labels...
    weights = np.ones(120)
    weights[:30] = 0.01  # ...that reliability says little about
    params = TrainParams(c=1.0)
    plain = train_head(x, y, ["a", "b"], "test", params).head
    weighted = train_head(x, y, ["a", "b"], "test", params, sample_weight=weights).head
    truth = (x[:, 0] > 0).astype(np.int64)
    accuracy = lambda head: (head.predict_proba(x, device="cpu").argmax(axis=1) == truth).mean()  # noqa: E731
    assert accuracy(weighted) > accuracy(plain)
    with pytest.raises(TrainingDataError, match="logistic head"):
        train_head(x, y, ["a", "b"], "test", TrainParams(kind="mlp", epochs=2), sample_weight=weights)


def test_a_weak_annotators_likely_mistakes_go_to_review_and_training_takes_the_estimate(db) -> None:
    n = 60
    dataset_id, tasks = dataset_with_tasks(db, "reliable", n)
    rng = np.random.default_rng(1)
    truth = ["OK" if k % 2 else "NG" for k in range(n)]
    with session_scope(db) as s:
        people = {
            "careful": create_user(s, "careful", "careful@labelops.test", "pw-careful-123", Role.ANNOTATOR),
            "sloppy": create_user(s, "sloppy", "sloppy@labelops.test", "pw-sloppy-1234", Role.ANNOTATOR),
        }
        carol = create_user(s, "carol", "carol@labelops.test", "pw-carol-12345", Role.REVIEWER)
        auto_assign(s, dataset_id, people["careful"], n)
        for task_id in tasks:
            s.add(ExtraAssignee(task_id=task_id, user_id=people["sloppy"].id))
        s.flush()
        wrong_by_sloppy = set()
        for k, task_id in enumerate(tasks):
            submit_label(s, task_id, people["careful"], truth[k])
            sloppy_says = truth[k] if rng.random() < 0.6 else ("OK" if truth[k] == "NG" else "NG")
            if sloppy_says != truth[k]:
                wrong_by_sloppy.add(task_id)
            submit_label(s, task_id, people["sloppy"], sloppy_says)
        # A reviewer settles ten of the disagreements (for the careful one): they anchor the estimate.
        settled = [t for t in tasks if t in wrong_by_sloppy][:10]
        for task_id in settled:
            careful = s.scalar(
                select(Annotation).where(Annotation.task_id == task_id, Annotation.annotator_id == people["careful"].id)
            )
            review.review_annotation(
                s, careful.id, carol, review.ReviewVerdict(verdict="accept", label_seen=careful.label)
            )
        dataset = s.get_one(Dataset, dataset_id)
        found = reliability.refresh(s, dataset)
        assert found is not None
        assert found.accuracy["careful"] > 0.85 and found.accuracy["sloppy"] < 0.75
        marked = s.scalars(select(Annotation).where(Annotation.suspect.is_not(None))).all()
        suspects = {a.task_id for a in marked}
        sloppy_suspects = {a.task_id for a in marked if a.annotator_id == people["sloppy"].id}
        assert sloppy_suspects and sloppy_suspects <= wrong_by_sloppy  # only real mistakes are suspected
        assert suspects == sloppy_suspects  # and none of the careful one's labels
        queue = review.queue(s, carol, review.ReviewQueueQuery(dataset_id=dataset_id, focus="suspect", limit=200))
        assert {e.task_id for e in queue.items} == sloppy_suspects  # the settled ones too: not reviewed yet
        # Training on the estimate: the labeled tasks (agreements and the settled ones) with their
        # weights; disagreements wait for a review (they are not labeled yet).
        dataset.label_weights, dataset.eval_fraction, dataset.eval_min_per_label = "reliability", 0.0, 0
        s.flush()
    with session_scope(db) as s:
        labels = training_labels(s, s.get_one(Dataset, dataset_id))
        by_hash = dict(list(s.execute(select(Item.text_hash, Task.id).join(Task, Task.item_id == Item.id)).tuples()))
    assert labels.weights is not None and len(labels.weights) == len(labels.examples)
    assert len(labels.examples) == n - len(wrong_by_sloppy) + len(settled)
    assert all(label == truth[tasks.index(by_hash[h])] for h, label in labels.examples)
    assert min(labels.weights) > 0.5 and np.mean(labels.weights) > 0.9
