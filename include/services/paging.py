"""One way to page a list, for the pages and the API alike: a limit, a page number, and the
total where counting is cheap (small tables; never the task tables of a million rows)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from include.params import ParamSpec, Values, param

T = TypeVar("T")
MAX_LIMIT = 1000
LIMIT = ParamSpec("limit", "Per page", "int", 50, minimum=1, maximum=MAX_LIMIT)
PAGE = ParamSpec("page", "Page", "int", 1, minimum=1, maximum=1_000_000)


DATASET_FILTER = ParamSpec("dataset_id", "Dataset", "dataset", nullable=True, help="empty: every dataset")


@dataclass(frozen=True, kw_only=True)
class PageQuery(Values):
    """Which page of a list: every list endpoint takes these (``?limit=50&page=2``)."""

    limit: int = param(LIMIT)
    page: int = param(PAGE)


@dataclass(frozen=True, kw_only=True)
class DatasetFilter(Values):
    """One dataset, or all of them."""

    dataset_id: int | None = param(DATASET_FILTER)


@dataclass(frozen=True, kw_only=True)
class DatasetPageQuery(PageQuery):
    """A page of a list, of one dataset or all."""

    dataset_id: int | None = param(DATASET_FILTER)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``total`` is None where counting would cost more than the page."""

    items: list[T]
    page: int
    limit: int
    has_next: bool
    total: int | None = None

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def per_page(self) -> int:
        return self.limit

    def map(self, convert: Callable[[T], Any]) -> list[Any]:
        return [convert(item) for item in self.items]


def paginate(session: Session, stmt: Select[Any], page: int, limit: int, *, count: bool = False) -> Page[Any]:
    """Rows of ``stmt`` (ordered by the caller) for one page; one extra row says whether a next
    page exists, so no COUNT is needed unless ``count`` asks for the total."""
    page, limit = max(1, page), max(1, min(limit, MAX_LIMIT))
    rows = list(session.scalars(stmt.offset((page - 1) * limit).limit(limit + 1)).unique())
    total = None
    if count:
        total = int(session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0)
    return Page(items=rows[:limit], page=page, limit=limit, has_next=len(rows) > limit, total=total)


def page_of(items: Sequence[T], page: int, limit: int) -> Page[T]:
    """A page of a list already in memory (a few hundred rows at most), with its total."""
    page, limit = max(1, page), max(1, min(limit, MAX_LIMIT))
    start = (page - 1) * limit
    return Page(list(items[start : start + limit]), page, limit, start + limit < len(items), len(items))
