"""Airflow on one machine: LocalExecutor on PostgreSQL, one process per component; or, with
``--celery``, the multi-machine topology on one machine: CeleryExecutor with Redis as the broker,
a worker on queue ``default`` and one on queue ``gpu`` (what docker-compose runs on several)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from include.config import REPO_ROOT

log = logging.getLogger(__name__)

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# CeleryExecutor: one worker per queue, named after it (task instances record the hostname).
CELERY_WORKERS = (("default", 2), ("gpu", 1))
WORKER_HOSTNAME = "include.runtime.worker_hostname.hostname"


def airflow_env(
    *,
    home: Path,
    metadata_url: str,
    platform_db_url: str,
    port: int,
    jwt_secret: str,
    passwords_file: Path,
    redis_url: str | None = None,
) -> dict[str, str]:
    """Environment for every Airflow component (and the tasks they run); with ``redis_url``, the
    CeleryExecutor with that broker and the metadata database as its result backend."""
    base_url = f"http://127.0.0.1:{port}"
    platform_conn = platform_db_url.replace("postgresql+psycopg://", "postgresql://")
    celery = (
        {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
            # A worker lost mid-task: the scheduler fails the try once its heartbeats stop for this long.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": os.environ.get(
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT", "120"
            ),
        }
        if redis_url
        else {}
    )
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # How long a failed task waits before its retry (the DAGs leave it to this setting).
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": os.environ.get("AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY", "60"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,webapp:op",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # Each DAG file is parsed again this often (Airflow's default: 30 s). Re-parsing the 16
        # unchanged files every 30 s took about 0.7 of a core on 2 cores (bench/load.py), the
        # cores the presses and Label Studio need; a changed file waits up to this long.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": os.environ.get(
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", "300"
        ),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_LABELOPS_DB": platform_conn,
        "PYTHONPATH": str(REPO_ROOT),
        **celery,
    }


def write_passwords(path: Path, passwords: dict[str, str]) -> None:
    """Pre-seed SimpleAuthManager's passwords so the web app knows its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(passwords))
    os.chmod(path, 0o600)


def airflow_cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    exe = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(exe), *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed: {result.stderr[-3000:]}")
    return result.stdout


def component_argv(name: str) -> list[str]:
    """The command line of one Airflow component."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    return [airflow, name, *(["--skip-serve-logs"] if name == "scheduler" else [])]


def celery_worker_argv(queue: str, concurrency: int) -> list[str]:
    """A Celery worker serving one queue, its hostname ``<queue>@<machine>``."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    return [
        airflow, "celery", "worker", "--queues", queue, "--concurrency", str(concurrency),
        "--celery-hostname", f"{queue}@%h", "--skip-serve-logs",
    ]  # fmt: skip


def redis_argv(port: int) -> list[str]:
    """Debian's redis-server on loopback, nothing persisted (Airflow's queue is in its database).

    Raises:
        RuntimeError: redis-server is not installed (the message says how to get it).
    """
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("--celery needs Redis: sudo apt-get install redis-server (or make redis)")
    return [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


def wait_healthy(base_url: str, components: Sequence[Any], timeout: float = 180) -> None:
    """Wait until the api-server answers its health endpoint; fail early if a component exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for component in components:
            if not component.alive():
                raise RuntimeError(f"{component.name} {component.exit_reason()}; see {component.log_file}")
        try:
            if requests.get(f"{base_url}/api/v2/monitor/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"Airflow API did not come up in {timeout:.0f} s; see the logs of {base_url}")
