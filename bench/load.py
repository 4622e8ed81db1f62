"""Fifty annotators at once on `make run`'s stack: presses, delivery to Label Studio, the lag.

The whole platform as ``make run`` starts it (embedded PostgreSQL, Label Studio, Airflow with
its scheduler, the web app under gunicorn with its outbox dispatchers and webhook receiver), a
dataset of 3,000 real sentences (``../shared/data``, read in place) imported through the
``ls_import`` DAG, 1,500 tasks assigned to alice and 1,500 to bob, the live loop on (a retrain
every 500 new labels). Then 50 clients, 25 as alice and 25 as bob, each over its own slice of its
annotator's tasks, press ``POST /api/v1/annotator/tasks/<id>/label`` as fast as they can for up
to 2 minutes. Measured:

* presses: p50/p95/p99 and labels/s taken in (goal: p95 < 300 ms on 2 cores);
* the outbox: how many labels wait and how old the oldest is, every second, until none waits;
  the delivery rate while it had a backlog;
* Label Studio's own rate in the same stack right after: the same number of bare annotation
  POSTs from one client on a project without webhooks (goals: delivery >= 0.8x that rate; the
  lag back to zero within 1.25x the raw time to write as many annotations);
* exports started (ls_export runs), and the webhooks: echoes, coalesced, posted;
* afterwards, every label in Label Studio exactly once, with the platform's label.

``python -m bench load`` runs it with Label Studio on SQLite and then on PostgreSQL; the options
below (``python -m bench.load --help``) run one configuration (workers, threads, write slots).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from bench._env import save, scratch

CLIENTS = 50
DURATION = 120.0
TASKS = 3000
RETRAIN_AFTER = 500
DRAIN_TIMEOUT = 1800.0


@dataclass
class Options:
    ls_database: str = "sqlite"
    workers: int | None = None  # None: the defaults in include.config
    threads: int | None = None
    slots: int = 1
    clients: int = CLIENTS
    duration: float = DURATION
    tasks: int = TASKS
    live_loop: bool = True
    think: float = 0.0  # seconds a client waits between presses (jittered); 0: as fast as it can
    presses_only: bool = False  # compare web sizings: no drain, no Label Studio baseline, no check

    def env(self) -> dict[str, str]:
        out = {"LS_DATABASE": self.ls_database, "LS_WRITE_CONCURRENCY": str(self.slots)}
        if self.workers:
            out["WEB_WORKERS"] = str(self.workers)
        if self.threads:
            out["WEB_THREADS"] = str(self.threads)
        return out


@contextmanager
def stack(tag: str, options: Options) -> Iterator[Any]:
    """`make run`'s Launcher on free ports in a scratch home, stopped (everything) at the end."""
    from include.config import load_settings
    from include.runtime.embedded_pg import free_port
    from include.runtime.stack import Launcher

    home = scratch() / tag
    for key in ("DATABASE_URL", "LS_URL", "LS_API_TOKEN", "AIRFLOW_API_URL", "AIRFLOW_API_PASSWORD", "WEBHOOK_URL"):
        os.environ.pop(key, None)
    os.environ.update(
        {
            "LABELOPS_HOME": str(home),
            "PG_PORT": str(free_port()),
            "LS_PORT": str(free_port()),
            "AIRFLOW_PORT": str(free_port()),
            "WEBAPP_PORT": str(free_port()),
            "WEBHOOK_PORT": str(free_port()),
            **options.env(),
        }
    )
    launcher = Launcher(load_settings())
    try:
        launcher.start_all()
        yield launcher
    finally:
        launcher.supervisor.stop_all()


