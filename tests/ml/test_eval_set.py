"""The frozen evaluation set on real PostgreSQL: chosen by text hash, sticky, never trained on;
and the gate judging heads on it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from include.db.models import (
    Dataset,
    EvalItem,
    Experiment,
    ExperimentItem,
    Item,
    Job,
    ModelStatus,
    ModelVersion,
    Task,
    TaskStatus,
)
from include.db.session import session_scope
from include.demo.texts import DEMO_LABELS, generate_demo_texts
from include.ml.gate import GatePolicy
from include.ml.training.params import TrainParams
from include.pipelines.catalog import GateValues, TrainValues
from include.pipelines.runner import RunRef
from include.pipelines.train_classifier import run_train_classifier
from include.pipelines.training.gate import run_gate
from include.services import eval_set
from include.services.datasets import add_items, create_dataset
from include.services.eval_set import EvalSetError
from include.services.privacy import SYNTHETIC

_ls_ids = itertools.count(50_000_000)


def make_dataset(db: str, name: str, texts: list[tuple[str, str]], *, eval_labels: str = "any") -> int:
    """Items with shadow tasks (made-up Label Studio ids): the eval set does not need Label Studio.

    ``eval_labels``: what counts for evaluation; "any" here, as :func:`label` gives single labels
    (the review stage's own tests, tests/webapp/test_review.py, use the default policy)."""
    with session_scope(db) as s:
        ds = create_dataset(s, name, labels=list(DEMO_LABELS), privacy=SYNTHETIC)
        ds.eval_labels = eval_labels
        add_items(s, ds, [(t, {"truth": label}) for t, label in texts])
        items = s.execute(select(Item.id).where(Item.dataset_id == ds.id).order_by(Item.id)).scalars().all()
        s.add_all(
            Task(dataset_id=ds.id, item_id=i, ls_project_id=1, ls_task_id=next(_ls_ids), status=TaskStatus.IMPORTED)
            for i in items
        )
        return ds.id


def label(db: str, dataset_id: int, n: int | None = None, *, conflict_every: int = 0) -> None:
    """Label the first ``n`` unlabeled tasks with their true label, as an export would."""
    with session_scope(db) as s:
        rows = s.execute(
            select(Task, Item.source)
            .join(Item, Item.id == Task.item_id)
            .where(Task.dataset_id == dataset_id, Task.status == TaskStatus.IMPORTED)
            .order_by(Task.id)
            .limit(n)
        ).all()
        for k, (task, source) in enumerate(rows):
            if conflict_every and k % conflict_every == 0:
                task.status = TaskStatus.CONFLICT
            else:
                task.status, task.label = TaskStatus.LABELED, source["truth"]


def current(db: str, dataset_id: int, refresh: bool = True) -> eval_set.EvalSet:
    with session_scope(db) as s:
        ds = s.get_one(Dataset, dataset_id)
        return eval_set.refresh(s, ds) if refresh else eval_set.current_set(s, ds)


def demo(n: int, seed: int = 5) -> list[tuple[str, str]]:
    return [(t.text, t.true_label) for t in generate_demo_texts(n, seed=seed)]


def test_membership_is_chosen_by_hash_and_stays_put(db) -> None:
    texts = demo(300)
    first = make_dataset(db, "eval-a", texts)
    label(db, first)
    a = current(db, first)
    assert current(db, first) == a  # re-runs change nothing
    # The same texts labeled in another order, in another dataset: the same members.
    second = make_dataset(db, "eval-b", list(reversed(texts)))
    label(db, second, 150)
    label(db, second)
    b = current(db, second)
    assert b.hashes == a.hashes and b.version == a.version
    share = a.size / 300
    assert 0.12 < share < 0.3  # about eval_fraction (0.2)
    assert min(a.per_label.values()) >= 10
    # A new policy admits no text that is already labeled and kept, and drops no member.
    with session_scope(db) as s:
        ds = s.get_one(Dataset, first)
        eval_set.set_policy(s, ds, eval_set.EvalPolicy(eval_fraction=0.05, eval_min_per_label=5, eval_cap=1000))
        after = eval_set.refresh(s, ds)
    assert after.hashes == a.hashes


def test_the_eval_set_is_never_trained_on_and_trained_texts_never_join(db, minilm, tmp_path: Path) -> None:
    dataset_id = make_dataset(db, "eval-train", demo(260, seed=9))
    label(db, dataset_id, 120)
    trained = run_train_classifier(
        db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic")), embedder=minilm
    )
    reserved = current(db, dataset_id, refresh=False)
    with session_scope(db) as s:
        used = set(
            s.scalars(select(ExperimentItem.text_hash).where(ExperimentItem.experiment_id == trained["experiment_id"]))
        )
    assert used and not used & reserved.hashes
    assert len(used) + reserved.size == 120
    # Tighten the policy later: texts a model trained on cannot become evaluation items.
    label(db, dataset_id)
    with session_scope(db) as s:
        ds = s.get_one(Dataset, dataset_id)
        eval_set.set_policy(s, ds, eval_set.EvalPolicy(eval_fraction=0.5, eval_min_per_label=10, eval_cap=1000))
        grown = eval_set.refresh(s, ds)
    assert grown.size > reserved.size and not grown.hashes & used
    retrained = run_train_classifier(
        db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic")), embedder=minilm
    )
    with session_scope(db) as s:
        used_again = set(
            s.scalars(
                select(ExperimentItem.text_hash).where(ExperimentItem.experiment_id == retrained["experiment_id"])
            )
        )
    assert not used_again & grown.hashes


def test_conflicts_wait_and_admins_add_and_drop_gold_items(db) -> None:
    dataset_id = make_dataset(db, "eval-gold", demo(120, seed=2))
    label(db, dataset_id, conflict_every=7)
    before = current(db, dataset_id)
    with session_scope(db) as s:
        conflicted = s.scalars(
            select(Task.id).where(Task.dataset_id == dataset_id, Task.status == TaskStatus.CONFLICT)
        ).all()
        member_ids = eval_set.member_task_ids(s, dataset_id)
        outside = s.scalars(
            select(Task.id).where(
                Task.dataset_id == dataset_id, Task.status == TaskStatus.LABELED, Task.id.not_in(member_ids)
            )
        ).first()
        ds = s.get_one(Dataset, dataset_id)
        with pytest.raises(EvalSetError, match="conflict: only labeled tasks"):
            eval_set.set_membership(s, ds, conflicted[0], True, None)
        assert "is now an evaluation item" in eval_set.set_membership(s, ds, outside, True, None)
    gold = current(db, dataset_id)
    assert gold.size == before.size + 1 and gold.version != before.version
    with session_scope(db) as s:
        ds = s.get_one(Dataset, dataset_id)
        eval_set.set_membership(s, ds, outside, False, None)
    dropped = current(db, dataset_id)
    assert dropped.size == before.size and dropped.excluded == 1
    # A text some model trained on cannot be added.
    with session_scope(db) as s:
        s.execute(update(Task).where(Task.id == outside).values(first_trained_at=Task.created_at))
        with pytest.raises(EvalSetError, match="was used to train a model"):
            eval_set.set_membership(s, s.get_one(Dataset, dataset_id), outside, True, None)


def test_the_gate_on_the_eval_set(db, minilm, tmp_path: Path) -> None:
    """More data is promoted; the same model again is rejected with an interval containing 0;
    too few evaluation labels and the gate refuses."""
    dataset_id = make_dataset(db, "eval-gate", demo(700, seed=4))
    with session_scope(db) as s:
        eval_set.set_policy(
            s,
            s.get_one(Dataset, dataset_id),
            eval_set.EvalPolicy(eval_fraction=0.25, eval_min_per_label=10, eval_cap=1000),
        )
    label(db, dataset_id, 40)  # 20 go to evaluation (10 per label), 20 to train on
    params = TrainParams(kind="logistic")

    def train_and_gate(**kwargs: object) -> dict:
        values = TrainValues(dataset_id=dataset_id, hyper=params, **kwargs)
        trained = run_train_classifier(db, RunRef(), values, embedder=minilm)
        return run_gate(
            db, RunRef(), GateValues(dataset_id=dataset_id, policy=GatePolicy(min_f1=0.3)), model_id=trained["model_id"]
        )

    small = train_and_gate()
    assert small["decided"] and small["promoted"], small["reason"]
    label(db, dataset_id)  # all 700: hundreds more to train on, and a bigger eval set
    big = train_and_gate()
    assert big["promoted"] and big["reason"].startswith("better beyond noise"), big["reason"]
    same = train_and_gate(force=True)  # the same data and settings: the same model
    assert not same["promoted"] and same["decided"]
    with session_scope(db) as s:
        record = s.get_one(ModelVersion, same["model_id"]).gate
        statuses = {m.version: m.status for m in s.scalars(select(ModelVersion))}
    vs = record["versus_incumbent"]
    assert vs["low"] <= 0 <= vs["high"] and record["eval_version"] == same["eval_version"]
    assert record["candidate"]["f1"] == pytest.approx(record["incumbent"]["f1"], abs=0.02)
    assert statuses[big["version"]] == ModelStatus.PROMOTED and statuses[small["version"]] == ModelStatus.RETIRED
    # A fresh dataset with too few evaluation labels for one label: the gate refuses to guess.
    thin = make_dataset(
        db, "eval-thin", [(t, "OK") for t, _ in demo(60, seed=8)] + [(t, "NG") for t, _ in demo(8, seed=3)]
    )
    with session_scope(db) as s:
        eval_set.set_policy(
            s, s.get_one(Dataset, thin), eval_set.EvalPolicy(eval_fraction=0.5, eval_min_per_label=2, eval_cap=1000)
        )
    label(db, thin)
    trained = run_train_classifier(
        db, RunRef(), TrainValues(dataset_id=thin, hyper=params, min_labels=10), embedder=minilm
    )
    have = current(db, thin, refresh=False).per_label
    assert have["NG"] < have["OK"]
    refused = run_gate(
        db,
        RunRef(),
        GateValues(dataset_id=thin, policy=GatePolicy(min_eval_per_label=have["NG"] + 3)),
        model_id=trained["model_id"],
    )
    assert not refused["decided"] and not refused["promoted"]
    assert refused["reason"] == "not enough evaluation labels to decide: needs 3 more evaluation labels for NG"
    with session_scope(db) as s:
        assert s.get_one(ModelVersion, trained["model_id"]).status == ModelStatus.CANDIDATE


def test_a_retry_after_the_work_committed_keeps_the_model_for_the_gate(db, minilm) -> None:
    """A worker killed after training committed, before Airflow heard of it: the retry keeps that
    model (no second experiment, no "no new labels" skip that would leave it ungated)."""
    from include.db.models import Job, JobAttempt

    dataset_id = make_dataset(db, "retry-after-commit", demo(150, seed=13))
    label(db, dataset_id, 110)
    run = {"dag_id": "train_classifier", "run_id": "manual__retry-after-commit", "task_id": "train_classifier"}
    first = run_train_classifier(
        db,
        RunRef(**run, try_number=1),
        TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic")),
        embedder=minilm,
    )
    retry = run_train_classifier(
        db,
        RunRef(**run, try_number=2),
        TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic")),
        embedder=minilm,
    )
    assert retry["model_id"] == first["model_id"] and retry["experiment_id"] == first["experiment_id"]
    with session_scope(db) as s:
        assert s.scalar(select(func.count()).select_from(Experiment).where(Experiment.dataset_id == dataset_id)) == 1
        job = s.scalars(select(Job).where(Job.run_id == run["run_id"])).one()
        attempts = s.scalars(select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.try_number))
        assert job.status.value == "success" and "trained by an earlier try" in job.message
        assert [a.state.value for a in attempts] == ["success", "success"]
    gated = run_gate(
        db,
        RunRef(**run, try_number=1),
        GateValues(dataset_id=dataset_id, policy=GatePolicy(min_f1=0.0)),
        model_id=retry["model_id"],
    )
    assert gated["promoted"] is True
    # Another run on the same labels still skips: only the same run's own model is kept.
    other = run_train_classifier(
        db,
        RunRef(run_id="manual__other"),
        TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic")),
        embedder=minilm,
    )
    assert other.get("skipped") is True and "no new labels" in other["reason"]


