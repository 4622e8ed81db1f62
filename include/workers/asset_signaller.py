"""Tell Airflow about Label Studio webhooks: one ``ANNOTATIONS_CHANGED`` asset event per dataset.

Runs as a thread of each web process (like the label outbox). The receiver has already
committed each delivery; a round claims the pending ones (SKIP LOCKED, so processes never post
the same rows), posts one event per dataset through Airflow's REST API and marks them done.
Airflow being away only delays the events (backoff), and the hourly export covers the gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from include.airflow_client import AirflowClient, AirflowError
from include.db.session import session_scope
from include.pipelines.assets import ANNOTATIONS_CHANGED
from include.services import webhooks
from include.workers.pump import Pump

log = logging.getLogger(__name__)


def signal_pending(db_url: str, client: AirflowClient, *, limit: int = 1000) -> int:
    """One round: returns how many deliveries were signalled."""
    done = 0
    with session_scope(db_url) as session:
        for pending in webhooks.claim(session, limit):
            extra = {"dataset_id": pending.dataset_id, "webhooks": len(pending.ids), "actions": list(pending.actions)}
            try:
                client.asset_event(ANNOTATIONS_CHANGED, extra)
            except AirflowError as exc:
                log.warning("could not tell Airflow about %s webhooks of dataset %s: %s", len(pending.ids),
                            pending.dataset_id, exc)  # fmt: skip
                webhooks.failed(session, pending, str(exc))
                continue
            webhooks.signalled(session, pending)
            done += len(pending.ids)
    return done


class AssetSignaller(Pump):
    name = "asset-signaller"

    def __init__(self, db_url: str, client_factory: Callable[[], AirflowClient], *, sweep: float = 5.0) -> None:
        super().__init__(sweep)
        self.db_url = db_url
        self.client_factory = client_factory
        self._client: AirflowClient | None = None

    def round(self) -> bool:
        self._client = self._client or self.client_factory()
        return signal_pending(self.db_url, self._client) >= 1000
