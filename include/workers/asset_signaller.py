"""Tell Airflow about Label Studio webhooks: one ``ANNOTATIONS_CHANGED`` asset event per dataset.

Runs as a thread of each web process (like the label outbox). The receiver has already
committed each delivery; a round claims the pending ones (SKIP LOCKED, so processes never post
the same rows), posts one event per dataset through Airflow's REST API and marks them done.
Airflow being away only delays the events (backoff), and the hourly export covers the gap.

Echoes of the platform's own deliveries never get here (include.services.webhooks), so labels
made in the web app no longer start an export, and the export no longer starts the live loop
for them: each round also asks the platform database, which has those labels at once, whether
a dataset has enough new ones, and posts ``labels_ready`` itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from include.airflow_client import AirflowClient, AirflowError
from include.db.session import session_scope
from include.pipelines.assets import ANNOTATIONS_CHANGED, LABELS_READY
from include.services import live_loop, webhooks
from include.workers.pump import Pump

log = logging.getLogger(__name__)


def signal_pending(db_url: str, client: AirflowClient, *, limit: int = 1000) -> int:
    """One round: returns how many deliveries were signalled (or coalesced into a waiting export)."""
    done = 0
    with session_scope(db_url) as session:
        for pending in webhooks.claim(session, limit):
            if webhooks.covered(session, pending.dataset_id):
                webhooks.signalled(session, pending, coalesced=True)
                done += len(pending.ids)
                continue
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
        webhooks.forget_lapsed_echoes(session)
    return done


def signal_live_loop(db_url: str, client: AirflowClient) -> list[int]:
    """Post ``labels_ready`` for the datasets with enough new labels in the platform database;
    returns their ids. The signal is marked in the same transaction as the post, under
    :func:`live_loop.decide_alone`, so two processes never send it twice."""
    with session_scope(db_url) as session:
        if not live_loop.decide_alone(session):
            return []
        due = live_loop.due(session, live_loop.live_datasets(session))
        if not due:
            return []
        ids = [d.dataset_id for d in due]
        try:
            client.asset_event(
                LABELS_READY, {"dataset_ids": ids, "new_labels": {str(d.dataset_id): d.new_labels for d in due}}
            )
        except AirflowError as exc:
            log.warning("could not start the live loop for datasets %s: %s", ids, exc)
            return []
        live_loop.mark_started(session, ids)
        return ids


class AssetSignaller(Pump):
    """Posts the webhooks' events, and the live loop's when this process committed labels (or
    every ``LIVE_LOOP_CHECK`` seconds anyway, for labels another process took in)."""

    name = "asset-signaller"
    LIVE_LOOP_CHECK = 300.0

    def __init__(self, db_url: str, client_factory: Callable[[], AirflowClient], *, sweep: float = 5.0) -> None:
        super().__init__(sweep)
        self.db_url = db_url
        self.client_factory = client_factory
        self._client: AirflowClient | None = None
        self._labels = threading.Event()
        self._last_check = 0.0

    def labels_committed(self) -> None:
        """This process took labels in: look at the live loop in the next round (no wake: a
        round per label would only repeat the same count)."""
        self._labels.set()

    def round(self) -> bool:
        self._client = self._client or self.client_factory()
        busy = signal_pending(self.db_url, self._client) >= 1000
        if self._labels.is_set() or time.monotonic() - self._last_check > self.LIVE_LOOP_CHECK:
            self._labels.clear()
            self._last_check = time.monotonic()
            signal_live_loop(self.db_url, self._client)
        return busy
