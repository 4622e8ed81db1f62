"""Login throttling shared by every web process, kept in the platform database.

Two counters, so that guessing is slow but nobody can lock a named user out for good:

* **per address**: at most ``ADDRESS_LIMIT`` failed logins from one address within a minute;
  beyond that every login from it is refused (even with the right password) until the minute
  is over;
* **per account**: after ``ACCOUNT_FREE`` consecutive failures, each further attempt must wait
  an exponentially growing delay (capped at ``ACCOUNT_MAX_DELAY``). A browser the user has
  logged in from before (it holds a signed *device cookie* for that account, OWASP's "device
  cookies") skips the account counter, so an attacker hammering the account from elsewhere
  cannot keep its owner out; it is still bound by the per-address limit.

An attempt is counted *before* its password is checked and forgiven when it succeeds, so
parallel requests cannot all slip through while the first ones are still being checked.
Why not flask-limiter: its storages are memory, Redis, Memcached and MongoDB, and the embedded
default has none of them shared between gunicorn workers; the platform's PostgreSQL is always
there, and row locks make the counting exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import LoginThrottle
from include.services import rate_limit

ADDRESS_LIMIT = 10
ADDRESS_WINDOW = timedelta(minutes=1)
ACCOUNT_FREE = 5
ACCOUNT_MAX_DELAY = timedelta(minutes=15)
FORGOTTEN_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Refusal:
    """Why a login attempt is refused before the password is checked, and for how long."""

    reason: str
    retry_after: int  # seconds


def address_key(address: str) -> str:
    return f"ip:{address}"[:320]


def account_key(username: str) -> str:
    return f"user:{username.strip().lower()}"[:320]


def account_delay(failures: int) -> timedelta | None:
    """How long an account waits after ``failures`` consecutive failures (None: not yet)."""
    if failures < ACCOUNT_FREE:
        return None
    return min(timedelta(seconds=2 ** min(failures - ACCOUNT_FREE, 20)), ACCOUNT_MAX_DELAY)


def reserve(session: Session, address: str, username: str, *, trusted_device: bool) -> Refusal | None:
    """Count this attempt as a failure unless it is refused; the caller commits at once and
    calls :func:`forgive` if the password turns out right."""
    _forget_old(session)
    now = datetime.now(UTC)
    failures, window_start = rate_limit.count(session, address_key(address), ADDRESS_WINDOW)
    if failures > ADDRESS_LIMIT:
        return Refusal("too many failed logins from your address", _seconds(window_start + ADDRESS_WINDOW - now))
    if trusted_device:
        return None
    key = account_key(username)
    session.execute(insert(LoginThrottle).values(key=key, failures=0).on_conflict_do_nothing())
    account = session.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).one()
    if account.blocked_until is not None and account.blocked_until > now:
        _uncount_address(session, address)  # a refused attempt guessed nothing
        return Refusal("too many failed logins for this account", _seconds(account.blocked_until - now))
    account.failures += 1
    account.window_start = now
    delay = account_delay(account.failures)
    account.blocked_until = now + delay if delay else None
    return None


def forgive(session: Session, address: str, username: str) -> None:
    """The password was right: take the attempt back and start the account afresh."""
    _uncount_address(session, address)
    session.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key(username)))


def _uncount_address(session: Session, address: str) -> None:
    session.execute(
        text("UPDATE login_throttle SET failures = greatest(failures - 1, 0) WHERE key = :key"),
        {"key": address_key(address)},
    )


def _forget_old(session: Session) -> None:
    """Counters nobody has touched for a day are history (guessed names would pile up otherwise)."""
    session.execute(
        text(
            "DELETE FROM login_throttle WHERE window_start < now() - :age "
            "AND (blocked_until IS NULL OR blocked_until < now())"
        ),
        {"age": FORGOTTEN_AFTER},
    )


def _seconds(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() + 0.999))