def _prepare(launcher: Any, options: Options) -> dict[str, Any]:
    """The load dataset in Label Studio (through the ls_import DAG), half of it for each annotator."""
    from sqlalchemy import select

    from bench.public_data import sentiment
    from include.airflow_client import AirflowClient, new_run_id
    from include.db.models import Item, Task, User
    from include.db.session import session_scope
    from include.services.assignment import auto_assign
    from include.services.datasets import add_items, create_dataset
    from include.services.privacy import SYNTHETIC

    texts, labels, names = sentiment()
    texts, labels = texts[: options.tasks], labels[: options.tasks]
    truth = dict(zip(texts, labels, strict=True))
    db = launcher.platform_url
    with session_scope(db) as s:
        dataset = create_dataset(s, "load", labels=names, privacy=SYNTHETIC)
        add_items(s, dataset, [(t, {}) for t in texts])
        dataset.retrain_after_labels = RETRAIN_AFTER if options.live_loop else None
        dataset_id = dataset.id
    airflow = AirflowClient(launcher.urls["Airflow"], "webapp", launcher.env["AIRFLOW_API_PASSWORD"], timeout=30)
    deadline = time.monotonic() + 300
    while "ls_import" not in airflow.dag_ids():
        if time.monotonic() > deadline:
            raise RuntimeError("Airflow did not parse the DAGs")
        time.sleep(2)
    run_id = new_run_id("bench-load")
    airflow.trigger("ls_import", {"dataset_id": dataset_id}, run_id=run_id)
    state = airflow.wait("ls_import", run_id, timeout=1200)
    if state != "success":
        raise RuntimeError(f"ls_import ended {state}")
    work: dict[str, list[tuple[int, str]]] = {}
    with session_scope(db) as s:
        for name in ("alice", "bob"):
            user = s.scalar(select(User).where(User.username == name))
            auto_assign(s, dataset_id, user, options.tasks // 2)
            s.flush()
            rows = s.execute(
                select(Task.id, Task.item_id).where(Task.assigned_to == user.id, Task.dataset_id == dataset_id)
            ).all()
            item_text = dict(s.execute(select(Item.id, Item.text).where(Item.dataset_id == dataset_id)).all())
            work[name] = [
                (int(task_id), truth.get(item_text.get(item_id) or "", names[0])) for task_id, item_id in rows
            ]
    return {"dataset_id": dataset_id, "work": work, "airflow": airflow}


@dataclass
class Press:
    started: float
    ms: float
    status: int


@dataclass
class Load:
    presses: list[Press] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _token(base: str, username: str, password: str) -> str:
    """One API token per annotator, shared by its clients (25 logins at once would be throttled)."""
    answer = requests.post(f"{base}/api/v1/auth/login", json={"username": username, "password": password}, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def _client(base: str, token: str, tasks: list[tuple[int, str]], until: float, load: Load, think: float) -> None:
    import random

    pace = random.Random(hash(token) ^ len(tasks))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    mine: list[Press] = []
    for task_id, label in tasks:
        if time.monotonic() > until:
            break
        started = time.monotonic()
        try:
            status = session.post(
                f"{base}/api/v1/annotator/tasks/{task_id}/label", json={"label": label}, timeout=60
            ).status_code
        except requests.RequestException:
            status = 0
        mine.append(Press(started, (time.monotonic() - started) * 1000, status))
        if think:
            time.sleep(think * pace.uniform(0.5, 1.5))
    with load.lock:
        load.presses.extend(mine)


def _outbox(db: str) -> tuple[int, float, int]:
    """(labels waiting, age of the oldest in s, delivered so far)."""
    from sqlalchemy import text

    from include.db.session import get_engine

    with get_engine(db).connect() as conn:
        waiting, oldest, sent = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE status = 'pending'), "
                "extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending')), "
                "count(*) FILTER (WHERE status = 'sent') FROM label_outbox"
            )
        ).one()
    return int(waiting), float(oldest or 0.0), int(sent)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _raw_rate(launcher: Any, n: int, *, size: int, webhook: bool) -> float:
    """Bare annotation POSTs per second from one client, on a new project of ``size`` tasks; with
    ``webhook``, one registered like the platform's (to the same receiver, with the secret), so
    Label Studio does the same work per write as for the outbox's: the like-for-like baseline."""
    from include.labelstudio.client import LabelStudioClient
    from include.labelstudio.label_config import build_label_config, choice_result
    from include.services import webhooks

    client = LabelStudioClient(launcher.env["LS_URL"], launcher.env["LS_API_TOKEN"], retries=0)
    project = client.create_project(f"raw posts {size} {webhook}", build_label_config(["negative", "positive"]))
    if webhook:
        client.request(
            "POST",
            "/api/webhooks/",
            json_body={
                "project": project["id"],
                "url": webhooks.hook_url(launcher.env["WEBHOOK_URL"], project["id"]),
                "headers": {webhooks.SECRET_HEADER: launcher.env["WEBHOOK_SECRET"]},
                "send_payload": False,
                "send_for_all_actions": False,
                "actions": list(webhooks.ACTIONS),
                "is_active": True,
            },
        )
    tasks = client.import_tasks(project["id"], [{"data": {"text": f"raw {i}"}} for i in range(max(size, n + 1))])
    client.create_annotation(tasks[0], choice_result("positive"))  # warm
    started = time.monotonic()
    for ls_task in tasks[1 : n + 1]:
        client.create_annotation(ls_task, choice_result("positive"))
    return n / (time.monotonic() - started)


