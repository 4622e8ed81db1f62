"""PostgreSQL advisory locks: one holder at a time for work that spans many transactions.

Why not a lock row: an advisory lock is released by PostgreSQL itself when its holder's
connection ends (a killed worker never leaves it taken), and it needs no table.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from include.db.session import get_engine
from include.errors import Conflict


class LockBusy(Conflict):
    """Another run held the lock longer than this one would wait."""


def _namespace(scope: str) -> int:
    return zlib.crc32(scope.encode()) & 0x7FFFFFFF


@contextmanager
def advisory_lock(db_url: str, scope: str, key: int, *, wait_s: float = 900) -> Iterator[None]:
    """Hold ``(scope, key)`` for the block, waiting up to ``wait_s`` for another holder.

    Raises:
        LockBusy: it was still held after ``wait_s``.
    """
    with get_engine(db_url).connect() as conn:
        conn.execute(text("SELECT set_config('lock_timeout', :t, false)"), {"t": f"{int(wait_s * 1000)}ms"})
        try:
            conn.execute(text("SELECT pg_advisory_lock(:ns, :key)"), {"ns": _namespace(scope), "key": key})
        except OperationalError as exc:
            if "lock timeout" not in str(exc).lower() and "LockNotAvailable" not in type(exc.orig).__name__:
                raise
            conn.rollback()
            conn.execute(text("RESET lock_timeout"))
            raise LockBusy(f"another {scope} of {key} is still running after {wait_s:.0f} s") from None
        conn.execute(text("RESET lock_timeout"))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), {"ns": _namespace(scope), "key": key})
            conn.commit()
