"""JSON API for automation (the seed's scripted flow), bearer-token authenticated.

Same permission rules as the pages: admins manage, annotators see and label only their own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, g, jsonify, request

from include.db.models import Role, User
from webapp.args import BadArgument, has_nul
from webapp.security import user_from_api_token

bp = Blueprint("api", __name__)
F = TypeVar("F", bound=Callable[..., Any])


def api_error(status: int, message: str) -> Any:
    response = jsonify({"error": message, "status": status})
    response.status_code = status
    return response


def token_required(role: Role | None = None) -> Callable[[F], F]:
    """Authenticate ``Authorization: Bearer <token>``; 401 without, 403 for the wrong role."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            user = user_from_api_token(token) if token else None
            if user is None:
                return api_error(401, "missing or invalid token: POST /api/v1/auth/login first")
            if role is not None and user.role != role:
                return api_error(403, "your role cannot do this")
            g.api_user = user
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


def api_user() -> User:
    user = g.get("api_user")
    if user is None:
        abort(401)
    return user


def json_body() -> dict[str, Any]:
    """The request's JSON object ({} when there is none); 400 for other JSON or NUL characters."""
    body = request.get_json(silent=True)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadArgument("send a JSON object")
    if has_nul(body):
        raise BadArgument("the JSON body contains a NUL character (\\u0000), which cannot be stored")
    return body


from webapp.api import data, routes  # noqa: E402, F401
