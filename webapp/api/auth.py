"""API: logging in for a bearer token, and who the token belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, jsonify

from include.errors import RateLimited, Unauthenticated
from include.params import ParamSpec, Values, param
from include.services.users import authenticate
from webapp.api import ANYONE, api_user, route
from webapp.auth import throttle
from webapp.extensions import db
from webapp.security import make_api_token


@dataclass(frozen=True, kw_only=True)
class Credentials(Values):
    username: str = param(ParamSpec("username", "Username", "str", max_length=128))
    password: str = param(ParamSpec("password", "Password", "str", max_length=1024, strip=False))


@route("POST", "/auth/login", tag="auth", roles=None, body=Credentials, response="Token", errors=(401, 429))
def login(body: Credentials) -> Any:
    """Exchange username and password for a bearer token."""
    refused = throttle.refusal(body.username)
    if refused is not None:
        raise RateLimited(f"{refused.reason}; try again in {refused.retry_after} s", refused.retry_after)
    user = authenticate(db.session(), body.username, body.password)
    if user is None:
        raise Unauthenticated("wrong username or password")
    token = {
        "access_token": make_api_token(user),
        "token_type": "bearer",
        "role": user.role.value,
        "expires_in": current_app.config["API_TOKEN_MAX_AGE"],
    }
    return throttle.succeeded(body.username, jsonify(token))


@route("GET", "/me", tag="auth", roles=ANYONE, response="Me")
def me() -> dict[str, Any]:
    """The user the token belongs to."""
    user = api_user()
    return {"id": user.id, "username": user.username, "email": user.email, "role": user.role.value}
