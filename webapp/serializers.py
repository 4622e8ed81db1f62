"""JSON shapes of the platform's records, shared by the API and the pages' JSON endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from include.db.models import Dataset, Job, JobAttempt, JobStatus, ModelVersion, Task


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


def dataset_json(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.id,
        "name": dataset.name,
        "description": dataset.description,
        "labels": dataset.labels,
        "label_descriptions": dataset.label_descriptions,
        "ls_project_id": dataset.ls_project_id,
        "items": dataset.item_count,
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
