"""One declaration per pipeline: DAG params, web form, API validation and step parsing all follow
from it, and the drift that two copies allowed is gone."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from include.params import ParamError, ParamSpec, values_type
from include.pipelines import catalog
from include.pipelines.catalog import PIPELINES, STEPS, Pipeline, Step
from tests.webapp.conftest import api_token, login, make_app

THROWAWAY_PARAMS = (
    catalog.DATASET,
    ParamSpec("colour", "Colour", "choice", "teal", choices=("teal", "plum", "sand"), help="of the bikeshed"),
    ParamSpec("coats", "Coats of paint", "int", 2, minimum=1, maximum=5),
    ParamSpec("gloss", "Gloss", "float", 0.5, minimum=0, maximum=1),
    ParamSpec("dry_run", "Dry run", "bool", True),
    ParamSpec("note", "Note", "str", None, nullable=True, pattern=r"[a-z ]+", help="is lowercase words"),
)


@pytest.fixture
def throwaway(monkeypatch) -> Pipeline:
    """A pipeline declared only here, registered for the length of a test."""
    step = Step("paint_shed", values_type("PaintShed", THROWAWAY_PARAMS))
    pipeline = Pipeline("paint_shed", "Paint the shed", "A pipeline that exists only in this test.", ("paint_shed",))
    monkeypatch.setitem(STEPS, step.name, step)
    monkeypatch.setitem(PIPELINES, pipeline.name, pipeline)
    return pipeline


def test_dag_params_follow_the_declaration(throwaway: Pipeline) -> None:
    from airflow.sdk import dag, task
    from airflow.sdk.definitions.param import ParamsDict
    from airflow.sdk.exceptions import ParamValidationError

    @dag(params=throwaway.airflow_params(), schedule=None)
    def paint_shed():
        @task
        def noop() -> None:
            return None

        noop()

    params = paint_shed().params
    assert {name: params[name] for name in params} == {
        "dataset_id": None,
        "colour": "teal",
        "coats": 2,
        "gloss": 0.5,
        "dry_run": True,
        "note": None,
    }
    schema = params.get_param("coats").schema
    assert (schema["minimum"], schema["maximum"]) == (1, 5)
    assert params.get_param("colour").schema["enum"] == ["teal", "plum", "sand"]
    # Airflow itself refuses what the declaration refuses.
    for bad in ({"coats": 9}, {"colour": "red"}, {"note": "UPPER"}, {"dry_run": "maybe"}):
        run_params = ParamsDict({name: params.get_param(name) for name in params})
        with pytest.raises(ParamValidationError, match=r"Invalid input for param"):
            run_params.update(bad)
            run_params.validate()


def test_step_parsing_follows_the_declaration(throwaway: Pipeline) -> None:
    from include.pipelines.entrypoints import step_values

    values = step_values("paint_shed", {"params": {"dataset_id": 3, "coats": "4", "gloss": 0}})
    assert values.as_params() == {"dataset_id": 3, "colour": "teal", "coats": 4, "gloss": 0.0, "dry_run": True,
                                  "note": None}  # fmt: skip
    assert step_values("paint_shed", {"params": {"dataset_id": 3}}, dataset_id=8).dataset_id == 8
    with pytest.raises(ParamError, match="Coats of paint must be between 1 and 5"):
        step_values("paint_shed", {"params": {"dataset_id": 3, "coats": 0}})
    with pytest.raises(ParamError, match="Dataset is required"):
        step_values("paint_shed", {"params": {}})


def test_web_form_follows_the_declaration(db, users, throwaway: Pipeline) -> None:
    app = make_app(db)
    with app.test_client() as client:
        login(client, "admin")
        html = client.get("/admin/pipelines").get_data(as_text=True)
    card = html[html.index('data-testid="pipeline-paint_shed"') :]
    card = card[: card.index("</section>")]
    assert "Paint the shed" in card
    assert (
        '<select id="paint_shed-colour" name="colour"' in card
        and "<option selected>teal</option>" in card
        and "<option >sand</option>" in card
    )
    assert 'name="coats" step="1"' in card and 'min="1"' in card and 'max="5"' in card and 'value="2"' in card
    assert 'name="gloss" step="any"' in card
    assert 'name="dry_run" value="true" checked' in card
    assert '<select id="paint_shed-dataset_id" name="dataset_id" required>' in card


def test_api_validation_follows_the_declaration(db, users, throwaway: Pipeline, monkeypatch) -> None:
    import webapp.api.pipelines as api_pipelines
    import webapp.runs as runs

    started: list[dict[str, Any]] = []

    class Job:
        id = 1

    def fake_trigger(pipeline: Pipeline, conf: dict[str, Any], user: Any) -> Any:
        started.append(conf)
        return Job()

    monkeypatch.setattr(runs, "trigger_pipeline", fake_trigger)
    monkeypatch.setattr(api_pipelines, "job_json", lambda job: {"id": job.id})
    from tests.webapp.factories import dataset_with_tasks

    dataset_id, _ = dataset_with_tasks(db, "shed", 1)
    app = make_app(db)
    with app.test_client() as client:
        headers = api_token(client, "admin")
        cases = {
            "Coats of paint must be between 1 and 5": {"coats": 6},
            "Colour must be one of: teal, plum, sand": {"colour": "red"},
            "Gloss must be between 0 and 1": {"gloss": 1.5},
            "Dry run must be true or false": {"dry_run": "perhaps"},
            "Note is lowercase words": {"note": "SHOUT"},
            "unknown parameter 'coat'": {"coat": 3},
            "Dataset is required": {"dataset_id": None},
        }
        for message, body in cases.items():
            response = client.post(
                "/api/v1/pipelines/paint_shed", json={"dataset_id": dataset_id, **body}, headers=headers
            )
            assert response.status_code == 400, body
            assert message in response.json["error"], response.json
        ok = client.post("/api/v1/pipelines/paint_shed", json={"dataset_id": dataset_id, "coats": 3}, headers=headers)
        assert ok.status_code == 202
        listed = client.get("/api/v1/pipelines", headers=headers).json["pipelines"]
    assert started == [
        {"dataset_id": dataset_id, "colour": "teal", "coats": 3, "gloss": 0.5, "dry_run": True, "note": None}
    ]
    shed = next(p for p in listed if p["name"] == "paint_shed")
    assert [p["name"] for p in shed["params"]] == [p.name for p in THROWAWAY_PARAMS]


def test_a_form_without_a_ticked_box_means_false(throwaway: Pipeline) -> None:
    assert throwaway.build_conf({"dataset_id": "2"}, form=True)["dry_run"] is False
    assert throwaway.build_conf({"dataset_id": "2", "dry_run": "true", "csrf_token": "x"}, form=True)["dry_run"] is True
    assert throwaway.build_conf({"dataset_id": 2})["dry_run"] is True  # JSON: absent means the default


# -- drift that two copies allowed ---------------------------------------------------------------
def test_min_f1_zero_reaches_the_gate_as_zero(monkeypatch) -> None:
    """It used to become 0.6 (`float(params.get("min_f1") or 0.6)`)."""
    import include.pipelines.training.gate as gate_module
    from include.pipelines import entrypoints

    seen: dict[str, Any] = {}
    monkeypatch.setattr(gate_module, "run_gate", lambda *a, **kw: seen.update(kw, values=a[2]) or {})
    monkeypatch.setattr("include.pipelines.resources.platform_db_url", lambda settings=None: "postgresql://x")
    entrypoints.gate({"params": {"dataset_id": 4, "min_f1": 0, "require_baseline": True}}, {"model_id": 9})
    assert seen["values"].policy.min_f1 == 0.0 and seen["model_id"] == 9 and seen["values"].dataset_id == 4
    assert seen["values"].policy.require_baseline is True  # job rows dropped it once


def test_labels_setting_is_what_new_datasets_get(db, users, monkeypatch) -> None:
    """LABELS was parsed but never used: datasets always got OK/NG."""
    from webapp import create_app

    monkeypatch.setenv("DATABASE_URL", db)
    monkeypatch.setenv("SECRET_KEY", "a-test-secret-key-0123456789")
    monkeypatch.setenv("LABELS", "spam, ham, unsure")
    app = create_app()
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False, LOGIN_THROTTLE_ENABLED=False)
    with app.test_client() as client:
        headers = api_token(client, "admin")
        created = client.post("/api/v1/datasets", json={"name": "inbox"}, headers=headers)
        assert created.status_code == 201 and created.json["dataset"]["labels"] == ["spam", "ham", "unsure"]
        login(client, "admin")
        form = client.get("/admin/datasets/new").get_data(as_text=True)
    assert 'value="spam, ham, unsure"' in form


def test_the_embedding_models_offered_are_the_ones_accepted(db, users) -> None:
    """The catalog offered one embedding model while the DAG accepted any."""
    from include.db.session import session_scope
    from include.services.vectors import register_model

    with session_scope(db) as s:
        register_model(s, "ollama:nomic-embed-text", "ollama", "nomic-embed-text", 768)
    app = make_app(db, OPENAI_EMBEDDING_MODEL="text-embedding-3-small")
    with app.test_client() as client:
        login(client, "admin")
        html = client.get("/admin/pipelines").get_data(as_text=True)
    options = html[html.index('id="embed_items-embedding_model-options"') :]
    options = options[: options.index("</datalist>")]
    offered = [o.split('"')[1] for o in options.split("<option value=")[1:]]
    assert offered == ["all-MiniLM-L6-v2", "openai:text-embedding-3-small", "ollama:nomic-embed-text"]
    spec = STEPS["embed_items"].params[1]
    for name in offered:
        assert spec.parse(name) == name  # the API and the steps accept every offered name
    for bad in ("bogus", "openai:", "st:"):
        with pytest.raises(ParamError, match="Embedding model is all-MiniLM-L6-v2, st:<local model directory>"):
            spec.parse(bad)


def test_no_parameter_is_declared_twice() -> None:
    """A declaration used by several steps is one object; two objects are two different parameters."""
    specs = {id(spec): spec for step in STEPS.values() for spec in step.params}
    distinct = list(specs.values())
    for i, a in enumerate(distinct):
        for b in distinct[i + 1 :]:
            assert a != b, f"{a.name} is declared twice with the same content"
    shared = [spec for spec in distinct if sum(spec in step.params for step in STEPS.values()) > 1]
    assert {s.name for s in shared} >= {"dataset_id", "embedding_model"}


def test_dag_files_and_the_catalog_parse_without_torch() -> None:
    code = (
        "import sys; import include.pipelines.catalog, include.pipelines.entrypoints; "
        "print(sorted(m for m in ('torch', 'sklearn', 'sentence_transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
