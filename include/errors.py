"""Errors that carry their meaning: not found, invalid, forbidden, conflict, unavailable.

Services raise these (or a subclass named for their domain, such as ``DatasetNotFound``) with a
message fit to show the person who asked; the web app turns them into an answer in one place
(``webapp.errors``), so no view catches an error to choose a status and no status comes from
matching text. Each base also derives from the builtin that means the same (``ValueError``,
``LookupError``, ``PermissionError``), so callers that only care about that keep working.

This module is the bottom layer: it imports nothing of the platform.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A failure with a meaning the caller can act on; ``str(exc)`` is the message to show.

    ``details`` are extra, JSON-able fields for the API's answer (a config's problems, say).
    """

    status: ClassVar[int] = 400
    kind: ClassVar[str] = "invalid"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details

    @property
    def message(self) -> str:
        return str(self)


class Invalid(DomainError, ValueError):
    """The request is malformed or breaks a rule (400)."""


class Unauthenticated(DomainError):
    """No valid credentials (401)."""

    status = 401
    kind = "unauthenticated"


class Forbidden(DomainError, PermissionError):
    """The caller's role may not do this (403)."""

    status = 403
    kind = "forbidden"


class NotFound(DomainError, LookupError):
    """The thing named does not exist (404)."""

    status = 404
    kind = "not_found"


class Conflict(DomainError):
    """The thing is in a state that does not allow this now (409)."""

    status = 409
    kind = "conflict"


class TooLarge(Invalid):
    """The upload or request is over a limit (413)."""

    status = 413
    kind = "too_large"


class RateLimited(DomainError):
    """Too many attempts (429); ``retry_after`` seconds until the next may go ahead."""

    status = 429
    kind = "rate_limited"

    def __init__(self, message: str, retry_after: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A service this needs is down or not configured (503); nothing was changed."""

    status = 503
    kind = "unavailable"
