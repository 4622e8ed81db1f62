"""The real platform, as `make run` starts it, for the fault suite and the end-to-end benchmarks.

One launcher (embedded PostgreSQL, Label Studio, Airflow's api-server, scheduler, dag-processor
and triggerer, gunicorn) on free ports under a scratch folder, and what a caller needs to talk
to it: the web API as any demo user, SQL on the platform database, Label Studio, Airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

from include.runtime.embedded_pg import EmbeddedPostgres, free_port

REPO = Path(__file__).resolve().parents[2]
# The test Label Studio's initialised data (tests/conftest.py fills it): skips its first-start minute.
LS_TEMPLATE = Path(os.environ.get("LABELOPS_TEST_CACHE", REPO / ".labelops" / "test-cache")) / "label-studio"
LS_ADMIN = ("admin@example.com", "admin-pass-123")  # the cached test Label Studio's admin


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except (requests.RequestException, OSError):
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


class Platform:
    """The running launcher and what a test needs to talk to it."""

    def __init__(self, home: Path, ports: dict[str, int], process: subprocess.Popen[bytes], log: Path) -> None:
        self.home, self.ports, self.process, self.log = home, ports, process, log
        self.web = f"http://127.0.0.1:{ports['WEBAPP_PORT']}"
        secrets = json.loads((home / "secrets.json").read_text())
        self.passwords = secrets["demo_passwords"]
        self.ls_token = secrets["ls_token"]
        self.ls_url = f"http://127.0.0.1:{ports['LS_PORT']}"
        self.db_url = f"postgresql+psycopg://postgres@127.0.0.1:{ports['PG_PORT']}/labelops"
        self.airflow_url = f"http://127.0.0.1:{ports['AIRFLOW_PORT']}"
        self.airflow_admin_password = secrets["airflow_admin_password"]
        self._tokens: dict[str, str] = {}

    def token(self, user: str) -> dict[str, str]:
        if user not in self._tokens:
            r = requests.post(
                f"{self.web}/api/v1/auth/login", json={"username": user, "password": self.passwords[user]}, timeout=10
            )
            r.raise_for_status()
            self._tokens[user] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self._tokens[user]}"}

    def api(self, method: str, path: str, user: str = "admin", **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.web}/api/v1{path}", headers=self.token(user), timeout=30, **kwargs)

    def run_pipeline(self, name: str, body: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
        """Trigger through the web app and wait for the queued job (and its steps) to end."""
        response = self.api("POST", f"/pipelines/{name}", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]

        run_id = response.json()["job"]["run_id"]
        airflow = self.airflow()

        def finished() -> dict[str, Any] | None:
            # The queued row can end with the pipeline's first step (train_classifier's, before
            # its gate): the Airflow run says when the whole pipeline is done.
            if airflow.get_run(name, run_id).get("state") not in ("success", "failed"):
                return None
            job = self.api("GET", f"/jobs/{job_id}").json()
            return job if job["status"] in ("success", "failed", "skipped") else None

        return wait_for(f"{name} to finish", finished, timeout=timeout, every=1)

    def sql(self, query: str, **params: Any) -> list[Any]:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query), params))
        finally:
            engine.dispose()

    def ls(self, path: str, **params: Any) -> Any:
        from include.labelstudio.client import LabelStudioClient

        return LabelStudioClient(self.ls_url, self.ls_token, retries=0).request("GET", path, params=params)

    def ls_annotation_counts(self, project_id: int) -> dict[int, int]:
        """Annotations per Label Studio task of a project (from Label Studio itself)."""
        from include.labelstudio.client import LabelStudioClient

        client = LabelStudioClient(self.ls_url, self.ls_token, retries=0)
        return {int(t["id"]): len(t.get("annotations") or []) for t in client.iter_tasks(project_id)}

    def labeled_dataset(self, name: str, size: int, labels: int, retrain_after: int | None = None) -> int:
        """A dataset of ``size`` demo texts imported into Label Studio, its first ``labels`` tasks
        labeled there with their true label (as annotators in Label Studio's UI would); the live
        loop retrains it after ``retrain_after`` new labels (None: off)."""
        from include.demo.texts import generate_demo_texts
        from include.labelstudio.client import LabelStudioClient
        from include.labelstudio.label_config import choice_result

        created = self.api("POST", "/datasets", json={"name": name, "demo": size})
        assert created.status_code == 201, created.text
        dataset_id = int(created.json()["dataset"]["id"])
        setting = self.api("PUT", f"/datasets/{dataset_id}/live-loop", json={"retrain_after_labels": retrain_after})
        assert setting.status_code == 200, setting.text
        # One annotator per task here: their labels judge models too (the default asks for checked ones).
        counts = self.api("PUT", f"/datasets/{dataset_id}/settings", json={"eval_labels": "any"})
        assert counts.status_code == 200, counts.text
        assert self.run_pipeline("ls_import", {"dataset_id": dataset_id})["status"] == "success"
        truth = {t.text: t.true_label for t in generate_demo_texts(size)}
        client = LabelStudioClient(self.ls_url, self.ls_token)
        rows = self.sql(
            "SELECT t.ls_task_id, i.text FROM tasks t JOIN items i ON i.id = t.item_id WHERE t.dataset_id = :d "
            "ORDER BY t.id LIMIT :n",
            d=dataset_id,
            n=labels,
        )
        for ls_task_id, text_ in rows:
            client.create_annotation(int(ls_task_id), choice_result(truth[text_]))
        return dataset_id

    def airflow(self) -> Any:
        from include.airflow_client import AirflowClient

        return AirflowClient(self.airflow_url, "admin", self.airflow_admin_password)

    def launcher_log(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def started_platform(
    parent: Path, extra_env: dict[str, str] | None = None, args: list[str] | None = None
) -> Iterator[Platform]:
    """`make run --no-demo` (plus ``args``) on free ports under ``parent``; stopped (and its
    PostgreSQL) at exit."""
    home = parent / "home"
    home.mkdir(parents=True)
    if (LS_TEMPLATE / "label_studio.sqlite3").exists():  # skip Label Studio's one-minute first init
        shutil.copytree(LS_TEMPLATE, home / "label-studio")
    (home / "secrets.json").write_text(json.dumps({"ls_admin_password": LS_ADMIN[1]}))
    names = ("PG_PORT", "LS_PORT", "AIRFLOW_PORT", "WEBAPP_PORT", "WEBHOOK_PORT", "REDIS_PORT")
    ports = {name: free_port() for name in names}
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({k: str(v) for k, v in ports.items()})
    env.update(
        LABELOPS_HOME=str(home),
        LS_ADMIN_EMAIL=LS_ADMIN[0],
        AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY="3",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env or {})
    log = home.parent / "launcher.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "include.runtime.stack", "--no-demo", *(args or [])],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def up() -> bool:
            text_ = log.read_text(errors="replace")
            assert process.poll() is None, f"the launcher exited with {process.returncode}:\n{text_[-3000:]}"
            return "LabelOps is running" in text_

        wait_for("the platform to come up", up, timeout=420, every=2)
        platform = Platform(home, ports, process, log)
        # "running" means the servers answer; the dag-processor may still be parsing the files.
        dag_ids = {path.stem for path in (REPO / "dags").glob("*.py")}
        wait_for(
            "Airflow to list every DAG", lambda: dag_ids <= set(platform.airflow().dag_ids()), timeout=300, every=2
        )
        yield platform
    finally:
        # A stop signal first: the launcher stops what it started (each in its own session, which a
        # SIGKILL of its group would leave running); then nothing of it may remain.
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        stop_postgres(home, ports["PG_PORT"])


def pg_of(home: Path, port: int) -> EmbeddedPostgres:
    pg = EmbeddedPostgres(home / "postgres", port)
    pg._prepare_permissions()
    return pg


def stop_postgres(home: Path, port: int) -> None:
    pg = pg_of(home, port)
    if pg.running_pid() is not None:
        pg._run("pg_ctl", "-D", str(pg.data_dir), "-m", "fast", "-w", "stop", timeout=60)
