"""What can be checked of the deployment files without a Docker engine, and the launcher's start-up checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-worker-gpu",
]


def test_compose_has_every_service() -> None:
    expected = {"app-db", "airflow-db", "redis", "airflow-init", "label-studio", "webapp", *AIRFLOW}
    assert expected <= set(SERVICES)
    assert SERVICES["app-db"]["image"].startswith("pgvector/pgvector:pg16")
    assert SERVICES["label-studio"]["image"].endswith(":1.23.2")


def test_long_running_services_have_healthchecks() -> None:
    for name, service in SERVICES.items():
        if name == "airflow-init":
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check.get("interval") and check.get("retries"), name


def test_startup_order_waits_for_health() -> None:
    for name in [*AIRFLOW, "webapp"]:
        depends = SERVICES[name]["depends_on"]
        assert isinstance(depends, dict), f"{name} must use depends_on conditions"
        assert all("condition" in rule for rule in depends.values()), name
    assert SERVICES["airflow-scheduler"]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert SERVICES["webapp"]["depends_on"]["app-db"]["condition"] == "service_healthy"


def test_celery_executor_with_a_gpu_worker() -> None:
    for name in AIRFLOW:
        env = SERVICES[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["PYTHONPATH"] == "/opt/airflow"
        assert "./include:/opt/airflow/include" in SERVICES[name]["volumes"]
        assert env["AIRFLOW_CONN_LABELOPS_DB"].startswith("postgresql://")
    gpu = SERVICES["airflow-worker-gpu"]
    assert "--queues gpu" in gpu["command"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "--queues default" in SERVICES["airflow-worker"]["command"]
    assert "airflow pools set gpu" in " ".join(SERVICES["airflow-init"]["command"])
    assert "include.db.migrate upgrade" in " ".join(SERVICES["airflow-init"]["command"])


def _resolved_settings(service: dict) -> object:
    """The platform settings as a container of this service would load them (include/ at /opt/airflow)."""
    from include.config import load_settings

    def interpolate(value: object) -> str:
        # ${VAR:-default} -> default; ${VAR:?message} (required) -> a stand-in value
        text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        return re.sub(r"\$\{\w+:\?[^}]*\}", "set-in-env", text)

    env = {k: interpolate(v) for k, v in service["environment"].items()}
    env["LS_API_TOKEN"] = env.get("LS_API_TOKEN") or "token-from-env"
    env.setdefault("LABELOPS_HOME", "/opt/airflow/.labelops")  # REPO_ROOT/.labelops inside the image
    return load_settings(env)


def test_no_airflow_worker_relies_on_a_shared_model_directory() -> None:
    """Heads live in the platform database: no worker mounts a models volume or sets MODEL_DIR."""
    assert "models" not in COMPOSE.get("volumes", {})
    for name in AIRFLOW:
        service = SERVICES[name]
        assert not any(v.split(":")[0] == "models" for v in service["volumes"]), name
        assert "MODEL_DIR" not in (service.get("environment") or {}), name
        settings = _resolved_settings(service)
        assert not hasattr(settings, "model_dir")


def test_label_studio_sends_nothing_out() -> None:
    from include.runtime.labelstudio_server import PRIVACY_ENV

    env = SERVICES["label-studio"]["environment"]
    for key, value in PRIVACY_ENV.items():
        assert str(env.get(key)) == value, key


def test_platform_and_airflow_databases_are_separate() -> None:
    env = SERVICES["airflow-scheduler"]["environment"]
    assert "@airflow-db:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "@app-db:5432/labelops" in env["DATABASE_URL"]
    assert "./include:/app/include" in SERVICES["webapp"]["volumes"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LS_URL": "not a url"}, "LS_URL: expected an http:// or https:// URL"),
        ({"PG_PORT": "eighty"}, "PG_PORT: expected a TCP port number"),
        ({"DATABASE_URL": "sqlite:///x.db"}, "DATABASE_URL: expected a PostgreSQL URL"),
    ],
)
def test_launcher_refuses_bad_settings_at_start(env: dict[str, str], message: str, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LS_", "DATABASE_URL", "PG_PORT"))}
    result = subprocess.run(
        [sys.executable, "-m", "include.runtime.stack", "--no-demo"],
        env={**clean, **env, "LABELOPS_HOME": str(tmp_path)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_web_app_refuses_to_start_without_a_secret_key(monkeypatch) -> None:
    from include.config import SettingsError
    from webapp import create_app

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:1/x")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(SettingsError, match=r"^SECRET_KEY: expected"):
        create_app()


def test_launcher_says_who_holds_a_taken_port(tmp_path: Path) -> None:
    """It names the program on the port and what to do, and stops nothing it did not start."""
    import socket

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("LS_", "DATABASE_URL", "WEBAPP_PORT"))}
        result = subprocess.run(
            [sys.executable, "-m", "include.runtime.stack", "--no-demo"],
            env={**clean, "WEBAPP_PORT": str(port), "LABELOPS_HOME": str(tmp_path)},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1
        output = result.stdout + result.stderr
        assert f"port {port} (WEBAPP_PORT) is taken by PID {os.getpid()}" in output
        assert "set WEBAPP_PORT to a free port" in output
        assert squatter.fileno() != -1  # still ours, still open
