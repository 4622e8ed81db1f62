"""The multi-machine topology on one machine: `make run ARGS=--celery` (CeleryExecutor, Debian's
redis-server as the broker, a Celery worker on queue `default` and one on queue `gpu`).

The nightly loop runs end to end, and Airflow's own task-instance records show training on the
gpu worker and everything else on the default one. Then the gpu worker is SIGKILLed while it
trains (as a lost machine): the scheduler fails the try once its heartbeats stop, the launcher
restarts the worker, the retry completes, and nothing is duplicated.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from typing import Any

import psutil
import pytest

from tests.helpers.platform import Platform, started_platform, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio, pytest.mark.airflow]

if shutil.which("redis-server") is None:
    pytest.skip("needs Debian's redis-server (make redis)", allow_module_level=True)


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Any:
    env = {"AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20"}
    with started_platform(tmp_path_factory.mktemp("celery"), extra_env=env, args=["--celery"]) as running:
        yield running


def _tries(platform: Platform, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Every try of every task of a run, from Airflow's records (finished tries and current ones)."""
    airflow = platform.airflow()
    current = airflow._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
    found = []
    for ti in current["task_instances"]:
        found += airflow.task_tries(dag_id, run_id, ti["task_id"], ti.get("map_index", -1))
    return found


def test_the_nightly_loop_runs_on_the_default_and_gpu_workers(platform: Platform) -> None:
    dataset_id = platform.labeled_dataset("celery-loop", 300, 150)
    job = platform.run_pipeline("active_learning_nightly", {"dataset_id": dataset_id}, timeout=600)
    assert job["status"] == "success", job
    tries = _tries(platform, "active_learning_nightly", job["run_id"])
    by_task = {t["task_id"]: t for t in tries}
    assert set(by_task) == {
        "ls_export", "loop_datasets", "loop.embed_items", "loop.build_index", "loop.train_classifier",
        "loop.gate", "loop.prelabel", "loop.score_uncertainty",
    }  # fmt: skip
    assert all(t["state"] == "success" for t in tries), tries
    for task_id, ti in by_task.items():
        gpu = task_id in ("loop.embed_items", "loop.train_classifier")
        assert ti["queue"] == ("gpu" if gpu else "default"), ti
        assert ti["hostname"].startswith("gpu@" if gpu else "default@"), ti  # the worker that ran it
        assert ti["executor"] in (None, "CeleryExecutor"), ti
    # One model from this run (the live loop may train on labels of its own beside it).
    models = platform.sql(
        "SELECT m.version, x.run_id FROM models m JOIN experiments x ON x.id = m.experiment_id WHERE m.dataset_id = :d",
        d=dataset_id,
    )
    assert [run for _, run in models].count(job["run_id"]) == 1, (
        models,
        platform.sql("SELECT dag_id, run_id, kind, step, status, message FROM jobs ORDER BY id"),
    )


def test_a_gpu_worker_killed_mid_training_is_retried_without_duplicates(platform: Platform) -> None:
    dataset_id = platform.labeled_dataset("celery-kill", 300, 150)
    assert platform.run_pipeline("ls_export", {"dataset_id": dataset_id})["status"] == "success"
    # An MLP with a long epoch budget and one example per step: the kill lands among its epochs.
    body = {"dataset_id": dataset_id, "model_kind": "mlp", "epochs": 1000, "patience": 100, "batch_size": 1,
            "min_f1": 0.0}  # fmt: skip
    response = platform.api("POST", "/pipelines/train_classifier", json=body)
    assert response.status_code == 202, response.text
    run_id = response.json()["job"]["run_id"]

    def epochs_recorded() -> int:
        rows = platform.sql(
            "SELECT count(*) FROM experiment_epochs e JOIN experiments x ON x.id = e.experiment_id WHERE x.run_id = :r",
            r=run_id,
        )
        return int(rows[0][0])

    wait_for("training to be under way on the gpu worker", lambda: epochs_recorded() >= 10, timeout=300, every=0.5)
    worker = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if "celery" in " ".join(p.info["cmdline"] or []) and "gpu" in (p.info["cmdline"] or [])
        and "worker" in (p.info["cmdline"] or [])
    )  # fmt: skip
    # A lost machine: the worker, its pool and the task process (which runs in a group of its own).
    doomed = [worker, *worker.children(recursive=True)]
    os.killpg(os.getpgid(worker.pid), signal.SIGKILL)
    for process in doomed:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)

    # Airflow's run is the truth here: the scheduler fails the try once its heartbeats stop.
    assert platform.airflow().wait("train_classifier", run_id, timeout=600, poll=3) == "success"
    tries = [t for t in _tries(platform, "train_classifier", run_id) if t["task_id"] == "train_classifier"]
    seen = [(t["try_number"], t["state"], t["hostname"]) for t in tries]
    assert [(n, state) for n, state, _ in seen] == [(1, "failed"), (2, "success")], seen
    assert all(t["hostname"].startswith("gpu@") and t["queue"] == "gpu" for t in tries), tries
    # One experiment for the run (the killed try's partial one was replaced), its epochs once,
    # one model version.
    experiments = platform.sql("SELECT id, status FROM experiments WHERE run_id = :r", r=run_id)
    assert len(experiments) == 1 and experiments[0][1] == "finished", experiments
    epochs = platform.sql(
        "SELECT count(*), count(DISTINCT epoch) FROM experiment_epochs WHERE experiment_id = :e", e=experiments[0][0]
    )[0]
    assert epochs[0] == epochs[1] > 0
    models = platform.sql("SELECT count(*) FROM models WHERE experiment_id = :e", e=experiments[0][0])[0][0]
    assert models == 1
    # The jobs page tells the same story: the run's row, and one row per step, both settled by the retry. Whether the
    # kill landed mid-training (the retry trains again) or just after the work committed (the retry
    # keeps that model instead of skipping it as "no new labels"), the gate judges the model.
    # The run's own row closes from Airflow's record (the web app's reconciler), after its steps.
    wait_for(
        "the run's row to close",
        lambda: platform.sql("SELECT status FROM jobs WHERE run_id = :r AND kind = 'run'", r=run_id)[0][0] != "running",
        timeout=120,
        every=1,
    )
    jobs = platform.sql("SELECT step, status FROM jobs WHERE run_id = :r ORDER BY id", r=run_id)
    attempts = platform.sql(
        "SELECT j.step, a.try_number, a.state, a.message FROM job_attempts a JOIN jobs j ON j.id = a.job_id "
        "WHERE j.run_id = :r ORDER BY a.id",
        r=run_id,
    )
    expected = [("train_classifier", "success"), ("train_classifier", "success"), ("gate", "success")]  # run, steps
    assert [tuple(j) for j in jobs] == expected, (jobs, attempts)
    judged = platform.sql("SELECT status, gate FROM models WHERE experiment_id = :e", e=experiments[0][0])[0]
    assert judged[0] in ("promoted", "rejected") and judged[1].get("eval_size"), judged
    assert "restarted celery worker gpu" in platform.launcher_log()
