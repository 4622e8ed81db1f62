"""Overlap: a share of tasks goes to two annotators, both labels reach Label Studio, and the
agreement figures match scikit-learn's on the same pairs."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import func, select

from include.db.models import Annotation, Dataset, ExtraAssignee, Role, Task, TaskStatus, User
from include.db.session import session_scope
from include.pipelines.catalog import ImportValues
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.services import quality
from include.services.assignment import AssignmentError, auto_assign
from include.services.datasets import add_items, create_dataset
from include.services.labeling import submit_label
from include.services.privacy import SYNTHETIC
from include.services.task_queries import annotator_tasks, next_task
from include.services.users import create_user
from include.workers.label_dispatcher import deliver_due

pytestmark = pytest.mark.labelstudio


def test_overlap_gives_two_annotations_and_kappa_matches_sklearn(db, ls) -> None:
    with session_scope(db) as s:
        alice = create_user(s, "alice", "alice@overlap.test", "alice-password-1", Role.ANNOTATOR)
        bob = create_user(s, "bob", "bob@overlap.test", "bob-password-12", Role.ANNOTATOR)
        ds = create_dataset(s, "overlap", labels=["OK", "NG", "MAYBE"], privacy=SYNTHETIC)
        ds.overlap_share = 0.5
        add_items(s, ds, [(f"overlap text {i}", {}) for i in range(40)])
        dataset_id, alice_id, bob_id = ds.id, alice.id, bob.id
    run_ls_import(db, ls.client(), RunRef(), ImportValues(dataset_id=dataset_id))

    with session_scope(db) as s:
        mine = auto_assign(s, dataset_id, s.get(User, alice_id), 20, overlap_share=0.5)
        assert len(mine) == 20  # nobody else has tasks yet: all fresh
        theirs = auto_assign(s, dataset_id, s.get(User, bob_id), 20, overlap_share=0.5)
        shared = set(theirs) & set(mine)
        assert len(theirs) == 20 and len(shared) == 10
        assert s.scalar(select(func.count()).select_from(ExtraAssignee)) == 10
        with pytest.raises(AssignmentError, match="between 0 and 1"):
            auto_assign(s, dataset_id, s.get(User, bob_id), 5, overlap_share=1.5)
        # bob sees the shared tasks among his own, and they come up in his queue
        page = annotator_tasks(s, s.get(User, bob_id), per_page=100)
        assert {t.id for t in page.items} == set(theirs)
        assert next_task(s, s.get(User, bob_id)) is not None

    labels = ["OK", "NG", "MAYBE"]
    a_votes: dict[int, str] = {}
    b_votes: dict[int, str] = {}
    with session_scope(db) as s:
        for k, task_id in enumerate(sorted(mine)):
            a_votes[task_id] = labels[k % 3]
            submit_label(s, task_id, s.get(User, alice_id), a_votes[task_id])
        for k, task_id in enumerate(sorted(theirs)):
            # bob agrees on most shared tasks and disagrees on every third
            vote = a_votes[task_id] if task_id in shared and k % 3 else labels[(k + 1) % 3]
            b_votes[task_id] = vote
            submit_label(s, task_id, s.get(User, bob_id), vote)
    while deliver_due(db, ls.client()).claimed:
        pass

    with session_scope(db) as s:
        rows = s.execute(select(Task.id, Task.ls_task_id, Task.status, Task.label).where(Task.id.in_(shared))).all()
    client = ls.client()
    for task_id, ls_task_id, status, final in rows:
        in_ls = client.request("GET", f"/api/tasks/{ls_task_id}")["annotations"]
        assert len(in_ls) == 2, task_id
        if a_votes[task_id] == b_votes[task_id]:
            assert (status, final) == (TaskStatus.LABELED, a_votes[task_id])
        else:
            assert status == TaskStatus.CONFLICT  # the existing conflict flow takes it from here

    common = sorted(shared)
    expected = cohen_kappa_score([a_votes[t] for t in common], [b_votes[t] for t in common])
    with session_scope(db) as s:
        figures = quality.agreement(s, s.get(Dataset, dataset_id))
        assert s.scalar(select(func.count(Annotation.id)).where(Annotation.task_id.in_(shared))) == 20
    (pair,) = figures["pairs"]
    assert (pair["a"], pair["b"], pair["tasks"]) == ("alice", "bob", 10)
    assert pair["kappa"] == round(float(expected), 4)
    assert pair["agreement"] == round(sum(a_votes[t] == b_votes[t] for t in common) / 10, 4)
    assert figures["overlap_tasks"] == 10
    agreed = [t for t in common if a_votes[t] == b_votes[t]]
    by_person = {v["annotator"]: v for v in figures["versus_final"]}
    assert by_person["alice"]["tasks"] == len(agreed) == by_person["bob"]["tasks"]  # conflicts have no final label yet
    assert by_person["alice"]["agreement"] == 1.0
