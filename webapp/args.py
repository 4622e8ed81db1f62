"""Query-string and path values, checked before they reach the database.

PostgreSQL rejects NUL characters in text and numbers beyond int4/int8 with an error, which
would surface as a 500. Ids in paths use the ``id``/``bigid`` converters (out of range: 404);
query-string numbers use :func:`int_arg` (bad or out of range: 400 with the reason).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import request
from werkzeug.routing import BaseConverter, ValidationError

from include.errors import Invalid
from include.params import INT4_MAX, INT8_MAX, ParamError, parse_int


class BadArgument(Invalid):
    """A malformed value in the request; the message is shown to the person as is."""


class IdConverter(BaseConverter):
    """A positive int4 id (datasets, users, jobs, experiments, models)."""

    regex = r"[0-9]{1,19}"
    maximum = INT4_MAX

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= self.maximum:
            raise ValidationError  # no route matches: 404
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


class BigIdConverter(IdConverter):
    """A positive int8 id (tasks, items, annotations)."""

    maximum = INT8_MAX


def int_arg(
    name: str,
    default: int | None = None,
    *,
    minimum: int = 1,
    maximum: int = INT4_MAX,
    args: Mapping[str, str] | None = None,
) -> int | None:
    """A whole number from the query string (or ``args``), ``default`` when absent; 400 when malformed."""
    raw = (request.args if args is None else args).get(name)
    if raw in (None, ""):
        return default
    try:
        return parse_int(raw, what=name, minimum=minimum, maximum=maximum)
    except ParamError as exc:
        raise BadArgument(str(exc)) from None


def page_arg(name: str = "page", args: Mapping[str, str] | None = None) -> int:
    """A page number (1 when absent); pages beyond any real list are refused, not fetched."""
    return int_arg(name, 1, maximum=1_000_000, args=args) or 1


def has_nul(value: Any) -> bool:
    """Whether a string (or a JSON structure of them) holds a NUL, which PostgreSQL cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def has_cjk(text: Any) -> bool:
    """Whether a text holds Chinese (or Japanese, Korean) characters: the page marks its block
    ``lang="zh"`` so the browser picks CJK glyphs instead of a Latin font's fallbacks."""
    return isinstance(text, str) and _CJK.search(text) is not None
