"""Label Studio sync benchmarks (real Label Studio 1.23.2, embedded PostgreSQL, Airflow dag.test()).

1. Import 20,000 items: the ls_import DAG task vs a raw bulk POST of the same tasks (4 x 5,000),
   alternating order over rounds. Goal: at most 1.15x.
2. Export after 100 new annotations on a 20,000-task project: the incremental sync vs the full
   ``/export``. Goal: at least 10x faster.
3. SQL statements per 1,000 tasks imported or exported: constant, not O(N).
"""

from __future__ import annotations

import json
import os
import statistics
import uuid
from typing import Any

from bench._env import REPO, RESULTS, postgres, save, setup_airflow_env, timed
from include.pipelines.catalog import ExportValues, ImportValues
from include.services.privacy import SYNTHETIC

setup_airflow_env()

N = 20_000
BATCH = 5_000


def _dataset(db: str, n: int) -> int:
    from include.db.session import session_scope
    from include.services.datasets import add_items, create_dataset

    tag = uuid.uuid4().hex[:8]
    with session_scope(db) as s:
        ds = create_dataset(s, f"bench-{tag}", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(
            s, ds, ((f"bench {tag} inspection note number {i}: the unit works as described", {}) for i in range(n))
        )
        return ds.id


def _raw_import(client: Any, n: int) -> float:
    """The baseline: the same task payloads POSTed in 5,000-task batches, nothing else."""
    from include.labelstudio.label_config import build_label_config

    project = client.create_project(f"raw {uuid.uuid4().hex[:6]}", build_label_config(["OK", "NG"]))
    tag = uuid.uuid4().hex[:8]
    payloads = [
        {
            "data": {
                "text": f"raw {tag} inspection note number {i}: the unit works as described",
                "item_id": i,
                "dataset_id": 0,
            }
        }
        for i in range(n)
    ]
    seconds, _ = timed(
        lambda: [client.import_tasks(project["id"], payloads[i : i + BATCH]) for i in range(0, n, BATCH)]
    )
    return seconds


def _dag_import(dag: Any, dataset_id: int) -> tuple[float, float]:
    """(task seconds as Airflow recorded them, wall seconds of dag.test())."""
    wall, dr = timed(lambda: dag.test(run_conf={"dataset_id": dataset_id, "batch_size": BATCH}))
    assert str(dr.state) == "success", dr.state
    ti = next(t for t in dr.get_task_instances() if t.task_id == "ls_import")
    return (ti.end_date - ti.start_date).total_seconds(), wall


def count_statements(db: str, fn: Any) -> tuple[int, Any]:
    from sqlalchemy import event

    from include.db.session import get_engine

    counter = {"n": 0}

    def _count(*args: object) -> None:
        counter["n"] += 1

    engine = get_engine(db)
    event.listen(engine, "before_cursor_execute", _count)
    try:
        result = fn()
    finally:
        event.remove(engine, "before_cursor_execute", _count)
    return counter["n"], result


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db as af_db

    from bench._env import label_studio
    from include.db.models import Dataset
    from include.db.session import session_scope
    from include.labelstudio.client import LabelStudioClient
    from include.pipelines.ls_export import run_ls_export
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.runner import RunRef

    af_db.initdb()
    with postgres() as db, label_studio() as (url, token):
        client = LabelStudioClient(url, token, timeout=600)
        dag = DagBag(dag_folder=str(REPO / "dags")).get_dag("ls_import")
        for t in dag.tasks:
            t.retries = 0
        _dag_import(dag, _dataset(db, 50))  # warm-up: the first task of a process pays ~5 s of Airflow start-up
        parts = os.environ.get("BENCH_LS_PARTS", "import,export,sql").split(",")
        results: dict[str, Any] = {}
        if "import" in parts:
            results["import"] = bench_import(db, client, dag)
        if "export" in parts or "sql" in parts:
            dataset_id = _dataset(db, N)
            run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id, batch_size=BATCH))
            with session_scope(db) as s:
                project_id = int(s.get_one(Dataset, dataset_id).ls_project_id or 0)
            ls_ids = [t["id"] for t in client.iter_tasks(project_id, fields="task_only", include=["id"])]
            assert len(ls_ids) == N
            run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id))  # first sync sets the watermark
            if "export" in parts:
                results["export"] = bench_export(db, client, dataset_id, project_id, ls_ids)
            if "sql" in parts:
                results["sql_statements"] = bench_sql(db, client, dataset_id, ls_ids)
    previous = json.loads((RESULTS / "ls_sync.json").read_text()) if (RESULTS / "ls_sync.json").exists() else {}
    save("ls_sync", {k: previous[k] for k in ("import", "export", "sql_statements") if k in previous} | results)


