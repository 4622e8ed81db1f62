"""JSON shapes of the platform's records, shared by the API and the pages' JSON endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from include.db.models import (
    Dataset,
    Experiment,
    InferenceRun,
    Job,
    JobAttempt,
    JobStatus,
    ModelVersion,
    PiiPolicy,
    QualityReport,
    Snapshot,
    Task,
    TrainingConfigFile,
)
from include.pipelines.catalog import Pipeline
from include.services.eval_set import EvalPolicy, EvalSet
from include.services.label_outbox import OutboxSummary


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def task_json(task: Task, *, with_text: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": task.id,
        "dataset_id": task.dataset_id,
        "item_id": task.item_id,
        "ls_project_id": task.ls_project_id,
        "ls_task_id": task.ls_task_id,
        "status": task.status.value,
        "assigned_to": task.assigned_to,
        "label": task.label,
        "prelabel_label": task.prelabel_label,
        "prelabel_score": task.prelabel_score,
        "model_version": task.model_version,
        "model_prob": task.model_prob,
        "uncertainty_score": task.uncertainty_score,
        "priority": task.priority,
    }
    if with_text:
        data["text"] = task.item.text
    return data


def seen_task_json(task: Task, view: tuple[str, str | None]) -> dict[str, Any]:
    """A task as its annotator sees it: their status and their own label (include.services.
    task_queries.as_seen_by), never another annotator's or a gold item's known label."""
    return {**task_json(task), "status": view[0], "label": view[1]}


def guidelines_json(session: Any, dataset: Dataset, *, with_versions: bool = True) -> dict[str, Any]:
    """A dataset's guidelines as the API returns them (annotators get no version list)."""
    from include.services import guidelines

    return {
        "dataset_id": dataset.id,
        "version": dataset.guidelines_version,
        "guidelines": dataset.guidelines,
        "html": guidelines.render(dataset.guidelines),
        "label_descriptions": dict(dataset.label_descriptions or {}),
        "versions": [
            {"version": v.version, "created_at": _iso(v.created_at), "created_by": v.created_by}
            for v in (guidelines.versions(session, dataset.id) if with_versions else [])
        ],
    }


def flag_json(flag: Any, username: str | None = None) -> dict[str, Any]:
    return {
        "id": flag.id,
        "task_id": flag.task_id,
        "kind": flag.kind,
        "note": flag.note,
        "username": username,
        "created_at": _iso(flag.created_at),
        "resolved_at": _iso(flag.resolved_at),
    }


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "description": dataset.description,
        "labels": dataset.labels,
        "label_descriptions": dataset.label_descriptions,
        "ls_project_id": dataset.ls_project_id,
        "items": dataset.item_count,
        "pii_policy_id": dataset.pii_policy_id,
        "no_personal_data_reason": dataset.pii_exempt_reason,
        "overlap_share": dataset.overlap_share,
        "retrain_after_labels": dataset.retrain_after_labels,
        "retune_at_labels": dataset.retune_at_labels,
        "created_at": _iso(dataset.created_at),
    }


def attempt_json(attempt: JobAttempt) -> dict[str, Any]:
    return {
        "try_number": attempt.try_number,
        "state": attempt.state.value,
        "message": attempt.message,
        "hostname": attempt.hostname,
        "started_at": _iso(attempt.started_at),
        "ended_at": _iso(attempt.ended_at),
    }


def job_json(job: Job, attempts: list[JobAttempt] | None = None) -> dict[str, Any]:
    return {
        "id": job.id,
        "step": job.step,
        "kind": job.kind,
        "map_index": job.map_index,
        "pipeline": job.dag_id,
        "dataset_id": job.dataset_id,
        "status": job.status.value,
        "message": job.message,
        "counts": job.counts,
        "dag_id": job.dag_id,
        "run_id": job.run_id,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "active": job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        "attempts": [attempt_json(a) for a in attempts or []],
    }


def experiment_json(run: Experiment, message: str | None = None) -> dict[str, Any]:
    """A training run with its epochs so far: what the experiment page polls while it trains."""
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "dataset_id": run.dataset_id,
        "params": {k: v for k, v in run.params.items() if k != "data_snapshot"},
        "metrics": run.metrics,
        "device": run.device,
        "n_train": run.n_train,
        "n_val": run.n_val,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "message": message,
        "epochs": [
            {"epoch": e.epoch, "train_loss": e.train_loss, "val_loss": e.val_loss, "metrics": e.metrics}
            for e in run.epochs
        ],
    }


def training_config_json(row: TrainingConfigFile) -> dict[str, Any]:
    return {
        "id": row.id,
        "dataset_id": row.dataset_id,
        "name": row.name,
        "values": row.values,
        "sweep": row.sweep,
        "yaml": row.body,
        "updated_at": _iso(row.updated_at),
    }


