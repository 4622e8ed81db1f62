"""Errors carry their meaning, and become answers in one place (webapp.errors).

Static checks over the code (the rules of the house) and one behaviour check per kind.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import include
import include.errors as errors
from include.errors import DomainError

REPO = Path(__file__).resolve().parents[2]
CONTROL_FLOW = {"SkipStep", "TrainingStopped", "_Nothing"}  # not errors: how a step or a chart says "nothing to do"


# Not views: the CLI prints an error and exits; the health probe reports a dependency down as data.
NOT_VIEWS = {"errors.py", "cli.py", "health.py"}
# On purpose: a stop that already took effect here reports that Airflow's side did not follow,
# as a message, rather than failing the whole request; the login form answers a wrong password
# with itself (401), keeping what was typed.
ANSWERS_ANYWAY = {
    ("webapp/runs.py", "stop_experiment"),
    ("webapp/auth/routes.py", "login"),
    # the guidelines are saved and committed first; Label Studio gets them now or with the next import
    ("webapp/guidelines.py", "save_guidelines"),
}


def _views() -> list[Path]:
    return [p for p in (REPO / "webapp").rglob("*.py") if p.name not in NOT_VIEWS]


def _reraises(handler: ast.ExceptHandler) -> bool:
    """A handler that cleans up or adds context and raises again keeps the error's meaning."""
    return any(isinstance(n, ast.Raise) for n in ast.walk(handler))


def _enclosing_functions(tree: ast.AST) -> dict[ast.AST, str]:
    owner: dict[ast.AST, str] = {}
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                owner.setdefault(node, fn.name)
    return owner


def test_no_view_picks_a_status_from_an_exception() -> None:
    """No ``except`` in a view turns a domain error into a status, and nothing matches error text."""
    offenders = []
    for path in _views():
        tree = ast.parse(path.read_text())
        owner = _enclosing_functions(tree)
        for node in ast.walk(tree):
            if (str(path.relative_to(REPO)), owner.get(node)) in ANSWERS_ANYWAY:
                continue
            if isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
                right = node.comparators[0]
                if isinstance(right, ast.Call) and getattr(right.func, "id", None) == "str":
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} matches an exception's text")
            if isinstance(node, ast.ExceptHandler) and node.type is not None and not _reraises(node):
                caught = [c.__name__ for c in _caught(path, node.type) if issubclass(c, DomainError)]
                if caught:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} catches {caught}")
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) >= 2:
                status = node.value.elts[1]
                if isinstance(status, ast.Constant) and isinstance(status.value, int) and status.value >= 400:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno} answers {status.value} itself")
    assert offenders == []


def _caught(path: Path, expression: ast.expr) -> list[type]:
    """The classes an ``except`` names, looked up in its module (so aliases and re-exports count)."""
    module = importlib.import_module(".".join(path.relative_to(REPO).with_suffix("").parts))
    found = eval(compile(ast.Expression(expression), str(path), "eval"), vars(module))
    return [c for c in (found if isinstance(found, tuple) else (found,)) if isinstance(c, type)]


def test_rollback_happens_in_one_place() -> None:
    calls = [
        f"{p.relative_to(REPO)}"
        for p in _views()
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.Attribute) and node.attr == "rollback"
    ]
    assert calls == []


def _error_classes() -> list[type[BaseException]]:
    found = []
    for module in pkgutil.walk_packages(include.__path__, "include."):
        if ".migrations" in module.name or module.name.startswith(("include.runtime", "include.db.migrate")):
            continue
        loaded = importlib.import_module(module.name)
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if issubclass(cls, Exception) and cls.__module__ == loaded.__name__:
                found.append(cls)
    return found


def test_every_platform_error_says_what_it_means() -> None:
    """Every error the platform raises derives from one base that carries its HTTP status."""
    loose = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in _error_classes()
        if not issubclass(cls, DomainError) and cls.__name__ not in CONTROL_FLOW
    ]
    allowed = {
        "include.config.SettingsError",  # the launcher's and the processes' start-up, before any request
        "include.pii.engine.PiiError",  # wrapped as PolicyError by the service that calls the engine
        "include.pii.mapping.MappingError",  # wrapped as KeyUnavailable
        "include.pii.llm.LlmUnusable",  # kept as the held item's reason (or a PolicyError in a try)
        "include.ml.training.logistic.TooFewExamples",  # wrapped as TrainingDataError
        "include.ml.training.train.TrainingDataError",  # a step's skip (too few labels), never a request's
        "include.ml.training.finetune.FinetuneDataError",  # the same, for the encoder
        "include.ml.embeddings.onnx.Unsupported",  # torch instead, or a ValueError naming EMBED_RUNTIME
    }
    assert set(loose) <= allowed, sorted(set(loose) - allowed)


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.Invalid, 400),
        (errors.Unauthenticated, 401),
        (errors.Forbidden, 403),
        (errors.NotFound, 404),
        (errors.Conflict, 409),
        (errors.TooLarge, 413),
        (errors.Unavailable, 503),
    ],
)
def test_each_kind_answers_its_status_as_json_and_as_a_page(db, users, cls: type[DomainError], status: int) -> None:
    from flask import Blueprint

    from tests.webapp.conftest import login, make_app

    probe = Blueprint("probe", __name__)

    @probe.get("/probe")
    def raising() -> None:
        raise cls("the probe says so", extra="detail")

    app = make_app(db)
    app.register_blueprint(probe, url_prefix="/api/v1")
    app.register_blueprint(probe, url_prefix="/page", name="probe_page")
    with app.test_client() as client:
        answer = client.get("/api/v1/probe")
        assert (answer.status_code, answer.json) == (status, {"error": "the probe says so", "status": status,
                                                             "extra": "detail"})  # fmt: skip
        if status == 503:
            assert answer.headers["Retry-After"]
        login(client, "admin")
        page = client.get("/page/probe")
        assert page.status_code == status and "the probe says so" in page.get_data(as_text=True)
