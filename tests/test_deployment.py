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
    one_shots = {"airflow-volumes", "airflow-init", "ls-token"}
    expected = {"app-db", "airflow-db", "redis", "label-studio", "webapp", *one_shots, *AIRFLOW}
    assert expected <= set(SERVICES)
    assert SERVICES["app-db"]["image"].startswith("pgvector/pgvector:pg16")
    assert SERVICES["label-studio"]["image"].endswith(":1.23.2")


def test_long_running_services_have_healthchecks() -> None:
    for name, service in SERVICES.items():
        if service.get("restart") == "no":  # one-shots: airflow-volumes, airflow-init, ls-token
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
    from cryptography.fernet import Fernet

    from include.config import load_settings

    def interpolate(value: object) -> str:
        # ${VAR:-default} -> default; ${VAR:?message} (required) -> a stand-in value
        text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        return re.sub(r"\$\{\w+:\?[^}]*\}", "set-in-env-stand-in-value", text)

    env = {k: interpolate(v) for k, v in service["environment"].items()}
    env["LS_API_TOKEN"] = env.get("LS_API_TOKEN") or "token-from-env"
    env["PII_KEY"] = Fernet.generate_key().decode()  # a Fernet key is checked for its form
    env.pop("LS_API_TOKEN_FILE", None)  # the ls-token volume's file exists only in the container
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


def test_label_studio_sends_nothing_out_and_imports_predictions_in_chunks() -> None:
    from include.runtime.labelstudio_server import PERFORMANCE_ENV, PRIVACY_ENV

    env = SERVICES["label-studio"]["environment"]
    for key, value in (PRIVACY_ENV | PERFORMANCE_ENV).items():
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


# -- docker compose's first `up` (issue: integrity) -------------------------------------------
RAW = (REPO / "docker-compose.yaml").read_text()
REQUIRED_SECRETS = (
    "SECRET_KEY",
    "PII_KEY",
    "WEBHOOK_SECRET",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_WEBAPP_PASSWORD",
    "LS_ADMIN_PASSWORD",
)
COMPOSE_SUBNET = "172.28.5.0/24"


def _interpolate(value: object, given: dict[str, str] | None = None) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message}, with ``given`` values for the variables."""
    given = given or {}

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in given:
            return given[name]
        return rest if op == ":-" else f"stand-in-{name.lower()}"

    return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", one, str(value))


def test_required_secrets_have_no_published_fallback() -> None:
    """A constant in the repository on a published port is no secret (an Airflow JWT secret
    signs admin tokens): compose refuses to start without each of these instead."""
    for name in REQUIRED_SECRETS:
        assert f"${{{name}:?" in RAW, name
        assert f"${{{name}:-" not in RAW, f"{name} falls back to a published value"
    assert "change-me" not in RAW
    workers = [SERVICES[name]["environment"] for name in AIRFLOW]
    assert all(env["AIRFLOW__API__SECRET_KEY"] == workers[0]["AIRFLOW__API__SECRET_KEY"] for env in workers)


def test_the_first_up_needs_no_hand_made_token() -> None:
    """Migrations wait for the databases only; the one-shot ls-token service mints Label
    Studio's token once Label Studio is healthy, and every platform service waits for it."""
    init = SERVICES["airflow-init"]["depends_on"]
    assert "ls-token" not in init and "label-studio" not in init
    token = SERVICES["ls-token"]
    assert token["depends_on"]["label-studio"]["condition"] == "service_healthy"
    assert token["image"] == SERVICES["label-studio"]["image"] and token["restart"] == "no"
    assert "./include/runtime/ls_token.py:/opt/labelops/ls_token.py:ro" in token["volumes"]
    for name in [*AIRFLOW, "webapp"]:
        service = SERVICES[name]
        assert service["depends_on"]["ls-token"]["condition"] == "service_completed_successfully", name
        assert service["environment"]["LS_API_TOKEN_FILE"] == "/run/labelops/ls_token", name
        assert "ls-token:/run/labelops:ro" in service["volumes"], name
    volumes = SERVICES["airflow-volumes"]
    assert volumes["user"] == "0:0" and "chown -R 50000:0 /opt/airflow/config" in volumes["command"][0]
    assert SERVICES["airflow-init"]["depends_on"]["airflow-volumes"]["condition"] == "service_completed_successfully"


