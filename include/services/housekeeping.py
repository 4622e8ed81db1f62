"""Retention: the bookkeeping tables that would otherwise grow forever.

Delivered outbox entries, handled webhook events, finished job rows (their attempts go with
them) and the inputs and results of old batch-inference runs. Nothing here is a label or a model:
annotations, tasks, snapshots, experiments and the registry are kept whatever their age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from include.db.models import Job, LsWebhook
from include.params import ParamSpec, Values, param
from include.services.jobs import ACTIVE

OUTBOX_DAYS = ParamSpec(
    "outbox_days", "Keep delivered labels' outbox entries", "int", 30, minimum=1, maximum=3650, help="days"
)
WEBHOOK_DAYS = ParamSpec("webhook_days", "Keep handled webhook events", "int", 14, minimum=1, maximum=3650, help="days")
JOB_DAYS = ParamSpec("job_days", "Keep finished job rows", "int", 90, minimum=7, maximum=3650, help="days")


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy(Values):
    """How long each kind of bookkeeping row is kept."""

    outbox_days: int = param(OUTBOX_DAYS)
    webhook_days: int = param(WEBHOOK_DAYS)
    job_days: int = param(JOB_DAYS)


def prune(session: Session, policy: RetentionPolicy, *, now: datetime | None = None) -> dict[str, int]:
    """Delete what the policy no longer keeps; returns how many rows of each kind went."""
    # Imported here: the catalog (read by every DAG file at parse time) declares the policy.
    from include.services import inference
    from include.services.label_outbox import forget_delivered

    now = now or datetime.now(UTC)
    outbox = forget_delivered(session, older_than=timedelta(days=policy.outbox_days))
    webhooks = session.execute(
        delete(LsWebhook).where(
            LsWebhook.signalled_at.is_not(None), LsWebhook.received_at < now - timedelta(days=policy.webhook_days)
        )
    )
    jobs = session.execute(
        delete(Job).where(Job.status.not_in(ACTIVE), Job.finished_at < now - timedelta(days=policy.job_days))
    )
    return {
        "outbox_entries": outbox,
        "webhook_events": int(getattr(webhooks, "rowcount", 0) or 0),
        "jobs": int(getattr(jobs, "rowcount", 0) or 0),
        "inference_runs": inference.purge_expired(session, now=now),
    }
