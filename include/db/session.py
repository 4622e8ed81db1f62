"""Engines and sessions. Transactions are owned by the caller (a DAG task or a web request)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from include.config import normalize_database_url


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One pooled engine per URL per process (DAG tasks reuse it across calls)."""
    return create_engine(normalize_database_url(url), pool_pre_ping=True, pool_size=5, max_overflow=5)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One session and one transaction: commit on success, roll back on any error."""
    session = sessionmaker(bind=get_engine(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
