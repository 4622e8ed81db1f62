"""The web side of login throttling: the client's address, device cookies, 429 answers.

The counting lives in :mod:`include.services.login_throttle` (shared by every process).
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from include.services import login_throttle
from include.services.login_throttle import Refusal
from webapp.extensions import db

DEVICE_COOKIE = "labelops_device"
DEVICE_MAX_AGE = 180 * 24 * 3600
MAX_ACCOUNTS_PER_DEVICE = 5


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="labelops-device")


def _device_accounts() -> list[str]:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        names = _serializer().loads(raw, max_age=DEVICE_MAX_AGE)
    except BadSignature:
        return []
    return [str(n) for n in names] if isinstance(names, list) else []


def _enabled() -> bool:
    return bool(current_app.config.get("LOGIN_THROTTLE_ENABLED", True))


def refusal(username: str) -> Refusal | None:
    """Count this attempt (before its password is checked), or say why it may not go ahead.

    Committed at once, so every other process sees it while this one checks the password.
    """
    if not _enabled():
        return None
    trusted = username.strip().lower() in _device_accounts()
    refused = login_throttle.reserve(db.session(), _address(), username, trusted_device=trusted)
    db.session.commit()
    return refused


def succeeded(username: str, response: Any) -> Any:
    """Take the attempt back, clear the account's counter and remember this browser as a
    device of the account."""
    if not _enabled():
        return response
    login_throttle.forgive(db.session(), _address(), username)
    db.session.commit()
    name = username.strip().lower()
    accounts = [name, *[a for a in _device_accounts() if a != name]][:MAX_ACCOUNTS_PER_DEVICE]
    response.set_cookie(
        DEVICE_COOKIE,
        _serializer().dumps(accounts),
        max_age=DEVICE_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
    )
    return response


def _address() -> str:
    return request.remote_addr or "unknown"
