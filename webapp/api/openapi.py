"""The API's OpenAPI 3.1 description, built from the routes' own declarations.

Every route registered with ``webapp.api.route`` is described from what it declared: its query
and body ``Values`` (the same declarations the pages and the DAGs use), its roles, its answer's
schema (``webapp.api.schemas``) and the errors it may give. Each pipeline gets its own path,
with its body built from the pipeline catalog. Served at ``/api/v1/openapi.json``; the docs
page at ``/api/v1/docs`` is drawn by the app from the same description (no CDN, no script).
"""

from __future__ import annotations

import re
from typing import Any

from flask import render_template, url_for

from include.params import INT4_MAX, INT8_MAX, Values
from include.pipelines.catalog import PIPELINES
from webapp.api import ROUTES, ApiRoute, bp, route
from webapp.api.schemas import SCHEMAS, ref

TITLE = "LabelOps API"
VERSION = "1"
_RULE_ARG = re.compile(r"<(?:(\w+):)?(\w+)>")
_CONVERTERS = {
    "id": {"type": "integer", "minimum": 1, "maximum": INT4_MAX},
    "bigid": {"type": "integer", "minimum": 1, "maximum": INT8_MAX},
}
ERRORS = {
    400: "Invalid: the message names the field and what it takes",
    401: "No valid bearer token",
    403: "Your role cannot do this",
    404: "Not found",
    409: "Conflict with the thing's state",
    413: "Too large",
    429: "Too many attempts (Retry-After)",
    503: "A service it needs is unavailable; nothing was changed (Retry-After)",
}


def path_of(rule: str) -> str:
    """``/datasets/<id:dataset_id>`` -> ``/datasets/{dataset_id}``."""
    return _RULE_ARG.sub(lambda m: "{" + m.group(2) + "}", rule)


def _path_params(rule: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": _CONVERTERS.get(conv or "", {"type": "string"})}
        for conv, name in _RULE_ARG.findall(rule)
    ]


def _query_params(values: type[Values]) -> list[dict[str, Any]]:
    schema = values.json_schema()
    return [
        {
            "name": name,
            "in": "query",
            "required": name in schema.get("required", []),
            "schema": {k: v for k, v in prop.items() if k != "description"},
            "description": prop.get("description", ""),
        }
        for name, prop in schema["properties"].items()
    ]


def _answer(r: ApiRoute) -> dict[str, Any]:
    if r.produces != "application/json":
        return {"description": "the file, streamed", "content": {r.produces: {"schema": {"type": "string"}}}}
    if r.response is None:
        schema: dict[str, Any] = {"type": "object"}
    elif r.listing:
        schema = {
            "type": "object",
            "required": [r.listing, "page", "limit", "has_next", "total"],
            "properties": {
                r.listing: {"type": "array", "items": ref(r.response)},
                "page": {"type": "integer"},
                "limit": {"type": "integer"},
                "has_next": {"type": "boolean"},
                "total": {"type": ["integer", "null"], "description": "null where counting would be slow"},
            },
        }
    else:
        schema = ref(r.response)
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _operation(
    r: ApiRoute, *, summary: str | None = None, body: dict[str, Any] | None = None, path_params: bool = True
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": r.endpoint.removeprefix("api."),
        "tags": [r.tag],
        "summary": summary or r.summary,
        "description": r.description,
        "responses": {str(code): _answer(r) for code in (r.status, *r.also)},
    }
    if r.roles is None:
        op["security"] = []
    else:
        op["x-roles"] = [role.value for role in r.roles]
    params = (_path_params(r.rule) if path_params else []) + (_query_params(r.query) if r.query else [])
    if params:
        op["parameters"] = params
    body = body or (r.body.json_schema() if r.body else dict(r.body_schema) if r.body_schema else None)
    content: dict[str, Any] = {}
    if body is not None:
        if r.partial:
            body = {**body, "minProperties": 1, "description": "fields not sent keep their values"}
        content["application/json"] = {"schema": body}
    if r.upload:
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    name: {"type": "string", "format": "binary" if name == "file" else None, "description": text}
                    for name, text in r.upload.items()
                },
            }
        }
    if content:
        op["requestBody"] = {"required": r.body is not None and not r.partial, "content": content}
    codes = {400, *r.errors} | ({401} if r.roles is not None else set()) | ({403} if r.roles else set())
    for code in sorted(codes):
        op["responses"][str(code)] = {
            "description": ERRORS.get(code, "Error"),
            "content": {"application/json": {"schema": ref("Error")}},
        }
    return {k: v for k, v in op.items() if v not in ("", None)}


def _clean(value: Any) -> Any:
    """Drop None values inside schemas (``format`` of plain fields)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None or k in ("default", "const")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def build() -> dict[str, Any]:
    """The whole description."""
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        if r.endpoint == "api.run_pipeline":
            for p in PIPELINES.values():
                operation = _operation(r, summary=p.title, body=p.json_schema(), path_params=False)
                operation["operationId"] = f"run_{p.name}"
                operation["description"] = p.description
                paths.setdefault(f"/pipelines/{p.name}", {})["post"] = operation
            continue
        paths.setdefault(path_of(r.rule), {})[r.method.lower()] = _operation(r)
    return _clean(
        {
            "openapi": "3.1.0",
            "info": {
                "title": TITLE,
                "version": VERSION,
                "description": "The LabelOps JSON API. Log in with POST /auth/login for a bearer token; admins "
                "manage, annotators see and label only their own tasks. Errors are {error, status}.",
            },
            "servers": [{"url": "/api/v1"}],
            "security": [{"bearer": []}],
            "tags": sorted({r.tag for r in ROUTES}),
            "paths": paths,
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": SCHEMAS,
            },
        }
    ) | {"tags": [{"name": t} for t in sorted({r.tag for r in ROUTES})]}


@route("GET", "/openapi.json", tag="docs", roles=None)
def openapi_json() -> dict[str, Any]:
    """This description."""
    return build()


@bp.get("/docs")
def docs() -> Any:
    """The API's reference page, drawn from the description."""
    spec = build()
    return render_template("api/docs.html", spec=spec, spec_url=url_for("api.openapi_json"))
