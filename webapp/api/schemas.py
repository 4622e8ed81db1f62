"""JSON schemas of the API's answers (the shapes ``webapp.serializers`` builds), for the OpenAPI
description. Request bodies are not here: they come from their declarations (``Values``).

Written by hand next to nothing that could generate them (the serializers build plain dicts);
``tests/webapp/test_openapi.py`` validates real answers against these, so the two cannot drift.
"""

from __future__ import annotations

from typing import Any

from include.db.models import JobStatus, ModelStatus, TaskStatus

STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
NUM: dict[str, Any] = {"type": "number"}
BOOL: dict[str, Any] = {"type": "boolean"}
OBJ: dict[str, Any] = {"type": "object"}
TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
COUNTS: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "integer"}}


def null(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema, or null."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object with these fields (extra fields allowed: answers may grow)."""
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


VERDICTS = {"enum": ["accepted", "fixed", "rejected"]}
REVIEW_ENTRY = obj(
    {
        "annotation_id": INT,
        "task_id": INT,
        "dataset_id": INT,
        "dataset": STR,
        "annotator": null(STR),
        "label": STR,
        "labeled_at": TIME,
        "lead_time": null(NUM),
        "guidelines_version": null(INT),
        "text": STR,
        "model_label": null(STR),
        "model_score": null(NUM),
        "status": {"enum": [s.value for s in TaskStatus]},
        "others": array(obj({"annotator": null(STR), "label": null(STR), "review": null(VERDICTS)})),
        "flags": array(STR),
        "evaluation": BOOL,
    }
)
REVIEW = obj(
    {
        "id": INT,
        "task_id": INT,
        "annotation_id": null(INT),
        "verdict": VERDICTS,
        "label_before": STR,
        "label_after": STR,
        "comment": STR,
        "reviewer": null(STR),
        "annotator": null(STR),
        "created_at": TIME,
    }
)
TASK = obj(
    {
        "id": INT,
        "dataset_id": INT,
        "item_id": INT,
        "ls_project_id": null(INT),
        "ls_task_id": null(INT),
        "status": {"enum": [s.value for s in TaskStatus]},
        "assigned_to": null(INT),
        "label": null(STR),
        "prelabel_label": null(STR),
        "prelabel_score": null(NUM),
        "model_version": null(STR),
        "model_prob": null(NUM),
        "uncertainty_score": null(NUM),
        "priority": INT,
    },
    {"text": STR},
)
PRIVACY = obj(
    {
        "decided": BOOL,
        "policy_id": null(INT),
        "policy_name": null(STR),
        "platform_default": BOOL,
        "no_personal_data_reason": null(STR),
        "decided_by": null(STR),
        "decided_at": TIME,
    }
)
DATASET = obj(
    {
        "id": INT,
        "name": STR,
        "description": STR,
        "labels": array(STR),
        "label_descriptions": {"type": "object", "additionalProperties": STR},
        "ls_project_id": null(INT),
        "items": INT,
        "pii_policy_id": null(INT),
        "no_personal_data_reason": null(STR),
        "overlap_share": NUM,
        "retrain_after_labels": null(INT),
        "retune_at_labels": null(INT),
        "created_at": TIME,
    }
)
ATTEMPT = obj({"try_number": null(INT), "state": STR, "message": STR, "hostname": null(STR), "started_at": TIME,
               "ended_at": TIME})  # fmt: skip
JOB = obj(
    {
        "id": INT,
        "step": STR,
        "kind": {"enum": ["run", "step"]},  # a whole triggered run, or one step (and map index) of it
        "map_index": INT,
        "pipeline": null(STR),
        "dataset_id": null(INT),
        "status": {"enum": [s.value for s in JobStatus]},
        "message": STR,
        "counts": OBJ,
        "run_id": null(STR),
        "created_at": TIME,
        "active": BOOL,
        "attempts": array(ref("Attempt")),
    }
)
MODEL = obj(
    {
        "id": INT,
        "version": STR,
        "kind": STR,
        "status": {"enum": [s.value for s in ModelStatus]},
        "dataset_id": INT,
        "experiment_id": null(INT),
        "labels": array(STR),
        "metrics": OBJ,
        "gate": null(OBJ),
        "reason": null(STR),
        "created_at": TIME,
        "promoted_at": TIME,
    }
)
EXPERIMENT = obj(
    {
        "id": INT,
        "name": STR,
        "status": STR,
        "dataset_id": INT,
        "params": OBJ,
        "metrics": null(OBJ),
        "epochs": array(obj({"epoch": INT, "train_loss": null(NUM), "val_loss": null(NUM), "metrics": OBJ})),
    },
    {"message": null(STR)},
)
POLICY = obj({"id": INT, "name": STR, "entities": {"type": "object", "additionalProperties": STR}, "locale": STR,
              "use_llm": BOOL, "version": INT, "updated_at": TIME})  # fmt: skip
QUALITY_REPORT = obj({"id": INT, "dataset_id": INT, "passed": BOOL, "failed": array(STR), "checks": OBJ,
                      "thresholds": OBJ, "overridden": BOOL, "created_at": TIME})  # fmt: skip
SNAPSHOT = obj({"id": INT, "dataset_id": INT, "version": INT, "content_hash": STR, "rows": INT, "per_label": COUNTS,
                "eval_version": null(STR), "created_at": TIME})  # fmt: skip
INFERENCE_RUN = obj({"id": INT, "model_id": INT, "dataset_id": null(INT), "source": STR, "filename": null(STR),
                     "status": STR, "rows": null(INT), "message": null(STR), "job_id": null(INT),
                     "created_at": TIME, "finished_at": TIME})  # fmt: skip
TRAINING_CONFIG = obj({"id": INT, "dataset_id": INT, "name": STR, "values": OBJ, "sweep": null(OBJ), "yaml": STR,
                       "updated_at": TIME})  # fmt: skip
EVAL_SET = obj({"dataset_id": INT, "policy": OBJ, "version": STR, "size": INT, "per_label": COUNTS, "dropped": INT},
               {"message": STR})  # fmt: skip
LIVE_LOOP = obj(
    {
        "dataset_id": INT,
        "retrain_after_labels": null(INT),
        "retune_at_labels": null(INT),
        "retune_mode": {"enum": ["auto", "never", "set"]},
        "next_retune_at_labels": null(INT),
        "labeled_tasks": INT,
        "new_labels": INT,
        "last_webhook_at": TIME,
        "webhooks_waiting": INT,
        "last_started_at": TIME,
    }
)
ANNOTATOR_FIGURES = obj({"assigned": INT, "labeled": INT, "pending": INT, "conflicts": INT, "labels": COUNTS})
OUTBOX = obj({"waiting": INT, "failing": INT, "undeliverable": INT, "oldest_waiting_at": TIME,
              "last_error": null(STR)})  # fmt: skip
PARAM = obj({"name": STR, "label": STR, "help": STR, "default": {}})

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": obj({"error": STR, "status": INT}),
    "Attempt": ATTEMPT,
    "Task": TASK,
    "TaskEnvelope": obj({"task": ref("Task")}),
    "Dataset": DATASET,
    "Privacy": PRIVACY,
    "NewDataset": obj({"dataset": ref("Dataset"), "items_added": INT}),
    "DatasetStats": obj(
        {
            "dataset_id": INT,
            "items": INT,
            "imported": INT,
            "assigned": INT,
            "labeled": INT,
            "conflicts": INT,
            "labels": COUNTS,
            "annotators": array(obj({"username": STR, **ANNOTATOR_FIGURES["properties"]})),
        }
    ),
    "Assigned": obj({"assigned": INT, "task_ids": array(INT), "username": STR}),
    "DatasetSettings": OBJ,  # the body's own schema: see PUT
    "Overlap": obj({"dataset_id": INT, "overlap_share": NUM}),
    "LiveLoop": LIVE_LOOP,
    "EvalSet": EVAL_SET,
    "LearningCurve": obj({"dataset_id": INT, "points": array(obj({"model_id": INT, "version": STR, "macro_f1": NUM}))}),
    "AnnotatorStats": obj({**ANNOTATOR_FIGURES["properties"], "shared_pending": INT}),
    "Outbox": OUTBOX,
    "Token": obj({"access_token": STR, "token_type": {"const": "bearer"}, "role": STR, "expires_in": INT}),
    "Me": obj({"id": INT, "username": STR, "email": STR, "role": STR}),
    "PipelineList": obj(
        {"pipelines": array(obj({"name": STR, "title": STR, "description": STR, "params": array(PARAM)}))}
    ),
    "Started": obj({"job_id": INT, "job": ref("Job")}),
    "Job": JOB,
    "Model": MODEL,
    "ModelReport": obj({"model_id": INT, "eval_version": STR, "report": OBJ}),
    "Experiment": EXPERIMENT,
    "ExperimentEnvelope": obj({"experiment": ref("Experiment")}),
    "Stopped": obj({"experiment": ref("Experiment"), "message": STR}),
    "Policy": POLICY,
    "PolicyEnvelope": obj({"policy": ref("Policy")}),
    "DatasetPolicy": obj({"dataset_id": INT, "policy_id": null(INT), "pending": INT, "privacy": ref("Privacy")}),
    "Deidentified": obj(
        {"deidentified": array({}), "policy_version": STR, "policy": STR},
        {"mapping": array({"type": "object", "additionalProperties": STR})},
    ),
    "Revealed": obj({"item_id": INT, "text": STR, "original": STR, "mapping": array(OBJ)}),
    "QualityReport": obj({"report": ref("QualityReportBody")}),
    "QualityReportBody": QUALITY_REPORT,
    "QualityState": obj({"dataset_id": INT, "thresholds": OBJ, "report": null(ref("QualityReportBody"))}),
    "Thresholds": obj({"dataset_id": INT, "thresholds": OBJ}),
    "Agreement": obj({"dataset_id": INT, "overlap_share": NUM, "pairs": array(OBJ)}),
    "Snapshot": SNAPSHOT,
    "SnapshotTaken": obj({"snapshot": ref("Snapshot"), "created": BOOL}),
    "InferenceRun": INFERENCE_RUN,
    "InferenceRunDetail": obj({"run": ref("InferenceRun"), "labels": COUNTS}),
    "InferenceStarted": obj({"run": ref("InferenceRun"), "job_id": INT, "job": ref("Job")}),
    "TrainingConfig": TRAINING_CONFIG,
    "TrainingConfigEnvelope": obj({"config": ref("TrainingConfig")}),
    "Flag": obj(
        {
            "id": INT,
            "task_id": INT,
            "kind": STR,
            "note": STR,
            "username": null(STR),
            "created_at": TIME,
            "resolved_at": null(TIME),
        }
    ),
    "FlagEnvelope": obj({"flag": ref("Flag")}),
    "ReviewEntry": REVIEW_ENTRY,
    "Performance": obj(
        {
            "dataset_id": INT,
            "threshold": NUM,
            "lead_bins": array(NUM),
            "annotators": array(
                obj(
                    {
                        "user_id": INT,
                        "username": STR,
                        "labels": INT,
                        "per_day": COUNTS,
                        "lead_p50": null(NUM),
                        "lead_p90": null(NUM),
                        "lead_histogram": array(INT),
                        "gold_answered": INT,
                        "gold_correct": INT,
                        "gold_accuracy": null(NUM),
                        "gold_low": NUM,
                        "gold_high": NUM,
                        "gold_trend": array(obj({"day": STR, "accuracy": NUM, "answered": INT})),
                        "gold_alert": BOOL,
                        "reviewed": INT,
                        "accepted": INT,
                        "fixed": INT,
                        "rejected": INT,
                        "acceptance": null(NUM),
                        "skips": INT,
                        "not_sure": INT,
                        "flags": INT,
                        "skip_rate": null(NUM),
                        "flag_rate": null(NUM),
                        "kappas": {"type": "object", "additionalProperties": NUM},
                    }
                )
            ),
        }
    ),
    "ReviewEntryEnvelope": obj({"entry": ref("ReviewEntry"), "history": array(ref("Review"))}),
    "Review": REVIEW,
    "ReviewEnvelope": obj({"review": ref("Review")}),
    "Returned": obj(
        {
            "returned": array(
                obj(
                    {
                        "task_id": INT,
                        "dataset_id": INT,
                        "label": STR,
                        "comment": STR,
                        "reviewer": null(STR),
                        "reviewed_at": TIME,
                    }
                )
            )
        }
    ),
    "Flags": obj({"dataset_id": INT, "counts": COUNTS, "flags": array(ref("Flag"))}),
    "Guidelines": obj(
        {
            "dataset_id": INT,
            "version": INT,
            "guidelines": STR,
            "html": STR,  # rendered and sanitised
            "label_descriptions": {"type": "object", "additionalProperties": STR},
            "versions": array(obj({"version": INT, "created_at": TIME, "created_by": null(INT)})),
        }
    ),
}
