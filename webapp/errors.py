"""Every error becomes an answer here, and only here.

Services raise domain errors (``include.errors``) whose class carries the status; the handler
rolls the session back and answers JSON (``{"error", "status", ...details}``) to the API, or HTML
to a person: the page the form came from, drawn again with the message and the right status
(views name it with :func:`shown_on`), else the error page. No view catches a domain error to
choose a status, and no status is chosen by matching an exception's text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, flash, g, jsonify, render_template, request
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from include.errors import DomainError, RateLimited, Unavailable
from webapp.extensions import db

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

RETRY_AFTER_SECONDS = 5
MESSAGES = {
    400: "The request was not valid.",
    401: "Log in first.",
    403: "You do not have access to this page.",
    404: "Nothing here.",
    405: "That action is not allowed here.",
    413: "The upload is too large.",
    429: "Too many attempts. Wait a minute and try again.",
    500: "Something went wrong on our side. It has been logged.",
}


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/ml/", "/hooks/")) or request.accept_mimetypes.best == "application/json"


def shown_on(page: Callable[..., Any]) -> Callable[[F], F]:
    """On a domain error, answer with ``page`` (called with the view's arguments) showing the
    message, with the error's status: the person sees the form they used, not a bare error."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            g.error_page = lambda: page(*args, **kwargs)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def error_response(status: int, message: str, **details: Any) -> Any:
    """The one JSON shape of an error."""
    response = jsonify({"error": message, "status": status, **details})
    response.status_code = status
    return response


def _rollback_quietly() -> None:
    try:
        db.session.rollback()
    except Exception as exc:  # the connection is gone already
        log.debug("rollback after an error failed: %s", exc)


def _unavailable() -> Any:
    """503 without touching the database (the error page must not load the user)."""
    message = "The database is unavailable right now. Try again in a few seconds; nothing was changed."
    if wants_json():
        response = error_response(503, message)
    else:
        # Straight from the Jinja environment: render_template's context processors would load
        # the user (flask-login's current_user), which needs the database.
        page = current_app.jinja_env.get_template("errors/unavailable.html").render(message=message)
        response = current_app.response_class(page, mimetype="text/html", status=503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _render(code: int, message: str, **details: Any) -> Any:
    if wants_json():
        return error_response(code, message, **details)
    page = g.pop("error_page", None)
    try:
        if page is not None:
            flash(message, "error")
            try:
                body = page()
            except DomainError as again:  # the page itself is gone (a task no longer yours, say)
                _rollback_quietly()
                return render_template("errors/error.html", code=again.status, message=str(again)), again.status
            return (body[0] if isinstance(body, tuple) else body), code
        return render_template("errors/error.html", code=code, message=message), code
    except (OperationalError, InterfaceError):  # the page's header needs the user: no database
        return _unavailable()


def register(app: Flask) -> None:
    """Install the handlers on the app."""

    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Any:
        _rollback_quietly()
        response = app.make_response(_render(exc.status, str(exc), **exc.details))
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        elif isinstance(exc, Unavailable):
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        code = exc.code or 500
        message = MESSAGES.get(code, exc.description or "Error")
        if code == 400 and exc.description and "CSRF" in exc.description:
            message = "Your form expired. Reload the page and try again."
        g.pop("error_page", None)  # a refused request (CSRF, method) draws no form again
        return _render(code, message)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_unavailable(exc: Exception) -> Any:
        log.warning("database unavailable on %s %s: %s", request.method, request.path, getattr(exc, "orig", exc))
        _rollback_quietly()
        return _unavailable()

    @app.errorhandler(DataError)
    def data_error(exc: DataError) -> Any:
        """A value the database cannot hold (out of range, malformed) is the request's fault."""
        log.warning("rejected a value on %s %s: %s", request.method, request.path, exc.orig)
        _rollback_quietly()
        return _render(400, "The request contains a value the database cannot store.")

    @app.errorhandler(Exception)
    def unhandled(exc: Exception) -> Any:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return database_unavailable(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        _rollback_quietly()
        g.pop("error_page", None)
        return _render(500, MESSAGES[500])
