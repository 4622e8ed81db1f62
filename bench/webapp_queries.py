"""Web app at scale: 1,000,000 tasks and 50 annotators in the real PostgreSQL.

Server time (in-process WSGI, no network) of an annotator's task list and of the admin dataset
statistics page, median and p95 over 200 requests each, next to a baseline request (/healthz,
one ``SELECT 1``) measured in the same process. Auto-assigning 10,000 tasks. And the query plans.
Goals: p95 under 50 ms; auto-assign 10,000 under 1 s.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench._env import postgres, save, summary

N_TASKS = 1_000_000
N_ANNOTATORS = 50
REQUESTS = 200


def populate(db: str) -> tuple[int, list[int]]:
    """One dataset of 1M items/tasks: 60 % assigned over 50 annotators, half of those labeled."""
    from sqlalchemy import text
    from werkzeug.security import generate_password_hash

    from include.db.session import get_engine

    pw = generate_password_hash("bench-password-1")
    with get_engine(db).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, email, password_hash, role) VALUES ('admin', 'admin@b.io', :pw, 'admin')"
            ),
            {"pw": pw},
        )
        conn.execute(
            text(
                "INSERT INTO users (username, email, password_hash, role) "
                "SELECT 'ann' || g, 'ann' || g || '@b.io', :pw, 'annotator' FROM generate_series(1, :n) g"
            ),
            {"pw": pw, "n": N_ANNOTATORS},
        )
        conn.execute(
            text(
                "INSERT INTO datasets (name, labels, ls_project_id, item_count) "
                "VALUES ('big', '[\"OK\", \"NG\"]', 1, :n)"
            ),
            {"n": N_TASKS},
        )
        started = time.perf_counter()
        conn.execute(
            text(
                "INSERT INTO items (dataset_id, text, text_hash, source) "
                "SELECT 1, 'Inspection note ' || g || ': the unit works as described, checked twice.', "
                "md5(g::text) || md5((g + 7)::text), '{}' FROM generate_series(1, :n) g"
            ),
            {"n": N_TASKS},
        )
        conn.execute(
            text(
                """
            INSERT INTO tasks (dataset_id, item_id, ls_project_id, ls_task_id, status, assigned_to, assigned_at, label,
                               labeled_at, priority)
            SELECT 1, i.id, 1, i.id,
                   CASE WHEN r.a >= 0.6 THEN 'imported' WHEN r.l < 0.5 THEN 'labeled'
                        WHEN r.l < 0.52 THEN 'conflict' ELSE 'assigned' END,
                   CASE WHEN r.a >= 0.6 THEN NULL ELSE 2 + (i.id % :ann) END,
                   CASE WHEN r.a >= 0.6 THEN NULL ELSE now() END,
                   CASE WHEN r.a < 0.6 AND r.l < 0.5 THEN (CASE WHEN r.p < 0.5 THEN 'OK' ELSE 'NG' END) END,
                   CASE WHEN r.a < 0.6 AND r.l < 0.5 THEN now() - (r.p * interval '3 days') END,
                   (r.p * 1000)::int
            FROM items i CROSS JOIN LATERAL (SELECT random() AS a, random() AS l, random() AS p, i.id AS x) r
            """
            ),
            {"ann": N_ANNOTATORS},
        )
        load_s = time.perf_counter() - started
    with get_engine(db).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with get_engine(db).connect() as conn:
        annotators = [int(i) for i in conn.execute(text("SELECT id FROM users WHERE role = 'annotator'")).scalars()]
    print(f"loaded {N_TASKS} tasks in {load_s:.0f} s", flush=True)
    return 1, annotators


def server_times(app: Any, client: Any, path: str, n: int) -> list[float]:
    """Wall time of each request inside the WSGI app (what the server spends), in ms."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return samples


def explain(db: str, sql: str, params: dict[str, Any]) -> str:
    from sqlalchemy import text

    from include.db.session import get_engine

    with get_engine(db).connect() as conn:
        trans = conn.begin()
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql), params))
        trans.rollback()
    return plan


