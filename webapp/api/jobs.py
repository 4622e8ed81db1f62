"""API: pipeline runs as jobs (each try an attempt), and the label outbox."""

from __future__ import annotations

from typing import Any

from include.services.jobs import attempts_of, get_job, job_page
from include.services.label_outbox import summary as outbox_summary
from include.services.paging import DatasetPageQuery
from webapp.api import paged, route
from webapp.clients import wake_reconciler
from webapp.extensions import db
from webapp.serializers import job_json, outbox_json

TAG = "jobs"


@route("GET", "/jobs", tag=TAG, query=DatasetPageQuery, response="Job", listing="jobs")
def jobs(query: DatasetPageQuery) -> dict[str, Any]:
    """Pipeline runs, newest first, with every try; ``?dataset_id=`` to filter."""
    wake_reconciler()
    page = job_page(db.session(), query)
    tries = attempts_of(db.session(), [j.id for j in page.items])
    return paged("jobs", page, lambda j: job_json(j, tries.get(j.id)))


@route("GET", "/jobs/<id:job_id>", tag=TAG, response="Job", errors=(404,))
def job(job_id: int) -> dict[str, Any]:
    """One run with its tries; poll it to follow a run (it settles when Airflow's run ends)."""
    row = get_job(db.session(), job_id)
    if row.status.value in ("queued", "running"):
        wake_reconciler()
    return job_json(row, attempts_of(db.session(), [row.id]).get(row.id))


@route("GET", "/outbox", tag=TAG, response="Outbox")
def outbox() -> dict[str, Any]:
    """Labels on their way to Label Studio, everyone's."""
    return outbox_json(outbox_summary(db.session()))
