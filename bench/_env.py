"""Real services for benchmarks: embedded PostgreSQL + pgvector, a local Label Studio, Airflow on SQLite.

Airflow reads its configuration at first import, so ``setup_airflow_env()`` must run before
anything imports airflow.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
LS_TEMPLATE = REPO / ".labelops" / "test-cache" / "label-studio"
_scratch: list[Path] = []


def scratch() -> Path:
    """This run's scratch folder: made on first use (not at import), removed when the run ends."""
    if not _scratch:
        path = Path(tempfile.mkdtemp(prefix="labelops-bench-"))
        atexit.register(shutil.rmtree, path, True)
        _scratch.append(path)
    return _scratch[0]


def setup_airflow_env() -> None:
    home = scratch() / "airflow"
    home.mkdir(exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "HF_HUB_OFFLINE": "1",
            "LABELOPS_HOME": str(scratch() / "home"),
        }
    )


@contextmanager
def postgres(name: str = "bench") -> Iterator[str]:
    from include.db.migrate import upgrade
    from include.runtime.embedded_pg import EmbeddedPostgres, free_port

    server = EmbeddedPostgres(Path(tempfile.mkdtemp(dir=scratch(), prefix="pg-")) / "data", free_port())
    server.start()
    try:
        url = server.ensure_database(name)
        upgrade(url)
        os.environ["DATABASE_URL"] = url
        yield url
    finally:
        server.stop()


@contextmanager
def label_studio(database: Any = None) -> Iterator[tuple[str, str]]:
    """A Label Studio on SQLite (copied from the test template), or on ``database`` (a
    ``PostgresDatabase``: initialised there, about 45 s)."""
    from include.runtime.embedded_pg import free_port
    from include.runtime.labelstudio_server import LabelStudioServer

    data = Path(tempfile.mkdtemp(dir=scratch(), prefix="ls-")) / "data"
    if database is None and (LS_TEMPLATE / "label_studio.sqlite3").exists():
        shutil.copytree(LS_TEMPLATE, data)
    server = LabelStudioServer(
        data, free_port(), admin_email="admin@example.com", admin_password="admin-pass-123", database=database
    )
    server.start()
    try:
        token = server.mint_token()
        os.environ["LS_URL"], os.environ["LS_API_TOKEN"] = server.url, token
        yield server.url, token
    finally:
        server.stop()


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p95": p95, "min": ordered[0], "max": ordered[-1], "n": len(ordered)}


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **result,
    }
    path.write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps(result, indent=2, default=float))
    return path