def test_the_web_app_is_probed_for_life_and_outlasts_label_studios_predict() -> None:
    web = SERVICES["webapp"]
    assert "/livez" in " ".join(web["healthcheck"]["test"]) and "/healthz" not in " ".join(web["healthcheck"]["test"])
    conf: dict = {}
    exec((REPO / "webapp" / "gunicorn.conf.py").read_text(), conf)  # our own settings file
    assert conf["timeout"] > 100  # Label Studio waits up to 100 s on the ML backend's /predict
    assert conf["worker_class"] == "gthread" and conf["threads"] > 1
    for command in (web["command"], SERVICES["webhooks"]["command"]):
        assert command[command.index("-c") + 1] == "webapp/gunicorn.conf.py"
    assert '"-c", "webapp/gunicorn.conf.py"' in (REPO / "Dockerfile").read_text()
    # Label Studio posts its webhooks to their own small web process, never queued behind presses.
    receiver = SERVICES["webhooks"]
    assert receiver["environment"]["WEB_WORKERS"] == "1" and receiver["environment"]["WEBHOOK_SECRET"]


def test_the_gpu_worker_owns_one_pinned_gpu() -> None:
    gpu = SERVICES["airflow-worker-gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert "count" not in device and device["device_ids"] == ["${GPU_DEVICE:-0}"]
    assert gpu["environment"]["NVIDIA_VISIBLE_DEVICES"] == "${GPU_DEVICE:-0}"


def test_label_studio_may_reach_the_compose_network_and_nothing_else_private() -> None:
    """SSRF protection stays on: the default banned ranges, less only the compose subnet."""
    import ipaddress

    from include.runtime.labelstudio_server import LOOPBACK_ML_ENV

    env = SERVICES["label-studio"]["environment"]
    assert env["USE_DEFAULT_BANNED_SUBNETS"] == "false"
    banned = [ipaddress.ip_network(n) for n in env["USER_ADDITIONAL_BANNED_SUBNETS"].split(",")]
    (pool,) = COMPOSE["networks"]["labelops"]["ipam"]["config"]
    subnet = ipaddress.ip_network(pool["subnet"])
    assert str(subnet) == COMPOSE_SUBNET

    def is_banned(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip.version == n.version and ip in n for n in banned)

    for service in ("webapp", "webhooks"):
        web = ipaddress.ip_address(SERVICES[service]["networks"]["labelops"]["ipv4_address"])
        assert web in subnet and not is_banned(str(web))
    defaults = ["127.0.0.0/8", *LOOPBACK_ML_ENV["USER_ADDITIONAL_BANNED_SUBNETS"].split(","), "::1/128", "fc00::/7"]
    for network in map(ipaddress.ip_network, defaults):
        for probe in (network[0], network[-1], network[network.num_addresses // 2]):
            assert is_banned(str(probe)) == (probe not in subnet), probe
    for outside in ("127.0.0.1", "169.254.169.254", "172.17.0.1", "172.28.4.9", "172.28.6.1", "10.1.2.3"):
        assert is_banned(outside), outside
    assert SERVICES["airflow-scheduler"]["environment"]["WEBHOOK_URL"].endswith("webhooks:5001/hooks/labelstudio}")


def test_service_command_lines_run_as_processes(pg, label_studio, tmp_path: Path) -> None:
    """No Docker here: each one-shot's own command line from the compose file runs as a real
    process on this machine, paths mapped, with the service's own environment (stand-ins for
    the secrets). The migration runs with LS_URL set and no token yet (the first `up`); the
    ls-token command mints a token into its file, which the platform then reads and uses."""
    from include.config import load_settings
    from include.labelstudio.client import LabelStudioClient

    database = pg.ensure_database("compose_first_up")
    given = {"PII_KEY": "", "LS_API_TOKEN": ""}
    init_env = {k: _interpolate(v, given) for k, v in SERVICES["airflow-init"]["environment"].items()}
    token_file = tmp_path / "run" / "ls_token"
    token_file.parent.mkdir()
    init_env |= {"DATABASE_URL": database, "LS_API_TOKEN_FILE": str(token_file), "PATH": os.environ["PATH"]}
    command = SERVICES["airflow-init"]["command"][-1]
    migrate = next(part.strip() for part in command.split("&&") if "include.db.migrate" in part)
    assert migrate == "python -m include.db.migrate upgrade"
    done = subprocess.run(
        [sys.executable, *migrate.split()[1:]], env=init_env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]

    argv = [_interpolate(a, {"LS_ADMIN_EMAIL": "admin@example.com"}) for a in SERVICES["ls-token"]["command"]]
    mapped = {
        "/opt/labelops/ls_token.py": str(REPO / "include/runtime/ls_token.py"),
        "/run/labelops/ls_token": str(token_file),
    }
    argv = [str(REPO / ".venv-ls/bin/python"), *(mapped.get(a, a) for a in argv[1:])]
    ls_env = {k: _interpolate(v) for k, v in SERVICES["ls-token"]["environment"].items()}
    ls_env |= {"LABEL_STUDIO_BASE_DATA_DIR": str(label_studio.server.data_dir), "PATH": os.environ["PATH"]}
    minted = subprocess.run(argv, env=ls_env, capture_output=True, text=True, timeout=300)
    assert minted.returncode == 0, minted.stderr[-2000:]
    token = token_file.read_text().strip()
    again = subprocess.run(argv, env=ls_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "already holds a token" in again.stdout
    assert token_file.read_text().strip() == token  # a later `up` keeps it

    settings = load_settings({"LS_URL": label_studio.url, "LS_API_TOKEN_FILE": str(token_file)})
    assert settings.ls_api_token == token
    LabelStudioClient(settings.ls_url, settings.require("ls_api_token")).check_access()
    pg.drop_database("compose_first_up")


def test_the_web_apps_command_serves_livez_with_the_compose_environment(pg, label_studio, tmp_path: Path) -> None:
    """The web app's command line from the compose file (gunicorn, its timeout, gthread workers)
    starts with the service's environment, the token read from the ls-token file."""
    import socket
    import time
    import urllib.request

    from cryptography.fernet import Fernet

    from include.db.migrate import upgrade

    database = pg.ensure_database("compose_webapp")
    upgrade(database)
    token_file = tmp_path / "ls_token"
    token_file.write_text(label_studio.token + "\n")
    given = {"PII_KEY": Fernet.generate_key().decode(), "SECRET_KEY": "s" * 40, "WEBHOOK_SECRET": "w" * 24}
    env = {k: _interpolate(v, given) for k, v in SERVICES["webapp"]["environment"].items()}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env |= {
        "DATABASE_URL": database,
        "LS_URL": label_studio.url,
        "LS_API_TOKEN_FILE": str(token_file),
        "AIRFLOW_API_URL": "http://127.0.0.1:9",  # not needed to live
        "RATELIMIT_STORAGE_URI": "memory://",
        "PYTHONPATH": str(REPO),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
    }
    command = [a.replace("0.0.0.0:5000", f"127.0.0.1:{port}") for a in SERVICES["webapp"]["command"]]
    command[0] = str(REPO / ".venv/bin/gunicorn")
    server = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=5) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()[-3000:] if server.stdout else ""
                assert time.monotonic() < deadline, "gunicorn never answered /livez"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
        pg.drop_database("compose_webapp")
