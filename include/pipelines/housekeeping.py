"""housekeeping: retention for the bookkeeping tables, and every project's webhook re-checked.

Daily. The webhook check runs here as well as on import, so a rotated ``WEBHOOK_SECRET``
reaches projects that have nothing new to import.
"""

from __future__ import annotations

import logging
from typing import Any

from include.db.session import session_scope
from include.labelstudio.client import LabelStudioClient
from include.pipelines.runner import RunRef, tracked_job
from include.services.housekeeping import RetentionPolicy, prune
from include.services.ls_projects import WebhookRef, owned_project_ids, refresh_webhooks

log = logging.getLogger(__name__)


def run_housekeeping(
    db_url: str,
    client: LabelStudioClient | None,
    run: RunRef,
    values: RetentionPolicy,
    *,
    webhook: WebhookRef | None = None,
) -> dict[str, Any]:
    """Prune what the retention policy no longer keeps; re-register webhooks when configured."""
    with tracked_job(db_url, "housekeeping", run, values) as job:
        with session_scope(db_url) as session:
            pruned = prune(session, values)
        problems: list[str] = []
        checked = 0
        if webhook is not None and client is not None:
            with session_scope(db_url) as session:
                checked = len(owned_project_ids(session))
                problems = refresh_webhooks(session, client, webhook)
        removed = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in pruned.items() if n) or "nothing"
        message = f"removed {removed}"
        if checked:
            message += f"; webhooks checked on {checked} projects"
        if problems:
            message += "; " + "; ".join(problems)
        job.done(message, **pruned, webhooks_checked=checked, webhook_problems=len(problems))
        job.result = {**pruned, "webhooks_checked": checked, "problems": problems}
    return job.result
