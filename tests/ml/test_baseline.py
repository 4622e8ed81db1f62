"""The LLM baseline probe against a local server speaking the OpenAI and Ollama contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from include.config import load_settings
from include.db.models import ModelEvaluation, ModelStatus, ModelVersion
from include.db.session import session_scope
from include.ml.gate import GatePolicy
from include.ml.training.params import TrainParams
from include.pipelines.baseline_probe import run_baseline_probe
from include.pipelines.catalog import BaselineValues, GateValues, TrainValues
from include.pipelines.runner import RunRef
from include.pipelines.train_classifier import run_train_classifier
from include.pipelines.training.gate import run_gate
from tests.ml.test_eval_set import current, demo, label, make_dataset


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_the_probe_records_a_baseline_and_counts_contract_violations(db, llm_server, backend: str) -> None:
    dataset_id = make_dataset(db, f"probe-{backend}", demo(200, seed=6))
    label(db, dataset_id)
    evaluation = current(db, dataset_id)
    llm_server.malformed_every = 5  # every fifth answer breaks the contract (three different ways)
    settings = load_settings(
        {"OPENAI_BASE_URL": f"{llm_server.url}/v1", "OPENAI_MODEL": "gpt-test", "OLLAMA_BASE_URL": llm_server.url}
    )
    result = run_baseline_probe(db, RunRef(), settings, BaselineValues(dataset_id=dataset_id, backend=backend))
    n = evaluation.size
    assert result["answers"] == n
    broken = n // 5
    assert result["valid_share"] == pytest.approx((n - broken) / n)
    problems = result["problems"]
    assert sum(problems.values()) == broken and problems["failed"] == 0
    assert problems["not_json"] > 0 and problems["label_not_in_set"] > 0 and problems["bad_confidence"] > 0
    assert result["json_share"] == pytest.approx((n - problems["not_json"]) / n)
    assert result["latency_ms"]["p50"] > 0 and result["latency_ms"]["p95"] >= result["latency_ms"]["p50"]
    assert 0.5 < result["macro_f1"] < 1.0  # the stub's keyword rule, minus the broken answers
    with session_scope(db) as s:
        model = s.get_one(ModelVersion, result["model_id"])
        evaluation_row = s.scalar(select(ModelEvaluation).where(ModelEvaluation.model_id == model.id))
    assert model.status == ModelStatus.BASELINE and model.metrics["contract"]["answers"] == n
    assert evaluation_row.eval_version == evaluation.version
    assert evaluation_row.report["unanswered"] == broken
    assert len(evaluation_row.report["predictions"]) == n


def test_the_gate_can_require_beating_the_baseline(db, llm_server, minilm, tmp_path: Path) -> None:
    dataset_id = make_dataset(db, "probe-gate", demo(300, seed=7))
    label(db, dataset_id, 60)
    settings = load_settings({"OPENAI_BASE_URL": f"{llm_server.url}/v1", "OPENAI_MODEL": "gpt-test"})
    probe = run_baseline_probe(db, RunRef(), settings, BaselineValues(dataset_id=dataset_id, backend="openai"))
    assert probe["macro_f1"] > 0.7
    weak = TrainParams(kind="logistic", epochs=1, lr=1e-5)  # barely trained: near chance

    def gate(require_baseline: bool) -> tuple[dict, dict]:
        trained = run_train_classifier(
            db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=weak, force=True), embedder=minilm
        )
        verdict = run_gate(
            db,
            RunRef(),
            GateValues(dataset_id=dataset_id, policy=GatePolicy(min_f1=0.0, require_baseline=require_baseline)),
            model_id=trained["model_id"],
        )
        with session_scope(db) as s:
            return verdict, s.get_one(ModelVersion, trained["model_id"]).gate

    required, record = gate(require_baseline=True)
    assert not required["promoted"] and "does not clearly beat the LLM baseline" in required["reason"]
    assert record["baseline"]["f1"] == pytest.approx(probe["macro_f1"])
    assert record["versus_baseline"]["low"] <= 0
    optional, _ = gate(require_baseline=False)
    assert optional["promoted"] and optional["reason"].startswith("first model")