def _verify(launcher: Any, dataset_id: int) -> dict[str, int]:
    """Label Studio against the platform: each platform label there exactly once, the same."""
    from sqlalchemy import select

    from include.db.models import Annotation, Task
    from include.db.session import session_scope
    from include.labelstudio.client import LabelStudioClient
    from include.labelstudio.label_config import label_of

    with session_scope(launcher.platform_url) as s:
        project_id = int(s.scalar(select(Task.ls_project_id).where(Task.dataset_id == dataset_id).limit(1)) or 0)
        platform = {
            int(ls_task): label
            for ls_task, label in s.execute(
                select(Task.ls_task_id, Annotation.label)
                .join(Annotation, Annotation.task_id == Task.id)
                .where(
                    Task.dataset_id == dataset_id, Annotation.label.is_not(None), Annotation.annotator_id.is_not(None)
                )
            ).tuples()
        }
    client = LabelStudioClient(launcher.env["LS_URL"], launcher.env["LS_API_TOKEN"], retries=2)
    missing = duplicated = different = 0
    seen = set()
    for task in client.iter_tasks(project_id):
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        ls_id = int(task["id"])
        if ls_id not in platform:
            continue
        seen.add(ls_id)
        if not annotations:
            missing += 1
        elif len(annotations) > 1:
            duplicated += 1
        elif label_of(annotations[0].get("result")) != platform[ls_id]:
            different += 1
    missing += len(set(platform) - seen)
    return {"platform_labels": len(platform), "missing": missing, "duplicated": duplicated, "different": different}


def _airflow_runs(airflow: Any, dag_id: str, since: str) -> dict[str, int]:
    body = airflow._request(
        "GET", f"/dags/{dag_id}/dagRuns", params={"run_after_gte": since, "limit": 1000, "order_by": "run_after"}
    )
    counts: dict[str, int] = {}
    for run in body.get("dag_runs", []):
        counts[run.get("run_type", "?")] = counts.get(run.get("run_type", "?"), 0) + 1
    return counts


def _webhooks(db: str, dataset_id: int) -> dict[str, int]:
    from sqlalchemy import text

    from include.db.session import get_engine

    with get_engine(db).connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE echo), count(*) FILTER (WHERE coalesced), "
                "count(*) FILTER (WHERE signalled_at IS NOT NULL AND NOT echo AND NOT coalesced), "
                "count(*) FILTER (WHERE signalled_at IS NULL) FROM ls_webhooks WHERE dataset_id = :d"
            ),
            {"d": dataset_id},
        ).one()
    return dict(zip(("received", "echoes", "coalesced", "posted", "waiting"), map(int, row), strict=True))


