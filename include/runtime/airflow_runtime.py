"""Airflow on one machine: LocalExecutor on PostgreSQL, one process per component."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from include.config import REPO_ROOT

log = logging.getLogger(__name__)

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def airflow_env(
    *,
    home: Path,
    metadata_url: str,
    platform_db_url: str,
    port: int,
    jwt_secret: str,
    passwords_file: Path,
) -> dict[str, str]:
    """Environment for every Airflow component (and the tasks they run)."""
    base_url = f"http://127.0.0.1:{port}"
    platform_conn = platform_db_url.replace("postgresql+psycopg://", "postgresql://")
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,webapp:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_LABELOPS_DB": platform_conn,
        "PYTHONPATH": str(REPO_ROOT),
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


class AirflowProcesses:
    """The api-server, scheduler, dag-processor and triggerer, each in its own process group.

    The triggerer runs deferred tasks and asset watchers; without it they would wait forever.
    """

    def __init__(self, env: dict[str, str], log_dir: Path, components: tuple[str, ...] = COMPONENTS) -> None:
        self.env = env
        self.log_dir = log_dir
        self.components = components
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        exe = Path(sys.executable).with_name("airflow")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.components:
            args = [str(exe), name]
            if name == "scheduler":
                args.append("--skip-serve-logs")
            out = (self.log_dir / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(
                args, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_healthy(self, base_url: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"airflow {name} exited ({proc.returncode}); see {self.log_dir / (name + '.log')}"
                    )
            try:
                if requests.get(f"{base_url}/api/v2/monitor/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise RuntimeError(f"Airflow API did not come up in {timeout:.0f} s; see {self.log_dir}")

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def stop(self, timeout: float = 30) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
