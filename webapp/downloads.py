"""Streamed downloads shared by the admin pages and the API: labeled-data exports and
batch-inference results. Nothing is built in memory; the response streams as rows are read.

Each stream reads through its own session, opened when the first chunk is asked for and closed
when the last one is sent (or the client goes away), so a download never holds the request's
session in a transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from include.db.models import Dataset, InferenceRun, ModelVersion, User
from include.db.session import session_scope
from include.errors import Conflict, Forbidden, Invalid
from include.services import export, inference, pii
from include.services.key_check import check_pii_key
from webapp.clients import pii_keys
from webapp.extensions import db


def _own_session(make: Callable[[Session], Iterator[bytes]]) -> Iterator[bytes]:
    """The chunks of ``make`` read through a session of their own, closed at the end."""
    url = current_app.config["SQLALCHEMY_DATABASE_URI"]

    def stream() -> Iterator[bytes]:
        with session_scope(url) as session:
            yield from make(session)

    return stream()


def _attachment(chunks: Iterator[bytes], mimetype: str, filename: str) -> Any:
    response = current_app.response_class(chunks, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def export_response(dataset: Dataset, fmt: str, *, originals: bool, user: User) -> Any:
    """The dataset's labeled rows as a download; ``originals`` (admins, PII_KEY set) is audited."""
    request = export.ExportRequest(dataset.id, fmt, _key_for_originals(dataset, user) if originals else None)
    if request.key is not None:
        pii.record_export_reveal(db.session(), user, dataset.id)
        db.session.commit()  # the audit row stands even if the download is interrupted
    return _attachment(
        _own_session(lambda session: export.chunks(session, request)),
        export.FORMATS[fmt],
        export.filename(dataset.name, fmt, originals=request.key is not None),
    )


def _key_for_originals(dataset: Dataset, user: User) -> tuple[bytes, ...] | None:
    if not user.is_admin:
        raise Forbidden("only admins can export original personal data")
    if dataset.pii_policy_id is None:
        return None  # nothing was de-identified: the texts are the originals
    keys = pii_keys()
    check_pii_key(db.session(), keys[0], keys[1:])  # refused before the first byte, not mid-file
    return keys


def inference_response(run: InferenceRun, fmt: str) -> Any:
    if run.status == "purged":
        raise Conflict(f"run {run.id}'s results were deleted {inference.RETENTION.days} days after it ended")
    if run.status != "done":
        raise Conflict(f"run {run.id} is {run.status}: its results can be downloaded once it is done")
    model = db.session.get(ModelVersion, run.model_id)
    labels = list(model.labels) if model else []
    if fmt not in inference.DOWNLOADS:
        raise Invalid(f"download as one of {', '.join(inference.DOWNLOADS)}")
    run_id = run.id
    return _attachment(
        _own_session(
            lambda session: inference.download_chunks(session, session.get_one(InferenceRun, run_id), fmt, labels)
        ),
        inference.DOWNLOADS[fmt],
        f"inference-{run.id}-{model.version if model else 'model'}.{fmt}",
    )
