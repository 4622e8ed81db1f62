"""The live loop, end to end on the real platform: from the N-th label made in Label Studio to new
priorities in an annotator's task list.

`make run --no-demo` on free ports (embedded PostgreSQL, Label Studio, Airflow's LocalExecutor
with its scheduler, gunicorn). For each size: a dataset of that many demo texts is imported into
Label Studio, 200 of them labeled there, then exported, embedded, trained and scored once (the
steady state: texts embedded, a model promoted, priorities scored). Then ``retrain_after_labels = N`` is set, an
annotator is given 50 tasks, and N more labels are made through Label Studio's API. The clock
runs from the N-th label's answer until the annotator's list shows the priorities of the loop it
started (its scoring has ended; new numbers when the gate promoted the new model). The shares
come from the records of each hop: the webhooks table (received, signalled), Airflow's runs and
task instances (queued, started, ended).

    .venv/bin/python -m bench.live_loop [--sizes 10000,100000] [--labels 50]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._env import save, scratch
from include.services.privacy import SYNTHETIC

LOOP_DAG = "active_learning_nightly"


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def _populate(platform: Any, size: int, name: str) -> tuple[int, dict[str, str]]:
    """A dataset of ``size`` demo texts (true labels kept aside), straight into the database."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from include.demo.texts import generate_demo_texts
    from include.services.datasets import add_items, create_dataset

    texts = generate_demo_texts(size, seed=size)
    engine = create_engine(platform.db_url)
    with Session(engine) as session, session.begin():
        dataset = create_dataset(session, name, labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(session, dataset, [(t.text, {}) for t in texts])
        dataset_id = dataset.id
    engine.dispose()
    return dataset_id, {t.text: t.true_label for t in texts}


def _label_in_label_studio(platform: Any, dataset_id: int, truth: dict[str, str], n: int, skip: set[int]) -> float:
    """Label ``n`` unlabeled, unassigned tasks through Label Studio's API; returns when the last
    one was answered (time.time())."""
    from include.labelstudio.client import LabelStudioClient
    from include.labelstudio.label_config import choice_result

    rows = platform.sql(
        "SELECT t.id, t.ls_task_id, i.text FROM tasks t JOIN items i ON i.id = t.item_id WHERE t.dataset_id = :d "
        "AND t.label IS NULL AND t.assigned_to IS NULL ORDER BY random() LIMIT :n",
        d=dataset_id,
        n=n + len(skip),
    )
    client = LabelStudioClient(platform.ls_url, platform.ls_token)
    done = 0
    for task_id, ls_task_id, text_ in rows:
        if task_id in skip:
            continue
        client.create_annotation(int(ls_task_id), choice_result(truth[text_]))
        done += 1
        if done == n:
            break
    return time.time()


def _priorities(platform: Any, dataset_id: int) -> dict[int, int]:
    listed = platform.api("GET", f"/annotator/tasks?dataset_id={dataset_id}&limit=200", "alice").json()["tasks"]
    return {int(t["id"]): int(t["priority"]) for t in listed}


def _airflow(platform: Any) -> Any:
    from include.airflow_client import AirflowClient

    return AirflowClient(platform.airflow_url, "admin", platform.airflow_admin_password)


def _runs_since(platform: Any, dag_id: str, since: float) -> list[dict[str, Any]]:
    runs = _airflow(platform)._request("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "-id"})
    return [r for r in runs["dag_runs"] if r["run_type"] == "asset_triggered" and (_ts(r["queued_at"]) or 0) >= since]


def _task_times(platform: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    body = _airflow(platform)._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    out = []
    for ti in body["task_instances"]:
        out.append(
            {
                "task": ti["task_id"] + (f"[{ti['map_index']}]" if ti.get("map_index", -1) >= 0 else ""),
                "state": ti["state"],
                "queued": _ts(ti.get("queued_when")),
                "start": _ts(ti.get("start_date")),
                "end": _ts(ti.get("end_date")),
            }
        )
    return sorted(out, key=lambda t: t["start"] or 0)


def measure(platform: Any, size: int, n_labels: int) -> dict[str, Any]:
    from tests.helpers.platform import wait_for

    started = time.perf_counter()
    dataset_id, truth = _populate(platform, size, f"live-{size}")
    off = platform.api("PUT", f"/datasets/{dataset_id}/live-loop", json={"retrain_after_labels": None})
    assert off.status_code == 200, off.text
    job = platform.run_pipeline("ls_import", {"dataset_id": dataset_id}, timeout=1200)
    assert job["status"] == "success", job
    import_s = time.perf_counter() - started
    _label_in_label_studio(platform, dataset_id, truth, 200, set())
    time.sleep(3)  # let the webhook-started exports of these labels settle
    warm = time.perf_counter()
    # The steady state, without the loop's pre-labels (100,000 predictions take Label Studio
    # about 20 minutes to import; annotators in Label Studio get them from the ML backend).
    for pipeline in ("ls_export", "embed_items", "train_classifier", "score_uncertainty"):
        job = platform.run_pipeline(pipeline, {"dataset_id": dataset_id}, timeout=3000)
        assert job["status"] == "success", (pipeline, job)
    steady_s = time.perf_counter() - warm
    assert platform.sql("SELECT count(*) FROM models WHERE dataset_id = :d AND status = 'promoted'", d=dataset_id)[0][0]

    assigned = platform.api("POST", f"/datasets/{dataset_id}/auto_assign", json={"username": "alice", "count": 50})
    assert assigned.status_code == 200, assigned.text
    mine = set(assigned.json()["task_ids"])
    before = _priorities(platform, dataset_id)
    on = platform.api("PUT", f"/datasets/{dataset_id}/live-loop", json={"retrain_after_labels": n_labels})
    assert on.status_code == 200, on.text

    t0_wall = time.time()
    nth_label = _label_in_label_studio(platform, dataset_id, truth, n_labels, mine)
    t0 = time.perf_counter()

    def scored_after_the_labels() -> float | None:
        """The live loop's scoring has ended (whether or not its gate promoted the new model):
        the annotator's list now shows what the current model says."""
        done = platform.sql(
            "SELECT count(*) FROM jobs WHERE dataset_id = :d AND step = 'score_uncertainty' "
            "AND run_id LIKE 'asset_triggered%' AND finished_at IS NOT NULL AND started_at > to_timestamp(:t)",
            d=dataset_id,
            t=nth_label,
        )[0][0]
        if not done:
            return None
        _priorities(platform, dataset_id)  # what the annotator sees now
        return time.perf_counter()

    visible_at = wait_for("new priorities in the annotator's list", scored_after_the_labels, timeout=900, every=0.25)
    latency = visible_at - t0
    visible_wall = nth_label + latency
    after = _priorities(platform, dataset_id)

    received, signalled = platform.sql(
        "SELECT max(received_at), max(signalled_at) FROM ls_webhooks WHERE dataset_id = :d", d=dataset_id
    )[0]
    exports = [r for r in _runs_since(platform, "ls_export", t0_wall) if r["state"] == "success"]

    loops = _runs_since(platform, LOOP_DAG, t0_wall)
    assert loops, "no asset-triggered loop run"
    loop = min(loops, key=lambda r: _ts(r["queued_at"]) or 0)
    loop_queued = _ts(loop["queued_at"]) or 0
    loop_tasks = _task_times(platform, LOOP_DAG, loop["dag_run_id"])
    # The export that started the loop: its live_loop_due step succeeded just before the loop run.
    candidates = []
    for run in exports:
        tasks = _task_times(platform, "ls_export", run["dag_run_id"])
        due = next((t for t in tasks if t["task"] == "live_loop_due" and t["state"] == "success"), None)
        if due is not None and (due["end"] or 0) <= loop_queued + 1:
            candidates.append((due["end"] or 0, tasks))
    due_end, export_tasks = max(candidates, key=lambda c: c[0])
    export_start = min(t["start"] or 0 for t in export_tasks)
    loop_start = min(t["start"] or 0 for t in loop_tasks)
    score_end = max((t["end"] or 0) for t in loop_tasks if t["task"].startswith("loop.score_uncertainty"))

    def task(name: str, tasks: list[dict[str, Any]]) -> float:
        found = [t for t in tasks if t["task"].split("[")[0] == name and t["start"]]
        return sum((t["end"] or 0) - (t["start"] or 0) for t in found)

    chain = ["ls_export", "loop_datasets", "loop.embed_items", "loop.build_index", "loop.train_classifier",
             "loop.gate", "loop.score_uncertainty"]  # fmt: skip
    loop_in_tasks = {name: task(name, loop_tasks) for name in chain}
    hops = {
        # Label Studio posts each webhook before it answers the annotation request.
        "webhook_received_after_label": received.timestamp() - nth_label,
        "webhook_to_airflow_event": signalled.timestamp() - received.timestamp(),
        "label_to_export_start": export_start - nth_label,
        "export_ls_export": task("ls_export", export_tasks),
        "export_live_loop_due": task("live_loop_due", export_tasks),
        "export_scheduling": due_end
        - export_start
        - task("ls_export", export_tasks)
        - task("live_loop_due", export_tasks),
        "asset_event_to_loop_start": loop_start - due_end,
        **{f"loop_{name.removeprefix('loop.')}": value for name, value in loop_in_tasks.items()},
        "loop_scheduling_between_tasks": score_end - loop_start - sum(loop_in_tasks.values()),
        "scored_to_visible": visible_wall - score_end,
    }
    accounted = ["label_to_export_start", "export_ls_export", "export_live_loop_due", "export_scheduling",
                 "asset_event_to_loop_start", *[f"loop_{n.removeprefix('loop.')}" for n in chain],
                 "loop_scheduling_between_tasks", "scored_to_visible"]  # fmt: skip
    task_s = {t["task"]: t["end"] - t["start"] for t in export_tasks + loop_tasks if t["start"] and t["end"]}
    return {
        "tasks": size,
        "labels": n_labels,
        "latency_s": latency,
        "goal_s": 30 if size <= 10_000 else None,
        "hops_s": hops,
        "hop_share": {k: hops[k] / latency for k in accounted},  # these add up to the latency
        "task_s": task_s,  # prelabel runs beside scoring and is not on the path
        "loop_state_when_scored": loop["state"],  # pre-labels may still be on their way to Label Studio
        "setup": {"import_s": import_s, "first_full_loop_s": steady_s},
        "priorities_changed": sum(1 for k, v in after.items() if before.get(k) != v),
        "gate": platform.sql("SELECT message FROM jobs WHERE run_id = :r AND step = 'gate'", r=loop["dag_run_id"])[0][
            0
        ],
    }


def receiver_latency(platform: Any, dataset_id: int, n: int = 300) -> dict[str, Any]:
    """Label Studio posts each webhook before it answers the annotator, so the receiver's time is
    the annotator's time: ``POST /hooks/labelstudio`` (new events, and replays) against ``GET
    /livez`` (the cheapest route of the same gunicorn) in turns."""
    import json

    import requests

    from bench._env import summary
    from include.services.webhooks import SECRET_HEADER

    secret = json.loads((platform.home / "secrets.json").read_text())["webhook_secret"]
    (project_id,) = platform.sql("SELECT ls_project_id FROM datasets WHERE id = :d", d=dataset_id)[0]
    session = requests.Session()
    samples: dict[str, list[float]] = {"webhook_new": [], "webhook_replay": [], "livez": []}
    for i in range(n):
        body = {"action": "ANNOTATION_UPDATED", "annotation": {"id": 10_000_000 + i}, "project": {"id": project_id}}
        for name, call in (
            ("webhook_new", lambda b=body: session.post(f"{platform.web}/hooks/labelstudio", json=b,
                                                        headers={SECRET_HEADER: secret}, timeout=10)),
            ("webhook_replay", lambda b=body: session.post(f"{platform.web}/hooks/labelstudio", json=b,
                                                           headers={SECRET_HEADER: secret}, timeout=10)),
            ("livez", lambda: session.get(f"{platform.web}/livez", timeout=10)),
        ):  # fmt: skip
            started = time.perf_counter()
            response = call()
            samples[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code in (200, 202), response.text
    out: dict[str, Any] = {name: summary(values) for name, values in samples.items()}
    out["ratio_p95_new_vs_livez"] = out["webhook_new"]["p95"] / out["livez"]["p95"]
    return out


def main(argv: list[str] | None = None) -> None:
    from tests.helpers.platform import started_platform

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--labels", type=int, default=50)
    args = parser.parse_args(argv or [])  # python -m bench runs it with the defaults
    sizes = [int(s) for s in args.sizes.split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stop still stops the platform it started
    results = []
    with started_platform(Path(tempfile.mkdtemp(dir=scratch(), prefix="live-"))) as platform:
        for size in sizes:
            results.append(measure(platform, size, args.labels))
            print(results[-1], flush=True)
        first = int(platform.sql("SELECT min(id) FROM datasets WHERE name LIKE 'live-%'")[0][0])
        receiver = receiver_latency(platform, first)
    save("live_loop", {"runs": results, "receiver_ms": receiver})


if __name__ == "__main__":
    main(sys.argv[1:])