def run(options: Options, tag: str) -> dict[str, Any]:
    from datetime import UTC, datetime

    with stack(tag, options) as launcher:
        prepared = _prepare(launcher, options)
        db, base = launcher.platform_url, launcher.urls["LabelOps web app"]
        passwords = launcher.secrets.get("demo_passwords", dict)
        since = datetime.now(UTC).isoformat()
        load = Load()
        series: list[tuple[float, int, float]] = []
        stop_sampling = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            while not stop_sampling.is_set():
                waiting, oldest, _ = _outbox(db)
                series.append((round(time.monotonic() - started, 1), waiting, round(oldest, 1)))
                stop_sampling.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        until = started + options.duration
        per_user = options.clients // 2
        tokens = {name: _token(base, name, passwords[name]) for name in ("alice", "bob")}
        threads = []
        for k in range(options.clients):
            name = ("alice", "bob")[k % 2]
            mine = prepared["work"][name][k // 2 :: per_user]
            threads.append(
                threading.Thread(
                    target=_client, args=(base, tokens[name], mine, until, load, options.think), daemon=True
                )
            )
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        load_end = time.monotonic()
        deadline = load_end + (0 if options.presses_only else DRAIN_TIMEOUT)
        while _outbox(db)[0] and time.monotonic() < deadline:
            time.sleep(0.5)
        drained = time.monotonic()
        stop_sampling.set()
        sampler.join()
        waiting_after, _, _ = _outbox(db)
        ok = [p for p in load.presses if p.status == 200]
        n = len(ok)
        first_press = min(p.started for p in load.presses)
        last_press = max(p.started + p.ms / 1000 for p in load.presses)
        presses = {
            "n": len(load.presses),
            "ok": n,
            "errors": len(load.presses) - n,
            "labels_per_s": round(n / (last_press - first_press), 1),
            "p50_ms": round(statistics.median(p.ms for p in ok), 1),
            "p95_ms": round(_percentile([p.ms for p in ok], 0.95), 1),
            "p99_ms": round(_percentile([p.ms for p in ok], 0.99), 1),
            "goal_p95_ms": 300,
        }
        if options.presses_only:
            return {"options": options.__dict__, "presses": presses}
        probes = min(300, max(50, n // 10))
        raw = _raw_rate(launcher, probes, size=options.tasks, webhook=True)
        bare = _raw_rate(launcher, probes, size=probes + 1, webhook=False)
        delivery_rate = n / (drained - first_press)
        raw_time = n / raw
        result = {
            "options": options.__dict__,
            "presses": presses,
            "outbox": {
                "max_waiting": max((w for _, w, _ in series), default=0),
                "max_oldest_s": max((o for _, _, o in series), default=0.0),
                "waiting_10_min_after_start": next((w for t, w, _ in series if t >= 600), None),
                "lag_zero_after_s": round(drained - first_press, 1),
                "lag_zero_after_load_end_s": round(drained - load_end, 1),
                "still_waiting": waiting_after,
                "delivery_labels_per_s": round(delivery_rate, 2),
            },
            # like for like: a project as big as the load's, with a webhook to the same receiver
            "label_studio_raw_posts_per_s": round(raw, 2),
            "delivery_over_raw": round(delivery_rate / raw, 3),
            # the strictest: a small project without webhooks
            "label_studio_bare_posts_per_s": round(bare, 2),
            "delivery_over_bare": round(delivery_rate / bare, 3),
            "goal_delivery_over_raw": 0.8,
            "lag_zero_over_raw_write_time": round((drained - first_press) / raw_time, 3),
            "goal_lag_zero_over_raw_write_time": 1.25,
            "exports": _airflow_runs(prepared["airflow"], "ls_export", since),
            "loops": _airflow_runs(prepared["airflow"], "active_learning_nightly", since),
            "webhooks": _webhooks(db, prepared["dataset_id"]),
            "label_studio_vs_platform": _verify(launcher, prepared["dataset_id"]),
            "lag_series": series[:: max(1, len(series) // 120)],
        }
    return result


def _parse(argv: list[str] | None) -> tuple[Options, str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ls-database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--slots", type=int, default=1, help="LS_WRITE_CONCURRENCY")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--duration", type=float, default=DURATION)
    parser.add_argument("--tasks", type=int, default=TASKS)
    parser.add_argument("--no-live-loop", action="store_true")
    parser.add_argument("--think", type=float, default=0.0, help="seconds between a client's presses (0: flat out)")
    parser.add_argument("--presses-only", action="store_true", help="no drain, baseline or check (web sizing)")
    parser.add_argument("--name", default="", help="results file suffix")
    args = parser.parse_args(argv)
    options = Options(
        ls_database=args.ls_database,
        workers=args.workers,
        threads=args.threads,
        slots=args.slots,
        clients=args.clients,
        duration=args.duration,
        tasks=args.tasks,
        live_loop=not args.no_live_loop,
        think=args.think,
        presses_only=args.presses_only,
    )
    return options, args.name


def main(argv: list[str] | None = None) -> None:
    if argv is None and __name__ != "__main__":  # python -m bench load: both Label Studio databases
        results = {db: run(Options(ls_database=db), f"load-{db}") for db in ("sqlite", "postgresql")}
        save("load", results)
        return
    options, name = _parse(argv)
    save(f"load-{name or options.ls_database}", run(options, f"load-{name or options.ls_database}"))


if __name__ == "__main__":
    main()
