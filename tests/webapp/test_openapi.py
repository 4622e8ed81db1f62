"""The API's OpenAPI description against the routes, the declarations and the real answers.

The description is built from the same declarations the routes parse with; these tests make
sure it is a valid OpenAPI 3.1 document, names every route the app serves (and none it does
not), and that what the API really answers fits the schemas it publishes.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import update

from include.db.models import Task, TaskStatus
from include.db.session import session_scope
from include.services import pii
from tests.webapp.conftest import api_token, login
from tests.webapp.factories import dataset_with_tasks
from webapp.api import ROUTES
from webapp.api.openapi import path_of


def _spec(client: Any) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json


def test_the_description_is_valid_openapi_3_1(client) -> None:
    from openapi_spec_validator import validate

    spec = _spec(client)
    assert spec["openapi"] == "3.1.0"
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_route_is_described_and_every_description_is_a_route(app, client) -> None:
    spec = _spec(client)
    served = {
        (path_of(rule.rule.removeprefix("/api/v1")), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.docs"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    pipelines = {(p, m) for p, m in described if p.startswith("/pipelines/")}
    assert served - {("/pipelines/{name}", "post")} == described - pipelines
    from include.pipelines.catalog import PIPELINES

    assert pipelines == {(f"/pipelines/{name}", "post") for name in PIPELINES}


def test_bodies_and_queries_are_the_declarations(client) -> None:
    spec = _spec(client)
    for route in ROUTES:
        if route.endpoint == "api.run_pipeline":
            continue
        op = spec["paths"][path_of(route.rule)][route.method.lower()]
        if route.body is not None:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert set(body["properties"]) == set(route.body.names()), route.endpoint
            assert body["additionalProperties"] is False
        if route.query is not None:
            assert {p["name"] for p in op["parameters"] if p["in"] == "query"} == set(route.query.names())
        if route.listing:  # every list pages the same way
            assert {"limit", "page"} <= {p["name"] for p in op.get("parameters", [])}, route.endpoint
    train = spec["paths"]["/pipelines/train_classifier"]["post"]["requestBody"]["content"]["application/json"]
    assert train["schema"]["properties"]["model_kind"]["enum"] == ["logistic", "mlp"]


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"text": ["call 13800138000"]}, True),
        ({"text": "one text", "policy_id": "default", "options": {"format": "json", "seed": 3}}, True),
        ({"text": ["x"], "options": {"bogus": 1}}, False),
        ({"policy_id": "default"}, False),
        ({"text": [1, 2]}, False),
        ({"text": ["x"], "options": {"format": "xml"}}, False),
    ],
)
def test_the_hand_written_deidentify_body_agrees_with_its_parser(body: dict[str, Any], valid: bool) -> None:
    """``deidentify:test`` keeps seed 003's contract (aliases no ParamSpec has), so its schema is
    written by hand: the schema and the parser must accept and refuse the same bodies."""
    by_schema = Draft202012Validator(pii.TRY_REQUEST_SCHEMA).is_valid(body)
    try:
        pii.parse_test_request(body)
        by_parser = True
    except pii.PolicyError:
        by_parser = False
    assert by_schema == by_parser == valid


class Checked:
    """A test client that checks every API answer against the published schema of its route."""

    def __init__(self, client: Any, spec: dict[str, Any]) -> None:
        self.client, self.spec, self.checked = client, spec, 0
        self.adapter = client.application.url_map.bind("localhost")
        self.routes = {r.endpoint: r for r in ROUTES}

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.open(path, method=method, **kwargs)
        endpoint, _ = self.adapter.match(path.split("?")[0], method=method)
        route = self.routes[endpoint]
        template = path_of(route.rule)
        if route.endpoint == "api.run_pipeline":
            template = path.split("?")[0].removeprefix("/api/v1")
        answer = self.spec["paths"][template][method.lower()]["responses"].get(str(response.status_code))
        assert answer is not None, f"{method} {path} answered {response.status_code}, which is not described"
        content = (answer.get("content") or {}).get("application/json")
        if content is not None and response.is_json:
            schema = {**content["schema"], "components": self.spec["components"]}
            errors = sorted(Draft202012Validator(schema).iter_errors(response.json), key=str)
            assert not errors, f"{method} {path}: {errors[0].message} at {list(errors[0].absolute_path)}"
            self.checked += 1
        return response


def test_real_answers_fit_the_published_schemas(db, client, users) -> None:
    api = Checked(client, _spec(client))
    admin, alice = api_token(client, "admin"), api_token(client, "alice")
    dataset_id, task_ids = dataset_with_tasks(db, "described", 6)
    with session_scope(db) as s:
        s.execute(update(Task).where(Task.id.in_(task_ids[:2])).values(status=TaskStatus.LABELED, label="OK"))
    api("GET", "/api/v1/me", headers=admin)
    created = api("POST", "/api/v1/datasets", json={"name": "from-api", "demo": 5}, headers=admin)
    assert created.status_code == 201
    api("POST", "/api/v1/datasets", json={"name": "x!"}, headers=admin)  # 400, the error schema
    listed = api("GET", "/api/v1/datasets?limit=1", headers=admin).json
    assert (listed["limit"], listed["total"], listed["has_next"], len(listed["datasets"])) == (1, 2, True, 1)
    api("GET", f"/api/v1/datasets/{dataset_id}", headers=admin)
    api("GET", "/api/v1/datasets/9999", headers=admin)  # 404
    api("GET", f"/api/v1/datasets/{dataset_id}/stats", headers=admin)
    api("GET", f"/api/v1/datasets/{dataset_id}/priority_tasks?limit=2", headers=admin)
    assigned = api("POST", f"/api/v1/datasets/{dataset_id}/auto_assign", json={"username": "alice", "count": 2},
                   headers=admin)  # fmt: skip
    assert assigned.json["assigned"] == 2
    settings = api("GET", f"/api/v1/datasets/{dataset_id}/settings", headers=admin).json
    changed = api("PUT", f"/api/v1/datasets/{dataset_id}/settings", json={"overlap_share": 0.2, "min_kappa": 0.5},
                  headers=admin).json  # fmt: skip
    assert {**settings, "overlap_share": 0.2, "min_kappa": 0.5} == changed
    assert api("PUT", f"/api/v1/datasets/{dataset_id}/settings", json={}, headers=admin).status_code == 400
    api("PUT", f"/api/v1/datasets/{dataset_id}/overlap", json={"overlap_share": 0.1}, headers=admin)
    api("GET", f"/api/v1/datasets/{dataset_id}/live-loop", headers=admin)
    api("PUT", f"/api/v1/datasets/{dataset_id}/live-loop", json={"retune_at_labels": 0}, headers=admin)
    api("GET", f"/api/v1/datasets/{dataset_id}/eval_set", headers=admin)
    api("PUT", f"/api/v1/datasets/{dataset_id}/eval_set", json={"eval_cap": 500}, headers=admin)
    api("GET", f"/api/v1/datasets/{dataset_id}/learning_curve", headers=admin)
    api("POST", f"/api/v1/tasks/{task_ids[0]}/eval", json={"member": True}, headers=admin)
    api("POST", f"/api/v1/tasks/{task_ids[4]}/assign/bob", headers=admin)
    api("POST", f"/api/v1/tasks/{task_ids[4]}/unassign", headers=admin)
    mine = api("GET", "/api/v1/annotator/tasks", headers=alice).json
    assert mine["total"] is None and len(mine["tasks"]) == 2  # no COUNT over a dataset's tasks
    api("POST", f"/api/v1/annotator/tasks/{mine['tasks'][0]['id']}/label", json={"label": "NG"}, headers=alice)
    api("POST", f"/api/v1/annotator/tasks/{mine['tasks'][0]['id']}/label", json={"label": "??"}, headers=alice)
    api("GET", "/api/v1/annotator/stats", headers=alice)
    api("GET", "/api/v1/annotator/outbox", headers=alice)
    api("GET", "/api/v1/outbox", headers=admin)
    api("GET", "/api/v1/outbox", headers=alice)  # 403
    api("GET", "/api/v1/jobs", headers=admin)
    api("GET", "/api/v1/models", headers=admin)
    api("GET", "/api/v1/models/5", headers=admin)  # 404
    api("GET", "/api/v1/pipelines", headers=admin)
    api("POST", "/api/v1/pipelines/quality_check", json={"dataset_id": dataset_id}, headers=admin)  # 503: no Airflow
    api("POST", "/api/v1/pipelines/quality_check", json={"dataset_id": dataset_id, "nope": 1}, headers=admin)
    policy = api("POST", "/api/v1/pii/policies", json={"name": "phones", "entities": {"PHONE": "placeholder"}},
                 headers=admin).json["policy"]  # fmt: skip
    api("PUT", f"/api/v1/pii/policies/{policy['id']}", json={"name": "phones", "entities": {"PHONE": "mask"}},
        headers=admin)  # fmt: skip
    api("GET", "/api/v1/pii/policies", headers=admin)
    api("POST", "/api/v1/deidentify:test", json={"text": ["call 13812345678"]}, headers=alice)
    api("GET", f"/api/v1/datasets/{dataset_id}/quality", headers=admin)
    api("PUT", f"/api/v1/datasets/{dataset_id}/quality/thresholds", json={"min_kappa": 0.3}, headers=admin)
    api("GET", f"/api/v1/datasets/{dataset_id}/agreement", headers=admin)
    api("GET", f"/api/v1/datasets/{dataset_id}/snapshots", headers=admin)
    api("POST", f"/api/v1/datasets/{dataset_id}/snapshots", headers=admin)
    api("GET", f"/api/v1/datasets/{dataset_id}/training_configs", headers=admin)
    api("POST", f"/api/v1/datasets/{dataset_id}/training_configs", json={"name": "c", "yaml": "c: 0.5\n"},
        headers=admin)  # fmt: skip
    api("POST", f"/api/v1/datasets/{dataset_id}/training_configs", json={"name": "c", "yaml": "epocs: 3\n"},
        headers=admin)  # fmt: skip
    api("GET", "/api/v1/inference", headers=admin)
    api("POST", "/api/v1/inference", data={"file": (io.BytesIO(b"text\nhi\n"), "x.csv")}, headers=admin)
    api("GET", "/api/v1/jobs", headers={"Authorization": "Bearer nope"})  # 401
    assert api.checked >= 45


def test_the_docs_page_is_served_by_the_app(client) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "cdn" not in page.get_data(as_text=True).lower()
    html = page.get_data(as_text=True)
    for operation in ("create", "put_settings", "run_train_classifier", "deidentify_test", "my_tasks"):
        assert f'data-operation="{operation}"' in html, operation
    assert "<script" not in html  # a page a strict CSP serves as is


def test_a_page_refuses_with_the_form_again_and_the_api_with_json(db, client, users) -> None:
    """One error handler: the same refused value gives the settings page again (400, the message
    shown, the form still there) and, from the API, ``{"error", "status"}``."""
    dataset_id, _ = dataset_with_tasks(db, "refused", 2)
    login(client, "admin")
    page = client.post(f"/admin/datasets/{dataset_id}/settings/overlap", data={"overlap_share": "250"})
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "Second annotator (%) must be between 0 and 100" in html
    assert 'data-testid="overlap-form"' in html
    assert (
        client.post(f"/admin/datasets/{dataset_id}/settings/overlap", data={"overlap_share": "25"}).status_code == 302
    )
    answer = client.put(
        f"/api/v1/datasets/{dataset_id}/overlap", json={"overlap_share": 2.5}, headers=api_token(client, "admin")
    )
    assert answer.status_code == 400 and answer.json == {
        "error": "overlap_share must be between 0 and 1",
        "status": 400,
    }
    with session_scope(db) as s:
        from include.db.models import Dataset

        assert s.get_one(Dataset, dataset_id).overlap_share == 0.25  # the page's percent, kept as a share
    missing = client.post("/admin/datasets/9999/settings/overlap", data={"overlap_share": "5"})
    assert missing.status_code == 404 and "dataset 9999 does not exist" in missing.get_data(as_text=True)
