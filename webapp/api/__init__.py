"""JSON API for automation (the seed's scripted flow), bearer-token authenticated.

Same permission rules as the pages: admins manage, annotators see and label only their own.
One module per resource; every route is declared with :func:`route`, which authenticates,
parses the declared query and body (``include.params.Values``: the same declarations the pages
and the DAGs use) and records the route for the OpenAPI description (``webapp.api.openapi``).
Errors are domain errors, answered in one place (``webapp.errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Generic, TypeVar

from flask import Blueprint, g, request

from include.db.models import Role, User
from include.errors import Forbidden, Invalid, Unauthenticated
from include.params import ParamError, Values
from include.services.paging import Page
from webapp.args import has_nul
from webapp.security import user_from_api_token

bp = Blueprint("api", __name__)
F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V", bound=Values)

ADMIN: tuple[Role, ...] = (Role.ADMIN,)
ANNOTATOR: tuple[Role, ...] = (Role.ANNOTATOR,)
ANYONE: tuple[Role, ...] = tuple(Role)


@dataclass(frozen=True)
class ApiRoute:
    """One declared route: what the OpenAPI description says about it."""

    method: str
    rule: str
    endpoint: str
    tag: str
    summary: str
    description: str
    roles: tuple[Role, ...] | None  # None: no token needed
    query: type[Values] | None = None
    body: type[Values] | None = None
    body_schema: Mapping[str, Any] | None = None  # a body the view parses itself (described by hand)
    partial: bool = False
    upload: Mapping[str, str] | None = None  # a multipart form: field -> description
    status: int = 200
    also: tuple[int, ...] = ()  # other success statuses (201 when created, 200 when it existed)
    response: str | None = None  # a schema name of webapp.api.schemas
    listing: str | None = None  # a paged list: the key of its items, of schema ``response``
    produces: str = "application/json"
    errors: tuple[int, ...] = field(default=())


ROUTES: list[ApiRoute] = []


class PartialBody(Generic[V]):
    """A body that changes some settings: absent fields keep the values of ``current``."""

    def __init__(self, values: type[V], raw: Mapping[str, Any]) -> None:
        self.values, self.raw = values, raw

    @property
    def given(self) -> set[str]:
        return set(self.raw)

    def over(self, current: V) -> V:
        return self.values.parse(self.raw, strict=True, current=current)


def route(
    method: str,
    rule: str,
    *,
    tag: str,
    roles: tuple[Role, ...] | None = ADMIN,
    query: type[Values] | None = None,
    body: type[Values] | None = None,
    body_schema: Mapping[str, Any] | None = None,
    partial: bool = False,
    body_from_query: bool = False,
    upload: Mapping[str, str] | None = None,
    status: int = 200,
    also: tuple[int, ...] = (),
    response: str | None = None,
    listing: str | None = None,
    produces: str = "application/json",
    errors: tuple[int, ...] = (),
) -> Callable[[F], F]:
    """Declare an API route: authenticate (``roles``), parse ``query`` into the view's ``query``
    argument and ``body`` into its ``body`` argument, answer a returned dict as JSON.

    ``partial``: the body changes some fields of a resource; the view gets a
    :class:`PartialBody` and at least one field must be sent. ``body_from_query``: the body's
    fields may come in the query string too (the seed's ``auto_assign?username=...``).
    """

    def decorator(view: F) -> F:
        doc = (view.__doc__ or "").strip()
        summary, _, rest = doc.partition("\n")
        declared = ApiRoute(
            method=method,
            rule=rule,
            endpoint=f"api.{view.__name__}",
            tag=tag,
            summary=summary.strip() or view.__name__.replace("_", " "),
            description=" ".join(rest.split()),
            roles=roles,
            query=query,
            body=body,
            body_schema=body_schema,
            partial=partial,
            upload=upload,
            status=status,
            also=also,
            response=response,
            listing=listing,
            produces=produces,
            errors=errors,
        )

        @wraps(view)
        def wrapped(**kwargs: Any) -> Any:
            if roles is not None:
                g.api_user = _authenticate(roles)
            if query is not None:
                kwargs["query"] = query.parse(request.args.to_dict(), by_name=True)
            if body is not None:
                raw = json_body()
                if body_from_query:
                    raw = {**{k: v for k, v in request.args.items() if k in body.names()}, **raw}
                if partial:
                    unknown = sorted(set(raw) - set(body.names()))
                    if unknown:
                        raise ParamError(f"unknown field {unknown[0]!r}; this takes: {', '.join(body.names())}")
                    if not raw:
                        raise Invalid(f"send at least one of: {', '.join(body.names())}")
                    kwargs["body"] = PartialBody(body, raw)
                else:
                    kwargs["body"] = body.parse(raw, strict=True)
            answer = view(**kwargs)
            if isinstance(answer, dict):
                return answer, status
            return answer

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[method])
        ROUTES.append(declared)
        return wrapped  # type: ignore[return-value]

    return decorator


def _authenticate(roles: tuple[Role, ...]) -> User:
    """``Authorization: Bearer <token>``: 401 without a valid one, 403 for another role."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    user = user_from_api_token(token) if token else None
    if user is None:
        raise Unauthenticated("missing or invalid token: POST /api/v1/auth/login first")
    if user.role not in roles:
        raise Forbidden("your role cannot do this")
    return user


def api_user() -> User:
    user = g.get("api_user")
    if user is None:
        raise Unauthenticated("missing or invalid token: POST /api/v1/auth/login first")
    return user


def json_body() -> dict[str, Any]:
    """The request's JSON object ({} when there is none); 400 for other JSON or NUL characters."""
    body = request.get_json(silent=True)
    if body is None:
        if request.data.strip() and request.mimetype == "application/json":
            raise Invalid("the body is not valid JSON")
        return {}
    if not isinstance(body, dict):
        raise Invalid("send a JSON object")
    if has_nul(body):
        raise Invalid("the JSON body contains a NUL character (\\u0000), which cannot be stored")
    return body


def paged(key: str, page: Page[Any], convert: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """The one shape of a list: its items under ``key``, the page, the limit, whether there is
    a next page, and the total where it was cheap to count (else null)."""
    return {
        key: page.map(convert),
        "page": page.page,
        "limit": page.limit,
        "has_next": page.has_next,
        "total": page.total,
    }


from webapp.api import (  # noqa: E402, F401
    annotator,
    auth,
    configs,
    datasets,
    exports,
    inference,
    jobs,
    models,
    openapi,
    pipelines,
    privacy,
    quality,
    review,
    tasks,
)
