"""API: batch inference over a dataset or an uploaded file, its progress and its results."""

from __future__ import annotations

from typing import Any

from flask import request

from include.services import inference
from include.services.inference import InferenceRequest, ResultsQuery
from include.services.paging import PageQuery
from webapp.api import api_user, json_body, paged, route
from webapp.clients import pii_key
from webapp.downloads import inference_response
from webapp.extensions import db
from webapp.runs import start_inference_run
from webapp.serializers import inference_json, job_json

TAG = "inference"
UPLOAD = {"file": "a CSV or JSONL file with a text column", "model_id": "the model version to run (required)"}


@route(
    "POST", "/inference", tag=TAG, body_schema=InferenceRequest.json_schema(), upload=UPLOAD, status=202,
    response="InferenceStarted", errors=(404, 409, 503),
)  # fmt: skip
def start_inference() -> Any:
    """Run a model over a dataset (JSON ``{"dataset_id": 1, "model_id": null}``) or over a file
    (a multipart form with ``file`` and ``model_id``); returns the run and its job. A file's texts
    are de-identified by the model's dataset's policy before they are stored; inputs and
    results are deleted 30 days after the run ends."""
    upload = request.files.get("file")
    if upload is not None:
        values = InferenceRequest.parse({"model_id": request.form.get("model_id")}, by_name=True)
        given = (upload.filename or "upload", upload.read())
        run = inference.create_run(db.session(), values, given, api_user(), key=pii_key())
    else:
        run = inference.create_run(db.session(), InferenceRequest.parse(json_body(), strict=True), None, api_user())
    db.session.commit()
    job = start_inference_run(run, api_user())
    return {"run": inference_json(run), "job_id": job.id, "job": job_json(job)}, 202


@route("GET", "/inference", tag=TAG, query=PageQuery, response="InferenceRun", listing="runs")
def inference_runs(query: PageQuery) -> dict[str, Any]:
    """Batch-inference runs, newest first."""
    return paged("runs", inference.run_page(db.session(), query), inference_json)


@route("GET", "/inference/<id:run_id>", tag=TAG, response="InferenceRunDetail", errors=(404,))
def inference_run(run_id: int) -> dict[str, Any]:
    """One run: its progress and how many items got each label."""
    run = inference.get_run(db.session(), run_id)
    return {"run": inference_json(run), "labels": inference.label_counts(db.session(), run_id)}


@route(
    "GET", "/inference/<id:run_id>/results", tag=TAG, query=ResultsQuery, produces="application/octet-stream",
    errors=(404, 409),
)  # fmt: skip
def inference_results(run_id: int, query: ResultsQuery) -> Any:
    """The predictions, streamed as CSV or JSONL (once the run is done)."""
    return inference_response(inference.get_run(db.session(), run_id), query.format)


@route("DELETE", "/inference/<id:run_id>", tag=TAG, status=204, errors=(404, 409))
def delete_inference_run(run_id: int) -> Any:
    """Delete a run with its inputs and results (once it has ended)."""
    inference.delete_run(db.session(), inference.get_run(db.session(), run_id))
    db.session.commit()
    return "", 204
