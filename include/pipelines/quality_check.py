"""quality_check: the dataset quality gate's report (see include.services.quality).

Embeds the dataset first (so near-duplicates and suspected label errors can be checked), unless
its texts still wait for de-identification: then those two checks wait too.
"""

from __future__ import annotations

import logging
from typing import Any

from include.db.session import session_scope
from include.ml.embeddings.backends import Embedder
from include.ml.embeddings.names import DEFAULT_MODEL
from include.pipelines.catalog import DatasetValues
from include.pipelines.runner import RunRef, tracked_job
from include.pipelines.training.embedding import embed_dataset
from include.services import pii, quality, reliability
from include.services.datasets import get_dataset, item_hashes
from include.services.embedding_models import embedder_for
from include.services.vectors import get_model, load_vectors, near_pairs

log = logging.getLogger(__name__)

NEAR_SAMPLE = 20_000  # texts whose neighbours are looked up (the index makes each lookup cheap)


def run_quality_check(
    db_url: str, run: RunRef, values: DatasetValues, *, embedder: Embedder | None = None
) -> dict[str, Any]:
    """The ``quality_check`` job for one dataset."""
    dataset_id = values.dataset_id
    with tracked_job(db_url, "quality_check", run, values) as job:
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            pii.require_decided(dataset, "a quality report, which quotes its texts")
            waiting = pii.pending_count(session, dataset_id) if dataset.pii_policy_id else 0
            limits = quality.thresholds_of(dataset)
            hashes = item_hashes(session, dataset_id)
        vectors = near = None
        if not waiting and hashes:
            embedder = embedder or embedder_for(DEFAULT_MODEL, db_url)
            job.progress("embedding the texts the checks compare")
            embed_dataset(db_url, embedder, dataset_id)
            with session_scope(db_url) as session:
                model = get_model(session, embedder.name)
                if model is not None:
                    vectors = load_vectors(session, model.id, hashes)
                    near = near_pairs(
                        session, model, hashes[:NEAR_SAMPLE], min_similarity=limits["near_duplicate_similarity"]
                    )
        job.progress("running the checks")
        with session_scope(db_url) as session:
            dataset = get_dataset(session, dataset_id)
            report = quality.build_report(session, dataset, vectors=vectors, near=near)
            # Who is right how often, and which labels are likely mistakes (the review queue's filter).
            estimate = reliability.refresh(session, dataset)
            if estimate is not None:
                report["reliability"] = {
                    "accuracy": {who: round(a, 4) for who, a in sorted(estimate.accuracy.items())},
                    "suspects": len(estimate.suspects),
                }
            row = quality.store_report(session, dataset, report)
            failed = quality.failed_checks(row)
            report_id, passed = row.id, row.passed
        verdict = "passed" if passed else f"failed: {', '.join(failed)}"
        job.done(f"quality gate {verdict} ({report['items']} items, {report['labeled']} labeled)", passed=passed)
        job.result = {"report_id": report_id, "passed": passed, "failed": failed}
    return job.result
