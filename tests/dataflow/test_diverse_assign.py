"""Auto-assign's batch strategies on the real database: diverse batches skip near-duplicates,
a cold start takes representatives, and without embeddings it is plain priority order."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from include.db.models import Item, Role, Task, User
from include.db.session import session_scope
from include.services.assignment import AssignmentError, auto_assign
from include.services.users import create_user
from include.services.vectors import register_model, write_embeddings
from tests.webapp.factories import dataset_with_tasks


def _embed_in_clusters(db: str, dataset_id: int, membership: np.ndarray, name: str) -> None:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(membership.max() + 1, 32)) * 3
    vectors = centres[membership] + rng.normal(size=(len(membership), 32)) * 0.01
    with session_scope(db) as s:
        hashes = s.scalars(select(Item.text_hash).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        model = register_model(s, name, "sentence_transformers", name, 32)
        write_embeddings(s, model.id, list(hashes), vectors.astype(np.float32))


def _annotator(db: str, name: str) -> int:
    with session_scope(db) as s:
        return create_user(s, name, f"{name}@diverse.test", "password-123", Role.ANNOTATOR).id


def test_diverse_auto_assign_takes_from_every_cluster_of_uncertain_tasks(db) -> None:
    membership = np.repeat([0, 1, 2, 3], [20, 20, 20, 60])
    # Cluster 0 holds the 20 most uncertain tasks: strictly by priority, a batch of 6 is all cluster 0.
    # Cluster 3 is confident: a diverse batch looks among the 60 most uncertain only.
    priorities = [int(p) for p in np.choose(membership, [900, 700, 650, 100])]
    dataset_id, task_ids = dataset_with_tasks(db, "diverse", 120, priorities=priorities)
    with session_scope(db) as s:
        for task_id, p in zip(task_ids, priorities, strict=True):
            s.execute(update(Task).where(Task.id == task_id).values(uncertainty_score=p / 1000))
    _embed_in_clusters(db, dataset_id, membership, "diverse-test-emb")
    cluster_of = dict(zip(task_ids, membership.tolist(), strict=True))
    alice, bob = _annotator(db, "div-alice"), _annotator(db, "div-bob")
    with session_scope(db) as s:
        top = auto_assign(s, dataset_id, s.get(User, alice), 6, strategy="top")
        diverse = auto_assign(s, dataset_id, s.get(User, bob), 6)  # diverse is the default
        with pytest.raises(AssignmentError, match="strategy must be one of"):
            auto_assign(s, dataset_id, s.get(User, bob), 6, strategy="random")
    assert {cluster_of[t] for t in top} == {0}
    assert len(diverse) == 6 and not set(diverse) & set(top)
    assert {cluster_of[t] for t in diverse} == {0, 1, 2}  # three clusters of uncertain tasks, none confident
    assert cluster_of[diverse[0]] == 0  # hardest first


def test_cold_start_assigns_representatives_and_no_embeddings_means_priority_order(db) -> None:
    membership = np.repeat([0, 1, 2, 3], [70, 20, 20, 10])
    dataset_id, task_ids = dataset_with_tasks(db, "cold", 120)
    _embed_in_clusters(db, dataset_id, membership, "cold-test-emb")
    cluster_of = dict(zip(task_ids, membership.tolist(), strict=True))
    plain_id, plain_tasks = dataset_with_tasks(db, "plain", 30, priorities=list(range(30)))
    carol = _annotator(db, "div-carol")
    with session_scope(db) as s:
        cold = auto_assign(s, dataset_id, s.get(User, carol), 4, strategy="diverse")
        plain = auto_assign(s, plain_id, s.get(User, carol), 5)
    assert sorted(cluster_of[t] for t in cold) == [0, 1, 2, 3]  # random picks would mostly be cluster 0
    assert set(plain) == set(plain_tasks[-5:])  # nothing embedded: highest priority first


def test_scoring_can_make_the_head_of_the_queue_diverse(db) -> None:
    from include.services.batch_selection import diversify_queue_head
    from include.services.task_queries import priority_tasks

    # Three small clusters of uncertain texts (all among the 10 x 3 candidates) and a confident one.
    membership = np.repeat([0, 1, 2, 3], [8, 8, 8, 96])
    uncertainty = np.choose(membership, [0.45, 0.40, 0.38, 0.05]) + np.linspace(0, 0.01, 120)
    priorities = [int(u * 1000) for u in uncertainty]
    dataset_id, task_ids = dataset_with_tasks(db, "queue-head", 120, priorities=priorities)
    with session_scope(db) as s:
        for task_id, u in zip(task_ids, uncertainty, strict=True):
            s.execute(update(Task).where(Task.id == task_id).values(uncertainty_score=float(u)))
    _embed_in_clusters(db, dataset_id, membership, "queue-head-emb")
    cluster_of = dict(zip(task_ids, membership.tolist(), strict=True))
    with session_scope(db) as s:
        moved = diversify_queue_head(s, dataset_id, 3)
        head = [t.id for t in priority_tasks(s, dataset_id, limit=3)]
        rows = {t.id: t for t in s.scalars(select(Task).where(Task.dataset_id == dataset_id))}
    assert moved > 0
    assert sorted(cluster_of[t] for t in head) == [0, 1, 2]  # one per cluster of uncertain texts
    for task_id, u in zip(task_ids, uncertainty, strict=True):
        assert rows[task_id].uncertainty_score == pytest.approx(u)  # only the order changed
        if task_id in head:
            assert rows[task_id].priority == int(u * 1000)  # the seed's formula for the batch itself
