"""A three-trial sweep through dag.test(): three experiments, the best by validation to the gate,
the others rejected saying which trial won; and a training config used by train_classifier."""

from __future__ import annotations

import pytest
from airflow.utils.state import DagRunState
from sqlalchemy import select

from include.db.models import Experiment, Job, ModelStatus, ModelVersion
from include.db.session import session_scope
from include.services import training_configs
from include.services.datasets import get_dataset
from tests.ml.test_eval_set import demo, label, make_dataset

pytestmark = [pytest.mark.airflow]

SWEEP = """# three trials of the MLP head
model_kind: mlp
epochs: 40
sweep:
  method: grid
  params:
    lr: [0.0001, 0.001, 0.01]
"""


def _config(db: str, dataset_id: int, name: str, body: str) -> int:
    with session_scope(db) as s:
        return training_configs.save(s, get_dataset(s, dataset_id), name, body, None).id


def test_a_three_trial_sweep_gates_the_best(db, minilm, run_dag) -> None:
    dataset_id = make_dataset(db, "sweep", demo(240, seed=31))
    label(db, dataset_id, 160)
    config_id = _config(db, dataset_id, "mlp-lr", SWEEP)
    run = run_dag("sweep", {"dataset_id": dataset_id, "config_id": config_id, "min_f1": 0.3})
    assert run.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        experiments = s.scalars(select(Experiment).where(Experiment.run_id == run.run_id)).all()
        models = {
            m.experiment_id: m for m in s.scalars(select(ModelVersion).where(ModelVersion.dataset_id == dataset_id))
        }
        jobs = {j.step: j for j in s.scalars(select(Job).where(Job.run_id == run.run_id))}
        assert sorted(e.params["trial"] for e in experiments) == [1, 2, 3]
        assert sorted(e.params["lr"] for e in experiments) == [0.0001, 0.001, 0.01]
        assert all(e.params["sweep"] == "mlp-lr" and e.status == "finished" for e in experiments)
        best = max(experiments, key=lambda e: (round(e.metrics["f1"], 6), -e.metrics["val_loss"]))
        losers = [models[e.id] for e in experiments if e is not best]
        assert all(m.status == ModelStatus.REJECTED and "lost to trial" in m.reason for m in losers)
        judged = models[best.id]
        assert judged.status in (ModelStatus.PROMOTED, ModelStatus.REJECTED) and "lost to trial" not in judged.reason
        assert jobs["plan_sweep"].message == "3 trials of mlp-lr (grid)"
        assert jobs["pick_best"].message.startswith(f"trial {best.params['trial']} of 3 is best")
        assert jobs["gate"].status.value == "success"
        ids = training_configs.latest_sweep_experiments(s, dataset_id, "mlp-lr")
    assert ids[0] == best.id and len(ids) == 3


def test_train_classifier_takes_a_config(db, minilm, run_dag) -> None:
    dataset_id = make_dataset(db, "with-config", demo(200, seed=32))
    label(db, dataset_id, 120)
    config_id = _config(db, dataset_id, "strong-l2", "model_kind: logistic\nc: 0.05\n")
    sweep_id = _config(db, dataset_id, "a-sweep", "sweep:\n  params:\n    seed: [1, 2]\n")
    run = run_dag("train_classifier", {"dataset_id": dataset_id, "config_id": config_id, "model_kind": "mlp"})
    assert run.state == DagRunState.SUCCESS
    refused = run_dag("train_classifier", {"dataset_id": dataset_id, "config_id": sweep_id, "force": True})
    assert refused.state == DagRunState.FAILED
    with session_scope(db) as s:
        experiment = s.scalar(select(Experiment).where(Experiment.run_id == run.run_id))
        assert experiment.params["kind"] == "logistic" and experiment.params["c"] == 0.05  # the config wins
        assert experiment.params["config"] == "strong-l2"
        assert [e.metrics["C"] for e in experiment.epochs] == [0.05]
        message = s.scalar(select(Job.message).where(Job.run_id == refused.run_id, Job.step == "train_classifier"))
    assert "is a sweep: run the sweep pipeline with it" in message


def test_an_optuna_sweep_asks_each_trial_from_the_results_before_it(db, minilm, run_dag) -> None:
    dataset_id = make_dataset(db, "optuna", demo(200, seed=33))
    label(db, dataset_id, 120)
    body = (
        "model_kind: logistic\nsweep:\n  method: optuna\n  trials: 3\n"
        "  params:\n    c: {low: 0.01, high: 100, log: true}\n"
    )
    config_id = _config(db, dataset_id, "c-search", body)
    run = run_dag("sweep", {"dataset_id": dataset_id, "config_id": config_id, "min_f1": 0.3})
    assert run.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        experiments = sorted(
            s.scalars(select(Experiment).where(Experiment.run_id == run.run_id)).all(), key=lambda e: e.params["trial"]
        )
        jobs = {j.step: j for j in s.scalars(select(Job).where(Job.run_id == run.run_id))}
        assert [e.params["trial"] for e in experiments] == [1, 2, 3]
        suggested = [e.params["suggested"]["c"] for e in experiments]
        assert all(0.01 <= c <= 100 for c in suggested) and len(set(suggested)) == 3
        assert [e.params["c"] for e in experiments] == suggested  # trained with what Optuna asked for
        assert [e.metrics["C"] for e in experiments] == pytest.approx(suggested)
        assert jobs["plan_sweep"].message == "3 trials of c-search (optuna)"
        assert jobs["gate"].status.value == "success"