def test_two_gates_on_one_dataset_take_turns(db, minilm, monkeypatch) -> None:
    """train_classifier and the nightly loop (or finetune_encoder) may judge candidates of one
    dataset at once: the later gate faces the earlier one's winner, never the incumbent both
    read at the start, so no winner is retired by a model that never faced it."""
    import threading
    import time

    from include.pipelines.training import gate as gate_step

    dataset_id = make_dataset(db, "two-gates", demo(200, seed=21))
    label(db, dataset_id)
    values = TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic"))
    first = run_train_classifier(db, RunRef(run_id="a"), values, embedder=minilm)
    second = run_train_classifier(db, RunRef(run_id="b"), values.replace(force=True), embedder=minilm)
    real_judge = gate_step._judge

    def slow_judge(*args, **kwargs):
        judged = real_judge(*args, **kwargs)
        time.sleep(1.0)  # both gates are judging at once
        return judged

    monkeypatch.setattr(gate_step, "_judge", slow_judge)
    results: dict[int, dict] = {}
    errors: list[BaseException] = []

    def gate(model_id: int) -> None:
        try:
            results[model_id] = run_gate(
                db, RunRef(run_id=f"gate-{model_id}"), GateValues(dataset_id=dataset_id, policy=GatePolicy(min_f1=0.3)),
                model_id=model_id,
            )  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=gate, args=(m["model_id"],)) for m in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    winner = next(r for r in results.values() if r["faced"] is None)
    later = next(r for r in results.values() if r is not winner)
    assert winner["promoted"] and later["faced"] == winner["model_id"]
    assert not later["promoted"] and later["decided"]  # the same data again: not better beyond noise
    with session_scope(db) as s:
        statuses = {
            m.id: m.status for m in s.scalars(select(ModelVersion).where(ModelVersion.dataset_id == dataset_id))
        }
    assert statuses == {winner["model_id"]: ModelStatus.PROMOTED, later["model_id"]: ModelStatus.REJECTED}


