"""Role guards, the open-redirect guard and signed API tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
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
    return _serializer().dumps({"uid": user.id, "pw": _password_stamp(user)})


def user_from_api_token(token: str) -> User | None:
    try:
        data = _serializer().loads(token, max_age=current_app.config["API_TOKEN_MAX_AGE"])
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict):
        return None
    user = db.session.get(User, int(data.get("uid", 0)))
    if user is None or not user.active or data.get("pw") != _password_stamp(user):
        return None
    return user


# -- login rate limits (shared by the login page and the API) -------------------------------
def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


def _username_key() -> str:
    from flask import request

    name = request.form.get("username")
    if name is None:
        body = request.get_json(silent=True)
        name = body.get("username") if isinstance(body, dict) else None
    return "login-user:" + str(name or "").strip().lower()


def login_rate_limits(view: F) -> F:
    """Per client address and per username, across the page and the API (a shared budget)."""
    from webapp.extensions import limiter

    limited = limiter.shared_limit(_login_limit, scope="login-ip", methods=["POST"])(view)
    limited = limiter.shared_limit(_login_limit, scope="login-user", key_func=_username_key, methods=["POST"])(limited)
    return cast(F, limited)
