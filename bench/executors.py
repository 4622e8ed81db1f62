"""The nightly loop on the CeleryExecutor against the LocalExecutor, same data, same process.

Each mode starts the real platform (`make run --no-demo`, then with `--celery`: Redis and a
Celery worker per queue), makes the same dataset (1,000 demo texts, 200 labeled in Label
Studio), and times the nightly loop for it through the web app's API, from trigger to the end
of its run. Per-task durations and queues come from Airflow's task-instance records.

    .venv/bin/python -m bench.executors
"""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._env import save, scratch

SIZE, LABELS = 1000, 200


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (
        datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
    ).total_seconds()


def measure(platform: Any, name: str) -> dict[str, Any]:
    dataset_id = platform.labeled_dataset(name, SIZE, LABELS)
    time.sleep(5)  # the exports the labels' webhooks started are done
    started = time.perf_counter()
    job = platform.run_pipeline("active_learning_nightly", {"dataset_id": dataset_id}, timeout=1800)
    wall = time.perf_counter() - started
    assert job["status"] == "success", job
    airflow = platform.airflow()
    run = airflow.get_run("active_learning_nightly", job["run_id"])
    tis = airflow._request(
        "GET", f"/dags/active_learning_nightly/dagRuns/{job['run_id']}/taskInstances", params={"limit": 100}
    )["task_instances"]
    return {
        "wall_s": wall,
        "run_s": _seconds(run.get("start_date"), run.get("end_date")),
        "tasks": {
            t["task_id"]: {
                "s": _seconds(t.get("start_date"), t.get("end_date")),
                "queue": t["queue"],
                "host": t["hostname"],
            }
            for t in tis
        },
    }


def main() -> None:
    from tests.helpers.platform import started_platform

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[str, Any] = {}
    for mode, args in (("local", []), ("celery", ["--celery"])):
        parent = Path(tempfile.mkdtemp(dir=scratch(), prefix=f"{mode}-"))
        with started_platform(parent, args=args) as platform:
            results[mode] = measure(platform, f"executors-{mode}")
        print(mode, results[mode], flush=True)
    save(
        "executors",
        {
            "items": SIZE,
            "labels": LABELS,
            **results,
            "ratio_celery_vs_local": results["celery"]["wall_s"] / results["local"]["wall_s"],
            "goal": "<= 1.2",
        },
    )


if __name__ == "__main__":
    main()
