"""Labeling through the outbox: submit latency over real HTTP, and how fast the outbox drains.

1. Real gunicorn (2 workers x 4 threads, as `make run` serves it) on a database of 1,000,000
   tasks: an annotator's ``POST /api/v1/annotator/tasks/<id>/label``, p50/p95 over 300 requests
   from one keep-alive client and from 4 at once, next to ``/healthz`` (one ``SELECT 1``) in the
   same run. Goal: submit p95 < 50 ms (before the outbox: p50 141 ms, p95 194 ms, dominated by
   the synchronous Label Studio call).
2. A real Label Studio: labels/s when the outbox drains N labels (``deliver_due`` rounds, one
   lookup request per batch plus one write per label) against N bare annotation POSTs to the
   same server. Goal: drain >= 0.8x raw.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from bench._env import REPO, label_studio, postgres, save, summary
from bench.webapp_queries import N_TASKS, populate
from include.pipelines.catalog import ImportValues
from include.services.privacy import SYNTHETIC

SUBMITS = 300
DRAIN_N = 150


def _gunicorn(db: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": db, "SECRET_KEY": "bench-secret-key-0123456789"}
    for key in ("LS_URL", "LS_API_TOKEN", "AIRFLOW_API_PASSWORD"):
        env.pop(key, None)
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{port}", "webapp.wsgi:app"]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"http://127.0.0.1:{port}/livez", timeout=2).ok:
                return proc
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not start")
        time.sleep(0.3)


def _timed_requests(send: Any, items: list[Any]) -> list[float]:
    samples = []
    for item in items:
        started = time.perf_counter()
        response = send(item)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (response.status_code, response.text[:200])
    return samples


def submit_latency(db: str) -> dict[str, Any]:
    from sqlalchemy import text

    from include.db.session import get_engine
    from include.runtime.embedded_pg import free_port

    port = free_port()
    proc = _gunicorn(db, port)
    base = f"http://127.0.0.1:{port}"
    try:
        by_user: dict[str, list[int]] = {}
        with get_engine(db).connect() as conn:
            for username in ("ann1", "ann2", "ann3", "ann4", "ann5"):
                by_user[username] = [
                    int(task_id)
                    for task_id in conn.execute(
                        text(
                            "SELECT t.id FROM tasks t JOIN users u ON u.id = t.assigned_to "
                            "WHERE t.status = 'assigned' AND u.username = :u ORDER BY t.id LIMIT :n"
                        ),
                        {"u": username, "n": SUBMITS + 20},
                    ).scalars()
                ]
        sessions = {}
        for username in by_user:
            s = requests.Session()
            token = s.post(
                f"{base}/api/v1/auth/login", json={"username": username, "password": "bench-password-1"}, timeout=10
            ).json()["access_token"]
            s.headers["Authorization"] = f"Bearer {token}"
            sessions[username] = s
        first = next(iter(by_user))
        one = sessions[first]
        label = lambda tid: one.post(f"{base}/api/v1/annotator/tasks/{tid}/label", json={"label": "OK"}, timeout=10)  # noqa: E731
        health = requests.Session()
        _timed_requests(lambda _: health.get(f"{base}/healthz", timeout=10), range(30))  # warm up
        _timed_requests(label, by_user[first][:20])
        baseline = summary(_timed_requests(lambda _: health.get(f"{base}/healthz", timeout=10), range(SUBMITS)))
        sequential = summary(_timed_requests(label, by_user[first][20 : 20 + SUBMITS]))

        parallel: list[float] = []
        others = [u for u in by_user if u != first][:4]

        def worker(username: str) -> None:
            s = sessions[username]
            parallel.extend(
                _timed_requests(
                    lambda tid: s.post(f"{base}/api/v1/annotator/tasks/{tid}/label", json={"label": "NG"}, timeout=10),
                    by_user[username][: SUBMITS // 4],
                )
            )

        threads = [threading.Thread(target=worker, args=(u,)) for u in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with get_engine(db).connect() as conn:
            waiting = conn.execute(text("SELECT count(*) FROM label_outbox WHERE status = 'pending'")).scalar()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    return {
        "tasks": N_TASKS,
        "healthz_ms": baseline,
        "submit_ms_one_client": sequential,
        "submit_ms_four_clients": summary(parallel),
        "submit_p95_over_healthz_p95": round(sequential["p95"] / baseline["p95"], 2),
        "labels_waiting_in_outbox": int(waiting or 0),
        "goal_submit_p95_ms": 50,
    }


def drain_rate() -> dict[str, Any]:
    from include.db.models import Role, Task, User
    from include.db.session import session_scope
    from include.labelstudio.client import LabelStudioClient
    from include.labelstudio.label_config import build_label_config, choice_result
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.runner import RunRef
    from include.services.assignment import auto_assign
    from include.services.datasets import add_items, create_dataset
    from include.services.labeling import submit_label
    from include.services.users import create_user
    from include.workers.label_dispatcher import deliver_due

    with postgres("bench_drain") as db, label_studio() as (url, token):
        client = LabelStudioClient(url, token, retries=0)
        with session_scope(db) as s:
            user = create_user(s, "drainer", "drainer@bench.io", "bench-password-1", Role.ANNOTATOR)
            ds = create_dataset(s, "drain", labels=["OK", "NG"], privacy=SYNTHETIC)
            add_items(s, ds, [(f"drain text {i}", {}) for i in range(DRAIN_N)])
            dataset_id, user_id = ds.id, user.id
        run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
        with session_scope(db) as s:
            auto_assign(s, dataset_id, s.get(User, user_id), DRAIN_N)
            task_ids = [t.id for t in s.query(Task).filter_by(dataset_id=dataset_id).order_by(Task.id)]
            for task_id in task_ids:
                submit_label(s, task_id, s.get(User, user_id), "OK")
        deliver_due(db, client, limit=1)  # the annotator's Label Studio account is made once, here
        started = time.perf_counter()
        while deliver_due(db, client).claimed:
            pass
        drain_s = time.perf_counter() - started

        raw_project = client.create_project("raw posts", build_label_config(["OK", "NG"]))
        raw_tasks = client.import_tasks(raw_project["id"], [{"data": {"text": f"raw {i}"}} for i in range(DRAIN_N)])
        started = time.perf_counter()
        for ls_task in raw_tasks[1:]:
            client.create_annotation(ls_task, choice_result("OK"))
        raw_s = time.perf_counter() - started
    n = DRAIN_N - 1
    return {
        "labels": n,
        "drain_labels_per_s": round(n / drain_s, 2),
        "raw_posts_per_s": round(n / raw_s, 2),
        "drain_over_raw": round((n / drain_s) / (n / raw_s), 3),
        "goal_drain_over_raw": 0.8,
    }


def main() -> None:
    with postgres("bench_labeling") as db:
        populate(db)
        latency = submit_latency(db)
    drain = drain_rate()
    save("labeling", {"submit": latency, "drain": drain})


if __name__ == "__main__":
    main()
