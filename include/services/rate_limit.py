"""Budgets of requests per user and window, shared by every web process.

Counted in the login throttle's table (``login_throttle``: a key, a count in its ``failures``
column, the window's start), with one upsert per request, so gunicorn workers share the
count. Why not flask-limiter: as for logins (include.services.login_throttle), the embedded
default has no shared store but PostgreSQL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from include.errors import RateLimited

_SPEND = text(
    """
    INSERT INTO login_throttle (key, failures, window_start) VALUES (:key, :n, now())
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN login_throttle.window_start > now() - :window
                        THEN login_throttle.failures + :n ELSE :n END,
        window_start = CASE WHEN login_throttle.window_start > now() - :window
                            THEN login_throttle.window_start ELSE now() END
    RETURNING failures, window_start
    """
)


@dataclass(frozen=True)
class Budget:
    """At most ``limit`` units (requests, texts) per ``window`` for one subject."""

    name: str
    limit: int
    window: timedelta
    what: str = "requests"


def count(session: Session, key: str, window: timedelta, units: int = 1) -> tuple[int, datetime]:
    """Add ``units`` to the counter ``key`` (a new window starts it afresh); returns what it holds
    now and when its window started. The login throttle counts its addresses with it too."""
    used, started = session.execute(_SPEND, {"key": key[:320], "n": units, "window": window}).one()
    return int(used), started


def spend(session: Session, budget: Budget, subject: str, units: int = 1) -> int:
    """Count ``units`` against the subject's budget; returns what is used in this window.

    Counted in the caller's transaction: a request that fails afterwards (and rolls back)
    costs nothing, and it revealed nothing either.

    Raises:
        RateLimited: the budget is spent; ``retry_after`` says when the window ends.
    """
    used, started = count(session, f"{budget.name}:{subject}", budget.window, units)
    if used > budget.limit:
        wait = max(1, math.ceil((started + budget.window - datetime.now(UTC)).total_seconds()))
        raise RateLimited(
            f"at most {budget.limit} {budget.what} per {_span(budget.window)}: try again in {wait} s",
            retry_after=wait,
        )
    return used


def _span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    return {60: "minute", 3600: "hour", 86400: "day"}.get(seconds, f"{seconds} s")
