"""API: the quality gate (report, thresholds, override) and annotator agreement."""

from __future__ import annotations

from typing import Any

from include.services import datasets, quality
from webapp.api import PartialBody, api_user, route
from webapp.extensions import db
from webapp.serializers import quality_json

TAG = "quality"


@route("GET", "/datasets/<id:dataset_id>/quality", tag=TAG, response="QualityState", errors=(404,))
def quality_report(dataset_id: int) -> dict[str, Any]:
    """The latest quality report (pass/fail per check with examples) and the thresholds."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    report = quality.latest(db.session(), dataset_id)
    return {
        "dataset_id": dataset_id,
        "thresholds": quality.thresholds_of(dataset),
        "report": quality_json(report) if report else None,
    }


@route(
    "PUT", "/datasets/<id:dataset_id>/quality/thresholds", tag=TAG, body=quality.QualityThresholds, partial=True,
    response="Thresholds", errors=(404,),
)  # fmt: skip
def quality_thresholds(dataset_id: int, body: PartialBody[quality.QualityThresholds]) -> dict[str, Any]:
    """Change some thresholds (the others keep their values); they apply from the next check."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    values = body.over(quality.current_thresholds(dataset))
    quality.apply_thresholds(db.session(), dataset, values)
    db.session.commit()
    return {"dataset_id": dataset_id, "thresholds": values.as_params()}


@route(
    "POST", "/datasets/<id:dataset_id>/quality/override", tag=TAG, body=quality.Override, response="QualityReport",
    errors=(404, 409),
)  # fmt: skip
def quality_override(dataset_id: int, body: quality.Override) -> dict[str, Any]:
    """``{"reason": "..."}``: let import and training go ahead despite the failed report."""
    report = quality.latest_or_missing(db.session(), dataset_id)
    quality.override(db.session(), report, api_user(), body.reason)
    db.session.commit()
    return {"report": quality_json(report)}


@route("GET", "/datasets/<id:dataset_id>/agreement", tag=TAG, response="Agreement", errors=(404,))
def agreement(dataset_id: int) -> dict[str, Any]:
    """Cohen's kappa per annotator pair, Fleiss' kappa, and each annotator against the final label."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    return {
        "dataset_id": dataset_id,
        "overlap_share": dataset.overlap_share,
        **quality.agreement(db.session(), dataset),
    }
