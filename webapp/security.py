"""Role guards, the open-redirect guard and signed API tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import abort, current_app
from flask_login import current_user, login_required
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from include.db.models import Role, User
from webapp.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


def admin_required(view: F) -> F:
    """Logged in as an admin, else 403 (annotators learn nothing about admin pages)."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user.role != Role.ADMIN:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def reviewer_required(view: F) -> F:
    """Logged in as a reviewer or an admin, else 403."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.may_review:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def annotator_required(view: F) -> F:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user.role != Role.ANNOTATOR:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def is_safe_next(target: str | None) -> bool:
    """Only same-site relative paths: no scheme, no host, no '//' or backslash tricks."""
    if not target:
        return False
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//")


# -- API tokens -----------------------------------------------------------------------------
def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="labelops-api-token")


def _password_stamp(user: User) -> str:
    """Part of the token: changing the password invalidates every token issued before."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_api_token(user: User) -> str:
    """A bearer token; a password change, reset or deactivation ends it (see ``_password_stamp``)."""
    return _serializer().dumps({"uid": user.id, "pw": _password_stamp(user)})


def user_from_api_token(token: str) -> User | None:
    try:
        data = _serializer().loads(token, max_age=current_app.config["API_TOKEN_MAX_AGE"])
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        return None
    user = db.session.get(User, data["uid"])
    if user is None or not user.active or data.get("pw") != _password_stamp(user):
        return None
    return user


def load_session_user(session_id: str) -> User | None:
    """flask-login's user_loader: ``"<id>:<generation>"`` names an active user whose sessions
    have not been ended since (logout, password change or reset, deactivation)."""
    user_id, sep, generation = session_id.partition(":")
    if not sep or not (user_id.isascii() and user_id.isdigit() and generation.isascii() and generation.isdigit()):
        return None  # malformed, or a cookie from before session generations
    if not 0 < int(user_id) <= 2**31 - 1:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_generation != int(generation):
        return None
    return user