def bench_import(db: str, client: Any, dag: Any) -> dict[str, Any]:
    rounds = []
    for order in ("raw-first", "dag-first", "raw-first", "dag-first", "raw-first"):
        dataset_id = _dataset(db, N)
        if order == "raw-first":
            raw = _raw_import(client, N)
            task, wall = _dag_import(dag, dataset_id)
        else:
            task, wall = _dag_import(dag, dataset_id)
            raw = _raw_import(client, N)
        rounds.append(
            {"order": order, "raw_post_s": raw, "dag_task_s": task, "dag_test_wall_s": wall, "ratio": task / raw}
        )
    return {
        "items": N,
        "batch": BATCH,
        "rounds": rounds,
        "median_ratio": statistics.median(r["ratio"] for r in rounds),
        "goal": "<= 1.15",
    }


def _full_export(client: Any, project_id: int) -> tuple[float, Any]:
    return timed(
        lambda: client.request(
            "GET",
            f"/api/projects/{project_id}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
            timeout=600,
        )
    )


def bench_export(db: str, client: Any, dataset_id: int, project_id: int, ls_ids: list[int]) -> dict[str, Any]:
    """100 new annotations on a 20,000-task project: the incremental sync vs the full export."""
    from include.labelstudio.label_config import choice_result
    from include.pipelines.ls_export import run_ls_export
    from include.pipelines.runner import RunRef

    rounds = []
    for r in range(2):
        for ls_id in ls_ids[r * 100 : (r + 1) * 100]:
            client.create_annotation(ls_id, choice_result("OK" if ls_id % 2 else "NG"))
        if r == 0:
            inc, result = timed(lambda: run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id)))
            full, body = _full_export(client, project_id)
        else:
            full, body = _full_export(client, project_id)
            inc, result = timed(lambda: run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id)))
        assert result["labeled"] == 100, result
        assert len(body) == N
        rounds.append({"incremental_s": inc, "full_export_s": full, "speedup": full / inc})
    return {
        "tasks": N,
        "new_annotations": 100,
        "rounds": rounds,
        "median_speedup": statistics.median(r["speedup"] for r in rounds),
        "goal": ">= 10",
    }


def bench_sql(db: str, client: Any, dataset_id: int, ls_ids: list[int]) -> dict[str, Any]:
    """Statements per 1,000 tasks imported or exported."""
    from include.labelstudio.label_config import choice_result
    from include.pipelines.ls_export import run_ls_export
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.runner import RunRef

    statements: dict[str, Any] = {}
    for n in (2_000, 20_000):
        ds = _dataset(db, n)
        count, _ = count_statements(
            db, lambda ds=ds: run_ls_import(db, client, RunRef(), ImportValues(dataset_id=ds, batch_size=BATCH))
        )
        statements[f"import_{n}"] = {
            "statements": count,
            "per_1000_tasks": count / (n / 1000),
            "batches": -(-n // BATCH),
        }
    for n in (100, 1_000):
        for ls_id in ls_ids[1_000 : 1_000 + n]:
            client.create_annotation(ls_id, choice_result("NG"))
        count, res = count_statements(
            db, lambda: run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id))
        )
        statements[f"export_{n}"] = {
            "statements": count,
            "tasks_synced": res["tasks_seen"],
            "per_1000_tasks": count / (res["tasks_seen"] / 1000),
        }
        for ls_id in ls_ids[1_000 : 1_000 + n]:  # reset for the next size
            for ann in client.request("GET", f"/api/tasks/{ls_id}/annotations"):
                client.delete_annotation(ann["id"])
        run_ls_export(db, client, RunRef(), ExportValues(dataset_id=dataset_id))
    return statements


if __name__ == "__main__":
    main()