def csv_response(body: bytes, filename: str) -> Any:
    """A small CSV as a download (big exports stream through webapp.downloads)."""
    from flask import current_app

    response = current_app.response_class(body, mimetype="text/csv; charset=utf-8")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in filename) or "download.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def svg_response(svg: bytes) -> Any:
    """A chart as its own image response: a script-free SVG whose inline styles may apply."""
    from flask import current_app

    response = current_app.response_class(svg, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cache-Control"] = "private, max-age=30"
    return response


def model_json(model: ModelVersion) -> dict[str, Any]:
    return {
        "id": model.id,
        "version": model.version,
        "kind": model.kind,
        "status": model.status.value,
        "dataset_id": model.dataset_id,
        "experiment_id": model.experiment_id,
        "labels": model.labels,
        "metrics": model.metrics,
        "gate": model.gate,
        "reason": model.reason,
        "created_at": _iso(model.created_at),
        "promoted_at": _iso(model.promoted_at),
    }


def policy_json(policy: PiiPolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "name": policy.name,
        "entities": policy.entities,
        "locale": policy.locale,
        "use_llm": policy.use_llm,
        "version": policy.version,
        "updated_at": _iso(policy.updated_at),
    }


def quality_json(report: QualityReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "dataset_id": report.dataset_id,
        "passed": report.passed,
        "failed": [name for name, c in report.checks["checks"].items() if c["passed"] is False],
        "items": report.checks.get("items"),
        "labeled": report.checks.get("labeled"),
        "checks": report.checks["checks"],
        "thresholds": report.thresholds,
        "overridden": report.overridden_at is not None,
        "override_reason": report.override_reason or None,
        "overridden_at": _iso(report.overridden_at),
        "created_at": _iso(report.created_at),
    }


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "dataset_id": snapshot.dataset_id,
        "version": snapshot.version,
        "content_hash": snapshot.content_hash,
        "rows": snapshot.rows,
        "per_label": snapshot.per_label,
        "eval_version": snapshot.eval_version,
        "created_at": _iso(snapshot.created_at),
    }


def inference_json(run: InferenceRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "model_id": run.model_id,
        "dataset_id": run.dataset_id,
        "source": run.source,
        "filename": run.filename or None,
        "status": run.status,
        "rows": run.rows,
        "message": run.message,
        "job_id": run.job_id,
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
    }


def eval_set_json(dataset: Dataset, current: EvalSet) -> dict[str, Any]:
    return {
        "dataset_id": dataset.id,
        "policy": EvalPolicy.from_object(dataset).as_params(),
        "version": current.version,
        "size": current.size,
        "per_label": current.per_label,
        "dropped": current.excluded,
    }


def outbox_json(summary: OutboxSummary) -> dict[str, Any]:
    return {
        "waiting": summary.waiting,
        "failing": summary.failing,
        "undeliverable": summary.dead,
        "oldest_waiting_at": _iso(summary.oldest_waiting_at),
        "last_error": summary.last_error,
    }


def pipeline_json(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "name": pipeline.name,
        "title": pipeline.title,
        "description": pipeline.description,
        "params": [
            {"name": s.name, "label": s.label, "help": s.help, "default": s.default, **s.json_schema()}
            for s in pipeline.params
        ],
    }


def live_loop_json(dataset_id: int, state: dict[str, Any]) -> dict[str, Any]:
    """include.services.live_loop.status for the API (times as ISO 8601)."""
    return {"dataset_id": dataset_id, **{k: _iso(v) if k.endswith("_at") else v for k, v in state.items()}}


def queue_entry_json(entry: Any) -> dict[str, Any]:
    return {
        "annotation_id": entry.annotation_id,
        "task_id": entry.task_id,
        "dataset_id": entry.dataset_id,
        "dataset": entry.dataset_name,
        "annotator": entry.annotator,
        "label": entry.label,
        "labeled_at": _iso(entry.created_at),
        "lead_time": entry.lead_time,
        "guidelines_version": entry.guidelines_version,
        "text": entry.text,
        "model_label": entry.model_label,
        "model_score": entry.model_score,
        "status": entry.status,
        "others": [{"annotator": who, "label": label, "review": held} for who, label, held in entry.others],
        "flags": entry.flags,
        "evaluation": entry.evaluation,
    }


def review_json(record: Any, reviewer: str | None, annotator: str | None) -> dict[str, Any]:
    return {
        "id": record.id,
        "task_id": record.task_id,
        "annotation_id": record.annotation_id,
        "verdict": record.verdict,
        "label_before": record.label_before,
        "label_after": record.label_after,
        "comment": record.comment,
        "reviewer": reviewer,
        "annotator": annotator,
        "created_at": _iso(record.created_at),
    }


def returned_json(returned: Any) -> dict[str, Any]:
    return {
        "task_id": returned.task_id,
        "dataset_id": returned.dataset_id,
        "label": returned.label,
        "comment": returned.comment,
        "reviewer": returned.reviewer,
        "reviewed_at": _iso(returned.reviewed_at),
    }
