"""``make run``: the whole platform on one machine, on embedded defaults.

Starts PostgreSQL + pgvector (unless DATABASE_URL), Label Studio (unless LS_URL), Airflow
(LocalExecutor on PostgreSQL: api-server, scheduler, dag-processor, triggerer) and the web app;
seeds the demo accounts and dataset; runs the demo dataset through the labeling loop via the
Airflow REST API; prints every URL and login. Then it supervises: a service that exits is
restarted with backoff while the others keep running, so a short outage of PostgreSQL or Label
Studio is ridden out. Only Ctrl-C or SIGTERM stops everything, and only what it started.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from include.config import REPO_ROOT, Settings, SettingsError, load_settings
from include.runtime.supervisor import (
    LabelStudioComponent,
    PostgresComponent,
    ProcessComponent,
    Supervisor,
    port_owner,
    port_taken_message,
)

if TYPE_CHECKING:
    from include.runtime.embedded_pg import EmbeddedPostgres
    from include.runtime.labelstudio_server import PostgresDatabase

log = logging.getLogger("labelops")

DEMO_PIPELINE: tuple[tuple[str, str], ...] = (
    ("ls_import", "import the demo dataset into Label Studio"),
    ("active_learning_nightly", "export -> embed -> train -> gate -> pre-label -> score"),
)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# The webhook receiver's gunicorn: each delivery is one insert, so one worker is plenty.
RECEIVER_SIZE = {"WEB_WORKERS": "1", "WEB_THREADS": "4"}


class Launcher:
    """Starts the services in order, hands each to the supervisor, and stops them in reverse."""

    def __init__(self, settings: Settings, *, celery: bool = False) -> None:
        from include.runtime.local_secrets import LocalSecrets

        self.settings = settings
        self.celery = celery
        self.home = settings.home
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs = self.home / "logs"
        self.logs.mkdir(exist_ok=True)
        self.secrets = LocalSecrets(self.home / "secrets.json")
        self.supervisor = Supervisor()
        self.env: dict[str, str] = {
            "LABELOPS_HOME": str(self.home),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONPATH": str(REPO_ROOT),
            # De-identification encrypts its mappings with this key: generated once and kept, like
            # the other local secrets (losing it loses the way back to the originals).
            "PII_KEY": settings.pii_key or self.secrets.get("pii_key", _fernet_key),
        }
        self.urls: dict[str, str] = {}
        self.embedded_pg: EmbeddedPostgres | None = None
        self.logins: list[tuple[str, str, str]] = []

    def start_all(self) -> int:
        """Every service in order, then the demo data; returns the demo dataset's id."""
        self.check_ports()
        self.start_database()
        self.start_label_studio()
        self.start_airflow()
        self.start_webapp()
        return self.seed()

    def check_ports(self) -> None:
        """Fail at once, saying by what and what to do, when a port the stack needs is taken."""
        wanted = [
            ("AIRFLOW_PORT", self.settings.airflow_port),
            ("WEBAPP_PORT", self.settings.webapp_port),
            ("WEBHOOK_PORT", self.settings.webhook_port),
        ]
        if self.celery:
            wanted.append(("REDIS_PORT", self.settings.redis_port))
        if not self.settings.ls_url:
            wanted.append(("LS_PORT", self.settings.ls_port))
        for variable, port in wanted:
            owner = port_owner(port)
            if owner is not None:
                raise RuntimeError(port_taken_message(port, variable, owner))

    # -- database ----------------------------------------------------------------------
    def start_database(self) -> None:
        from include.db.migrate import upgrade

        if self.settings.database_url:
            platform_url = self.settings.database_url
            airflow_url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
            if not airflow_url:
                raise SettingsError(
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                    "Airflow's metadata database URL (a separate database) when DATABASE_URL is set",
                )
            log.info("using the platform database from DATABASE_URL")
        else:
            from include.runtime.embedded_pg import EmbeddedPostgres

            pg = EmbeddedPostgres(self.home / "postgres", self.settings.pg_port)
            self.embedded_pg = pg
            if not pg.is_running():
                owner = port_owner(pg.port)
                if owner is not None:
                    raise RuntimeError(port_taken_message(pg.port, "PG_PORT", owner))
            pg.start()
            self.supervisor.add(PostgresComponent(pg))
            platform_url = pg.ensure_database("labelops")
            airflow_url = pg.ensure_database("airflow")
            self.urls["PostgreSQL (platform)"] = platform_url
            log.info("embedded PostgreSQL 16 + pgvector on 127.0.0.1:%s (data in %s)", pg.port, pg.data_dir)
        upgrade(platform_url)
        self._check_pii_key(platform_url)
        self.platform_url = platform_url
        self.airflow_metadata_url = airflow_url
        self.env["DATABASE_URL"] = platform_url

    def _check_pii_key(self, platform_url: str) -> None:
        """Stop the start, naming PII_KEY, when it is not the key the stored mappings use."""
        from include.db.session import session_scope
        from include.services.key_check import KeyMismatch, check_pii_key

        try:
            with session_scope(platform_url) as session:
                previous = [k.encode() for k in self.settings.pii_key_previous]
                check_pii_key(session, self.env["PII_KEY"].encode(), previous)
        except KeyMismatch as exc:
            raise SettingsError(
                "PII_KEY",
                f"the key the stored de-identification mappings were written with ({exc.details['expected']}; "
                "make run keeps a generated one in .labelops/secrets.json, and a PII_KEY in .env or the "
                "environment wins over it)",
                got=f"a key with fingerprint {exc.details['got']}",
            ) from None

    # -- Label Studio ------------------------------------------------------------------
    def start_label_studio(self) -> None:
        from include.labelstudio.client import LabelStudioClient, LabelStudioError

        if self.settings.ls_url:
            client = LabelStudioClient(self.settings.ls_url, self.settings.require("ls_api_token"))
            client.check_access()
            self.env.update(LS_URL=self.settings.ls_url, LS_API_TOKEN=self.settings.require("ls_api_token"))
            self.urls["Label Studio"] = self.settings.ls_url
            log.info("using Label Studio at %s", self.settings.ls_url)
            return
        from include.runtime.labelstudio_server import LabelStudioServer

        password = self.secrets.get("ls_admin_password")
        server = LabelStudioServer(
            self.home / "label-studio",
            self.settings.ls_port,
            admin_email=self.settings.ls_admin_email,
            admin_password=password,
            database=self.label_studio_database(),
        )
        log.info("starting Label Studio (the first start initialises it: about a minute)")
        server.start()
        self.supervisor.add(LabelStudioComponent(server))
        token = self.secrets.get("ls_token", lambda: "")
        try:
            if not token:
                raise LabelStudioError("no token yet")
            LabelStudioClient(server.url, token).check_access()
        except LabelStudioError:
            token = server.mint_token()
            self.secrets.set("ls_token", token)
        self.env.update(LS_URL=server.url, LS_API_TOKEN=token)
        # The embedded Label Studio reaches the web app on loopback: connect new projects to the
        # platform's ML backend so annotators see the promoted model's predictions there too.
        self.env.setdefault("ML_BACKEND_URL", f"http://127.0.0.1:{self.settings.webapp_port}/ml")
        # ... and to post annotation events to the web app's receiver (a web process of its own,
        # see start_webapp): the live loop.
        self.env.setdefault("WEBHOOK_URL", f"http://127.0.0.1:{self.settings.webhook_port}/hooks/labelstudio")
        self.env.setdefault("WEBHOOK_SECRET", self.settings.webhook_secret or self.secrets.get("webhook_secret"))
        self.urls["Label Studio"] = server.url
        self.logins.append(("Label Studio", server.admin_email, password))

    def label_studio_database(self) -> PostgresDatabase | None:
        """LS_DATABASE=postgresql: a ``labelstudio`` database beside the platform's (created once)."""
        from include.runtime.labelstudio_server import PostgresDatabase

        if self.settings.ls_database != "postgresql":
            return None
        if self.embedded_pg is not None:
            url = self.embedded_pg.ensure_database("labelstudio")
            return PostgresDatabase.from_url(url, without_contrib=True)
        from include.runtime.embedded_pg import ensure_database

        return PostgresDatabase.from_url(ensure_database(self.platform_url, "labelstudio"))

    # -- Airflow -----------------------------------------------------------------------
    def start_airflow(self) -> None:
        from include.runtime.airflow_runtime import (
            CELERY_WORKERS,
            COMPONENTS,
            WORKER_HOSTNAME,
            airflow_cli,
            airflow_env,
            celery_worker_argv,
            component_argv,
            wait_healthy,
            write_passwords,
        )

        af_home = self.home / "airflow"
        af_home.mkdir(exist_ok=True)
        passwords = {
            "admin": self.secrets.get("airflow_admin_password"),
            "webapp": self.secrets.get("airflow_webapp_password"),
        }
        passwords_file = af_home / "passwords.json"
        write_passwords(passwords_file, passwords)
        env = airflow_env(
            home=af_home,
            metadata_url=self.airflow_metadata_url,
            platform_db_url=self.platform_url,
            port=self.settings.airflow_port,
            jwt_secret=self.secrets.get("airflow_jwt_secret", lambda: __import__("secrets").token_urlsafe(64)),
            passwords_file=passwords_file,
            redis_url=self.start_redis() if self.celery else None,
        )
        env = {**os.environ, **self.env, **env}
        log.info("migrating Airflow's metadata database")
        airflow_cli(env, "db", "migrate")
        airflow_cli(env, "pools", "set", "gpu", "1", "GPU slots (one per GPU on the worker)")
        components = []
        argvs = {f"airflow {name}": (component_argv(name), env) for name in COMPONENTS}
        if self.celery:
            for queue, concurrency in CELERY_WORKERS:
                named = {**env, "LABELOPS_WORKER": queue, "AIRFLOW__CORE__HOSTNAME_CALLABLE": WORKER_HOSTNAME}
                argvs[f"celery worker {queue}"] = (celery_worker_argv(queue, concurrency), named)
        for name, (argv, component_env) in argvs.items():
            log_name = name.removeprefix("airflow ").replace(" ", "-")
            component = ProcessComponent(
                name, argv, env=component_env, log_file=self.logs / "airflow" / f"{log_name}.log"
            )
            component.launch()
            components.append(component)
        base = f"http://127.0.0.1:{self.settings.airflow_port}"
        wait_healthy(base, components)
        for component in components:
            self.supervisor.add(component)
        self.urls["Airflow"] = base
        self.logins.append(("Airflow", "admin", passwords["admin"]))
        self.env.update(AIRFLOW_API_URL=base, AIRFLOW_API_USER="webapp", AIRFLOW_API_PASSWORD=passwords["webapp"])

    def start_redis(self) -> str:
        """Debian's redis-server as the Celery broker (``--celery``); returns its URL."""
        from include.runtime.airflow_runtime import redis_argv
        from include.runtime.embedded_pg import port_is_open

        port = self.settings.redis_port
        component = ProcessComponent("redis", redis_argv(port), env=dict(os.environ), log_file=self.logs / "redis.log")
        component.launch()
        deadline = time.monotonic() + 30
        while not port_is_open("127.0.0.1", port):
            if not component.alive() or time.monotonic() > deadline:
                component.stop()
                raise RuntimeError(f"redis-server did not start on port {port}; see {self.logs / 'redis.log'}")
            time.sleep(0.2)
        self.supervisor.add(component)
        self.urls["Redis (Celery broker)"] = f"redis://127.0.0.1:{port}/0"
        log.info("Redis on 127.0.0.1:%s: CeleryExecutor with a default and a gpu worker", port)
        return f"redis://127.0.0.1:{port}/0"

    # -- web app -----------------------------------------------------------------------
    def start_webapp(self) -> None:
        """The web app, and the webhook receiver: the same app in a small gunicorn of its own.

        Why two: Label Studio (without Redis) sends each webhook inside the request that made
        the annotation and waits for the answer, so a receiver queued behind 50 annotators'
        presses slows every label the outbox writes (bench/load.py measured it).
        """
        secret = self.settings.secret_key or self.secrets.get("secret_key")
        self.env["SECRET_KEY"] = secret
        url = self._gunicorn("web app", self.settings.webapp_port, "webapp.log", {})
        self._gunicorn("webhook receiver", self.settings.webhook_port, "webhooks.log", RECEIVER_SIZE)
        self.urls["LabelOps web app"] = url

    def _gunicorn(self, name: str, port: int, log_name: str, sizing: dict[str, str]) -> str:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        argv = [str(gunicorn), "-c", str(REPO_ROOT / "webapp" / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}"]
        component = ProcessComponent(
            name,
            [*argv, "webapp.wsgi:app"],
            env={**os.environ, **self.env, **sizing},
            log_file=self.logs / log_name,
            cwd=REPO_ROOT,
        )
        component.launch()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if not component.alive():
                raise RuntimeError(f"the {name} {component.exit_reason()}; see {self.logs / log_name}")
            try:
                if requests.get(f"{url}/livez", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                component.stop()
                raise RuntimeError(f"the {name} did not answer on {url}; see {self.logs / log_name}")
            time.sleep(0.5)
        self.supervisor.add(component)
        return url

    # -- demo --------------------------------------------------------------------------
    def seed(self) -> int:
        from include.db.session import session_scope
        from include.demo.seed import seed_demo

        with session_scope(self.platform_url) as session:
            result = seed_demo(session)
        known = self.secrets.get("demo_passwords", dict)
        known.update(result.created_users)
        self.secrets.set("demo_passwords", known)
        for username, password in known.items():
            self.logins.append(("LabelOps web app", username, password))
        log.info("demo dataset %s: %s new items", result.dataset_id, result.items_added)
        return result.dataset_id

    def run_demo(self, dataset_id: int) -> bool:
        """Run the demo dataset through the pipeline via Airflow's REST API, as the web app does."""
        from include.airflow_client import AirflowClient, new_run_id
        from include.db.session import session_scope
        from include.demo.report import import_report, loop_report
        from include.services.jobs import jobs_of_run, queue_job, settle_run

        client = AirflowClient(self.urls["Airflow"], "webapp", self.env["AIRFLOW_API_PASSWORD"], timeout=30)
        wanted = [dag_id for dag_id, _ in DEMO_PIPELINE]
        deadline = time.monotonic() + 180
        while not set(wanted) <= set(client.dag_ids()):
            if time.monotonic() > deadline:
                available = client.dag_ids()
                wanted = [d for d in wanted if d in available]
                break
            time.sleep(2)
        for dag_id, what in DEMO_PIPELINE:
            if dag_id not in wanted:
                continue
            run_id = new_run_id("demo")
            conf: dict[str, Any] = {"dataset_id": dataset_id}
            with session_scope(self.platform_url) as session:
                queue_job(session, step=dag_id, dag_id=dag_id, run_id=run_id, dataset_id=dataset_id, params=conf)
            log.info("running %s: %s", dag_id, what)
            client.trigger(dag_id, conf, run_id=run_id, note="make run demo")
            state = client.wait(dag_id, run_id, timeout=1800)
            with session_scope(self.platform_url) as session:
                settle_run(session, dag_id, run_id, state)
                session.flush()
                for job in jobs_of_run(session, run_id):
                    log.info("  %-22s %-8s %s", job.step, job.status.value, job.message)
                # The dataset, not just this run: a scheduled run may have done the work meanwhile.
                log.info("  => %s", import_report(session, dataset_id, run_id) if dag_id == "ls_import"
                         else loop_report(session, dataset_id))  # fmt: skip
            if state != "success":
                log.error("%s ended %s; see the jobs page or the Airflow UI", dag_id, state)
                return False
        return True

    def print_summary(self) -> None:
        lines = ["", "LabelOps is running. Press Ctrl-C to stop everything.", ""]
        for name, url in self.urls.items():
            lines.append(f"  {name:<24} {url}")
        lines.append("")
        lines.append("  Logins:")
        for service, user, password in self.logins:
            lines.append(f"    {service:<22} {user:<26} {password}")
        lines.append(f"\n  Logs: {self.logs}    Secrets: {self.home / 'secrets.json'}\n")
        print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-demo", action="store_true", help="start the services without running the demo pipeline")
    parser.add_argument("--once", action="store_true", help="run the demo pipeline, then stop everything (smoke test)")
    parser.add_argument(
        "--celery",
        action="store_true",
        help="CeleryExecutor with Redis and a worker per queue (default, gpu), as on several machines",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("alembic", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        from dotenv import load_dotenv

        load_dotenv(REPO_ROOT / ".env", override=False)
        settings = load_settings()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def _interrupt(signum: int, frame: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    launcher = Launcher(settings, celery=args.celery)
    try:
        dataset_id = launcher.start_all()
        log.info("platform up in %.0f s", time.monotonic() - started)
        launcher.print_summary()
        watcher = threading.Thread(target=launcher.supervisor.run, args=(stop,), name="supervisor", daemon=True)
        watcher.start()
        ok = True
        if not args.no_demo:
            try:
                ok = launcher.run_demo(dataset_id)
            except Exception as exc:  # the platform keeps running; the demo can be rerun from the web app
                log.error("the demo pipeline could not run: %s", exc)
                ok = False
            log.info("demo pipeline %s after %.0f s", "finished" if ok else "FAILED", time.monotonic() - started)
            if not args.once:
                launcher.print_summary()
        if args.once:
            return 0 if ok else 1
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        log.error("%s", exc)
        return 1
    finally:
        stop.set()
        launcher.supervisor.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