def test_texts_are_reserved_when_training_starts_and_the_gate_leaves_out_what_a_model_saw(
    db, minilm, monkeypatch
) -> None:
    """An evaluation refresh during a long run (an admin widening the set, an export's refresh)
    cannot admit the run's training texts; and a text a model did see (a database trained before
    texts were reserved) is left out when the gate judges that model."""
    from include.pipelines import train_classifier as train_module

    dataset_id = make_dataset(db, "reserved", demo(240, seed=31))
    label(db, dataset_id)
    real_train = train_module.train_head

    def train_while_the_set_grows(*args, **kwargs):
        with session_scope(db) as s:  # mid-run: a policy that would take half of all labels
            eval_set.set_policy(
                s, s.get_one(Dataset, dataset_id), eval_set.EvalPolicy(eval_fraction=0.5, eval_min_per_label=10)
            )
        return real_train(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_head", train_while_the_set_grows)
    trained = run_train_classifier(
        db, RunRef(run_id="long"), TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind="logistic")),
        embedder=minilm,
    )  # fmt: skip
    monkeypatch.setattr(train_module, "train_head", real_train)
    with session_scope(db) as s:
        seen = set(
            s.scalars(
                select(ExperimentItem.text_hash)
                .join(ModelVersion, ModelVersion.experiment_id == ExperimentItem.experiment_id)
                .where(ModelVersion.id == trained["model_id"])
            )
        )
        members = set(eval_set.eval_hashes(s, dataset_id))
    assert seen and members and not seen & members
    # A leak from before reservation: two trained texts were admitted anyway.
    with session_scope(db) as s:
        leaked = sorted(seen)[:2]
        s.add_all(EvalItem(dataset_id=dataset_id, text_hash=h, source="sample") for h in leaked)
    verdict = run_gate(
        db, RunRef(), GateValues(dataset_id=dataset_id, policy=GatePolicy(min_f1=0.3)), model_id=trained["model_id"]
    )
    assert verdict["left_out"] == 2 and verdict["promoted"]
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.step == "gate").order_by(Job.id.desc()).limit(1))
        assert "2 evaluation texts a model trained on left out" in job.message
