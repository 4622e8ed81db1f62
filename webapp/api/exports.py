"""API: labels out: streamed exports and versioned snapshots."""

from __future__ import annotations

from typing import Any

from include.services import datasets, snapshots
from include.services.export import ExportQuery
from include.services.paging import PageQuery, page_of
from webapp.api import api_user, paged, route
from webapp.downloads import export_response
from webapp.extensions import db
from webapp.serializers import snapshot_json

TAG = "exports"


@route(
    "GET", "/datasets/<id:dataset_id>/export", tag=TAG, query=ExportQuery, produces="application/octet-stream",
    errors=(403, 404, 503),
)  # fmt: skip
def export_labels(dataset_id: int, query: ExportQuery) -> Any:
    """Every labeled task, streamed as CSV, JSONL or Parquet (``&originals=true``: before de-identification)."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    return export_response(dataset, query.format, originals=query.originals, user=api_user())


@route(
    "GET", "/datasets/<id:dataset_id>/snapshots", tag=TAG, query=PageQuery, response="Snapshot", listing="snapshots",
    errors=(404,),
)  # fmt: skip
def list_snapshots(dataset_id: int, query: PageQuery) -> dict[str, Any]:
    """The dataset's label snapshots, newest first."""
    datasets.get_dataset(db.session(), dataset_id)
    rows = snapshots.list_snapshots(db.session(), dataset_id)
    return paged("snapshots", page_of(rows, query.page, query.limit), snapshot_json)


@route(
    "POST", "/datasets/<id:dataset_id>/snapshots", tag=TAG, status=201, also=(200,), response="SnapshotTaken",
    errors=(404,),
)  # fmt: skip
def take_snapshot(dataset_id: int) -> Any:
    """Snapshot the labels now (201), or return the identical latest snapshot (200)."""
    taken = snapshots.take(db.session(), datasets.get_dataset(db.session(), dataset_id))
    db.session.commit()
    return {"snapshot": snapshot_json(taken.snapshot), "created": taken.created}, 201 if taken.created else 200
