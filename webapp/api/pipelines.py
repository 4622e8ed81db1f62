"""API: the pipelines with their declared parameters, and starting runs."""

from __future__ import annotations

from typing import Any

from include.pipelines.catalog import PIPELINES
from webapp.api import api_user, json_body, route
from webapp.runs import start_pipeline
from webapp.serializers import job_json, pipeline_json

TAG = "pipelines"


@route("GET", "/pipelines", tag=TAG, response="PipelineList")
def list_pipelines() -> dict[str, Any]:
    """Every pipeline with its parameters (type, default, bounds, choices, help)."""
    return {"pipelines": [pipeline_json(p) for p in PIPELINES.values()]}


def _start(name: str, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    _, job = start_pipeline(name, body, api_user())
    return {"job_id": job.id, "job": job_json(job)}, 202


@route("POST", "/pipelines/<name>", tag=TAG, status=202, response="Started", errors=(404, 503))
def run_pipeline(name: str) -> Any:
    """Trigger a pipeline: ``{"dataset_id": 1, ...params}``; returns the queued job.

    Each pipeline's body is described under its own path below; an unknown or out-of-range
    parameter is a 400 naming it.
    """
    return _start(name, json_body())


@route("POST", "/datasets/<id:dataset_id>/import_to_ls", tag=TAG, status=202, response="Started", errors=(404, 503))
def import_to_ls(dataset_id: int) -> Any:
    """The seed's endpoint: trigger ls_import for a dataset (its parameters in the body)."""
    return _start("ls_import", {**json_body(), "dataset_id": dataset_id})


@route("POST", "/datasets/<id:dataset_id>/export_from_ls", tag=TAG, status=202, response="Started", errors=(404, 503))
def export_from_ls(dataset_id: int) -> Any:
    """The seed's endpoint: trigger ls_export for a dataset (its parameters in the body)."""
    return _start("ls_export", {**json_body(), "dataset_id": dataset_id})
