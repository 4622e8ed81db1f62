"""baseline_probe: ask the configured LLM, zero-shot, to label the evaluation set.

The result is a *baseline* model version with the same evaluation report as any head, so a
trained classifier can be required to beat it (the gate's ``require_baseline``). The probe also
checks the output contract: the share of answers that are a JSON object, name a label of the
dataset and give a confidence in [0, 1], and how long answers take (p50/p95).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import numpy as np

from include.config import Settings
from include.db.session import session_scope
from include.ml.evaluation import evaluation_report
from include.ml.prelabel.backends import llm_prelabeler
from include.pipelines.catalog import BaselineValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.services import eval_set, pii
from include.services.datasets import eval_items, get_dataset
from include.services.evaluations import store as store_evaluation
from include.services.guidelines import prompt_text
from include.services.registry import register_baseline

log = logging.getLogger(__name__)


def run_baseline_probe(
    db_url: str,
    run: RunRef,
    settings: Settings,
    values: BaselineValues,
) -> dict[str, Any]:
    """The ``baseline_probe`` job for one dataset."""
    dataset_id, backend, limit = values.dataset_id, values.backend, values.limit
    with tracked_job(db_url, "baseline_probe", run, values) as job:
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            pii.require_deidentified(session, dataset, "sending its texts to an LLM")
            evaluation = eval_set.refresh(session, dataset)
            examples = evaluation.examples[:limit] if limit else evaluation.examples
            items = eval_items(session, dataset_id, [h for h, _ in examples])
            labels, descriptions, name = list(dataset.labels), dict(dataset.label_descriptions or {}), dataset.name
            guidelines = prompt_text(dataset)
        if not examples:
            raise SkipStep("the evaluation set is empty: label some tasks first")
        llm = llm_prelabeler(settings, backend, labels, descriptions or None, guidelines)
        job.progress(f"asking {llm.model_version} about {len(examples)} evaluation items", total=len(examples))
        answers = llm.probe([items.get(h, {}).get("text", "") for h, _ in examples])
        y = np.asarray([labels.index(label) for _, label in examples], dtype=np.int64)
        k = len(labels)
        pred = np.asarray([labels.index(a.suggestion.label) if a.suggestion else k for a in answers])
        probs = np.asarray(
            [[a.suggestion.probs[lbl] for lbl in labels] if a.suggestion else [1.0 / k] * k for a in answers]
        )
        described = [{"text_hash": h, **items.get(h, {})} for h, _ in examples]
        report = evaluation_report(probs, y, labels, described, pred=pred)
        contract = _contract(answers)
        version = f"{llm.model_version}-ds{dataset_id}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        with session_scope(db_url) as session:
            model = register_baseline(
                session,
                version=version,
                dataset_id=dataset_id,
                labels=labels,
                metrics={"f1": report["macro_f1"], "accuracy": report["accuracy"], "contract": contract},
                reason=(
                    f"zero-shot {llm.model_version} on {len(examples)} evaluation items of {name} "
                    f"(eval set {evaluation.version})"
                ),
            )
            store_evaluation(session, model.id, evaluation.version, report)
            model_id = model.id
        job.done(
            f"{llm.model_version}: macro F1 {report['macro_f1']:.3f} on {len(examples)} evaluation items; "
            f"{contract['valid_share']:.0%} answers kept the contract; "
            f"latency p50 {contract['latency_ms']['p50']:.0f} ms, p95 {contract['latency_ms']['p95']:.0f} ms",
            answered=len(answers),
        )
        job.result = {"model_id": model_id, "version": version, "macro_f1": report["macro_f1"], **contract}
    return job.result


def _contract(answers: list[Any]) -> dict[str, Any]:
    """How well the LLM kept the answer contract, and how fast it answered."""
    n = len(answers)
    problems = {
        kind: sum(a.problem == kind for a in answers)
        for kind in ("not_json", "label_not_in_set", "bad_confidence", "failed")
    }
    answered = n - problems["failed"]
    json_ok = answered - problems["not_json"]
    label_ok = json_ok - problems["label_not_in_set"]
    seconds = np.asarray([a.seconds for a in answers]) * 1000
    return {
        "answers": n,
        "valid_share": (n - sum(problems.values())) / n,
        "json_share": json_ok / n,
        "label_in_set_share": label_ok / n,
        "confidence_in_range_share": (label_ok - problems["bad_confidence"]) / n,
        "problems": problems,
        "examples": [a.raw for a in answers if a.problem][:5],
        # Confidences the model stated (no logprobs from the server): calibration is then its say-so.
        "self_reported_share": sum(bool(a.suggestion and a.suggestion.self_reported) for a in answers) / n,
        "latency_ms": {
            "p50": float(np.percentile(seconds, 50)),
            "p95": float(np.percentile(seconds, 95)),
            "max": float(seconds.max()),
        },
    }
