"""snapshot_labels: freeze a dataset's labels as an immutable, versioned snapshot."""

from __future__ import annotations

from typing import Any

from include.db.session import session_scope
from include.pipelines.catalog import DatasetValues
from include.pipelines.runner import RunRef, SkipStep, tracked_job
from include.services import snapshots
from include.services.datasets import get_dataset


def run_snapshot_labels(db_url: str, run: RunRef, values: DatasetValues) -> dict[str, Any]:
    """The ``snapshot_labels`` job; skips when the labels equal the latest snapshot's."""
    dataset_id = values.dataset_id
    with tracked_job(db_url, "snapshot_labels", run, values) as job:
        with session_scope(db_url) as session:
            taken = snapshots.take(session, get_dataset(session, dataset_id))
            snap = taken.snapshot
            result: dict[str, Any] = {
                "snapshot_id": snap.id,
                "version": snap.version,
                "rows": snap.rows,
                "content_hash": snap.content_hash,
                "per_label": dict(snap.per_label),
                "eval_version": snap.eval_version,
            }
        if not taken.created:
            job.result = result
            raise SkipStep(f"the labels have not changed since snapshot v{snap.version}")
        per_label = ", ".join(f"{n} {label}" for label, n in sorted(result["per_label"].items()))
        job.done(f"snapshot v{snap.version}: {snap.rows} labels ({per_label}), eval set {snap.eval_version}")
        job.result = result
    return job.result