def main() -> None:
    from include.db.session import session_scope
    from include.services.assignment import _AUTO_ASSIGN, auto_assign
    from webapp import create_app

    with postgres("bench_webapp") as db:
        dataset_id, annotators = populate(db)
        app = create_app(
            {
                "SECRET_KEY": "bench-secret-key-0123456789",
                "SQLALCHEMY_DATABASE_URI": db,
                "WTF_CSRF_ENABLED": False,
                "LOGIN_THROTTLE_ENABLED": False,
                "LS_URL": None,
                "LS_API_TOKEN": None,
                "AIRFLOW_API_URL": "http://127.0.0.1:9",
                "AIRFLOW_API_USER": "webapp",
                "AIRFLOW_API_PASSWORD": None,  # /healthz checks the database only
            }
        )
        rng = random.Random(0)
        clients = {}
        for uid in annotators:
            c = app.test_client()
            c.post("/login", data={"username": f"ann{uid - 1}", "password": "bench-password-1"})
            clients[uid] = c
        admin = app.test_client()
        admin.post("/login", data={"username": "admin", "password": "bench-password-1"})

        for c in list(clients.values())[:5]:  # warm caches and the connection pool
            server_times(app, c, "/me/tasks", 3)
        server_times(app, admin, f"/admin/datasets/{dataset_id}", 3)
        baseline = server_times(app, admin, "/healthz", REQUESTS)
        task_list = []
        task_list_todo = []
        for _ in range(REQUESTS):
            uid = rng.choice(annotators)
            task_list += server_times(app, clients[uid], "/me/tasks", 1)
            task_list_todo += server_times(app, clients[uid], "/me/tasks?status=assigned&page=3", 1)
        stats_page = server_times(app, admin, f"/admin/datasets/{dataset_id}", REQUESTS)
        api_stats = server_times(app, admin, "/admin/jobs.json", 1)  # exercise another page once

        with session_scope(db) as s:
            from include.db.models import User

            user = s.get(User, annotators[0])
            started = time.perf_counter()
            ids = auto_assign(s, dataset_id, user, 10_000)
        assign_s = time.perf_counter() - started
        assert len(ids) == 10_000

        plans = {
            "annotator_task_list": explain(
                db,
                "SELECT tasks.*, items.text FROM tasks JOIN items ON items.id = tasks.item_id "
                "WHERE tasks.assigned_to = :u AND tasks.status != 'deleted' "
                "ORDER BY tasks.priority DESC, tasks.id LIMIT 51",
                {"u": annotators[3]},
            ),
            "annotator_task_list_status": explain(
                db,
                "SELECT tasks.*, items.text FROM tasks JOIN items ON items.id = tasks.item_id "
                "WHERE tasks.assigned_to = :u AND tasks.status = 'assigned' ORDER BY tasks.priority DESC, tasks.id "
                "LIMIT 51 OFFSET 100",
                {"u": annotators[3]},
            ),
            "dataset_stats": explain(
                db,
                "SELECT dataset_id, assignee_id, status, label, n FROM task_counts WHERE n != 0 AND dataset_id = :d",
                {"d": dataset_id},
            ),
            "auto_assign_10000": explain(
                db, str(_AUTO_ASSIGN), {"dataset_id": dataset_id, "count": 10_000, "user_id": annotators[1]}
            ),
        }
        base = summary(baseline)
        result = {
            "tasks": N_TASKS,
            "annotators": N_ANNOTATORS,
            "requests_each": REQUESTS,
            "baseline_healthz_ms": base,
            "annotator_task_list_ms": summary(task_list)
            | {"p95_over_baseline_p95": summary(task_list)["p95"] / base["p95"]},
            "annotator_task_list_filtered_page3_ms": summary(task_list_todo),
            "admin_stats_page_ms": summary(stats_page)
            | {"p95_over_baseline_p95": summary(stats_page)["p95"] / base["p95"]},
            "auto_assign_10000_s": assign_s,
            "goals": {"p95_ms": "< 50", "auto_assign_10000_s": "< 1"},
            "query_plans": plans,
            "jobs_json_ms": api_stats[0],
        }
    save("webapp_queries", result)


if __name__ == "__main__":
    main()
