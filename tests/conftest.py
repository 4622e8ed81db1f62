"""Test session: real PostgreSQL + pgvector (pgserver), a real Label Studio, Airflow on SQLite.

Everything heavy is session-scoped and started only when a test asks for it. Airflow reads its
configuration once, at first import, so its environment is set here before anything imports it.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO / "dags"
_TMP = Path(tempfile.mkdtemp(prefix="labelops-tests-"))
_AF_HOME = _TMP / "airflow"
_AF_HOME.mkdir()

os.environ.update(
    {
        "AIRFLOW_HOME": str(_AF_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AF_HOME}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "30",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LABELOPS_HOME": str(_TMP / "home"),
    }
)
for _var in (
    "DATABASE_URL",
    "LS_URL",
    "LS_API_TOKEN",
    "LS_PROJECT_ID",
    "AIRFLOW_CONN_LABELOPS_DB",
    "AIRFLOW_CONN_LABELSTUDIO_DEFAULT",
):
    os.environ.pop(_var, None)

# Label Studio's first `init` takes about 45 s: keep an initialised copy between test runs.
LS_TEMPLATE = Path(os.environ.get("LABELOPS_TEST_CACHE", REPO / ".labelops" / "test-cache")) / "label-studio"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "labelstudio: needs the real Label Studio server")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    config.addinivalue_line("markers", "airflow: runs DAGs with dag.test()")
    config.addinivalue_line("markers", "slow: minutes of real processes (the fault suite); make test-fast skips it")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_TMP, ignore_errors=True)


# -- PostgreSQL -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg() -> Iterator[object]:
    from include.runtime.embedded_pg import EmbeddedPostgres, free_port

    server = EmbeddedPostgres(_TMP / "pg", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def db_url(pg) -> Iterator[str]:
    """A migrated platform database; DATABASE_URL points at it for code under test."""
    from include.db.migrate import upgrade

    url = pg.ensure_database("labelops_test")
    upgrade(url)
    os.environ["DATABASE_URL"] = url
    yield url


TABLES = (
    "annotations, tasks, items, jobs, experiment_epochs, models, experiments, embeddings, "
    "embedding_models, ls_projects, datasets, users, task_counts, login_throttle, job_attempts, label_outbox, "
    "eval_items, experiment_items, model_evaluations, pii_policies, pii_mappings, pii_reveals, quality_reports, "
    "task_extra_assignees, snapshots, snapshot_items, inference_runs, inference_inputs, inference_results, "
    "key_fingerprints, ls_instances, ls_echoes"
)


@pytest.fixture
def db(db_url: str) -> str:
    """The database URL, emptied before the test."""
    from sqlalchemy import text

    from include.db.session import get_engine
    from include.services.ls_identity import forget_checks

    with get_engine(db_url).begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    forget_checks()  # what was checked against the emptied database
    return db_url


@pytest.fixture
def session(db: str) -> Iterator[object]:
    """A session on the emptied database; the test commits what it wants others to see."""
    from sqlalchemy.orm import Session

    from include.db.session import get_engine

    with Session(get_engine(db), expire_on_commit=False) as s:
        yield s
        s.rollback()


# -- Label Studio -----------------------------------------------------------------------------
class LabelStudioHandle:
    def __init__(self, server: object, token: str) -> None:
        self.server = server
        self.url: str = server.url  # type: ignore[attr-defined]
        self.token = token

    def client(self, **kwargs: object):
        from include.labelstudio.client import LabelStudioClient

        return LabelStudioClient(self.url, self.token, **kwargs)


@pytest.fixture(scope="session")
def label_studio() -> Iterator[LabelStudioHandle]:
    """A real label-studio==1.23.2 from .venv-ls on 127.0.0.1, with a minted PAT."""
    from include.runtime.embedded_pg import free_port
    from include.runtime.labelstudio_server import LabelStudioServer

    data_dir = _TMP / "label-studio"
    if (LS_TEMPLATE / "label_studio.sqlite3").exists():
        shutil.copytree(LS_TEMPLATE, data_dir)
    server = LabelStudioServer(data_dir, free_port(), admin_email="admin@example.com", admin_password="admin-pass-123")
    server.ensure_initialized()
    if not (LS_TEMPLATE / "label_studio.sqlite3").exists():
        LS_TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(data_dir, LS_TEMPLATE, dirs_exist_ok=True)
    server.start()
    token = server.mint_token()
    os.environ["LS_URL"] = server.url
    os.environ["LS_API_TOKEN"] = token
    try:
        yield LabelStudioHandle(server, token)
    finally:
        server.stop()
        os.environ.pop("LS_URL", None)
        os.environ.pop("LS_API_TOKEN", None)


@pytest.fixture
def ls(label_studio: LabelStudioHandle) -> LabelStudioHandle:
    """The shared Label Studio, with LS_URL / LS_API_TOKEN set for the code under test."""
    os.environ["LS_URL"] = label_studio.url
    os.environ["LS_API_TOKEN"] = label_studio.token
    return label_studio


# -- Airflow ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def airflow_db() -> None:
    from airflow.utils import db as af_db

    af_db.initdb()


@pytest.fixture(scope="session")
def dagbag(airflow_db: None):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


@pytest.fixture
def run_dag(dagbag):
    """Run a DAG in-process with dag.test() (retries off) and return the DagRun."""

    def _run(dag_id: str, conf: dict | None = None):
        dag = dagbag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id}: {dagbag.import_errors}"
        retries = {t.task_id: t.retries for t in dag.tasks}
        for t in dag.tasks:
            t.retries = 0
        # dag.test() writes run_conf into the params of the DAG and of its tasks: keep them from the next test.
        defaults = copy.deepcopy(dag.params)
        task_defaults = {t.task_id: copy.deepcopy(t.params) for t in dag.tasks}
        try:
            return dag.test(run_conf=conf or {})
        finally:
            dag.params = defaults
            for t in dag.tasks:  # the DagBag is shared by the session: later tests see the declared DAG
                t.params = task_defaults[t.task_id]
                t.retries = retries[t.task_id]

    return _run


# -- ML ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def minilm():
    """The offline all-MiniLM-L6-v2 backend (loaded once per session, about 5 s)."""
    from include.ml.embeddings.backends import SentenceTransformerEmbedder

    backend = SentenceTransformerEmbedder()
    backend.embed(["warm up"])
    return backend


@pytest.fixture
def llm_server():
    """A local server speaking the Ollama and OpenAI HTTP contracts."""
    from tests.helpers.llm_server import FakeLLMServer

    with FakeLLMServer() as server:
        yield server
