"""A running training in headless Chromium: its epochs join the page while you watch, and the
Stop button ends it with the partial experiment kept and no model registered."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from include.db.models import Experiment, ExperimentEpoch, ModelVersion
from include.db.session import session_scope
from include.ml.training.params import TrainParams
from include.pipelines.catalog import TrainValues
from include.pipelines.runner import RunRef
from include.pipelines.train_classifier import run_train_classifier
from tests.ml.test_eval_set import demo, label, make_dataset
from tests.webapp.conftest import log_in
from tests.webapp.test_browser_charts import live_url  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser]

ROWS = '[data-live="epoch-table"] tbody tr'


def _epochs(db: str, experiment_id: int) -> int:
    with session_scope(db) as s:
        return int(s.scalar(select(func.count()).where(ExperimentEpoch.experiment_id == experiment_id)) or 0)


def test_the_page_follows_a_running_training_and_stops_it(db, users, live_url, page, minilm, tmp_path) -> None:  # noqa: F811
    dataset_id = make_dataset(db, "live-run", demo(300, seed=21))
    label(db, dataset_id, 150)
    outcome: dict[str, Any] = {}
    # One example per step and a tiny learning rate: slow, steady epochs that never early-stop here.
    params = TrainParams(kind="mlp", epochs=1000, patience=100, batch_size=1, lr=1e-5)

    def train() -> None:
        outcome["result"] = run_train_classifier(
            db,
            RunRef("train_classifier", "live-1"),
            TrainValues(dataset_id=dataset_id, hyper=params, force=True),
            embedder=minilm,
        )

    worker = threading.Thread(target=train, daemon=True)
    worker.start()
    deadline = time.monotonic() + 120
    experiment_id = None
    while experiment_id is None or _epochs(db, experiment_id) < 2:
        assert time.monotonic() < deadline and worker.is_alive(), outcome
        time.sleep(0.5)
        with session_scope(db) as s:
            experiment_id = s.scalar(select(Experiment.id).where(Experiment.run_id == "live-1"))

    log_in(page, live_url, "admin")
    page.goto(f"{live_url}/admin/experiments/{experiment_id}")
    shown = page.locator(ROWS).count()
    assert page.inner_text("[data-live=status]") == "running"
    deadline = time.monotonic() + 30
    while page.locator(ROWS).count() <= shown:  # new epochs arrive without a reload
        assert time.monotonic() < deadline, "no new epoch reached the page"
        time.sleep(0.5)
    assert "epoch" in page.inner_text("[data-live=message]")

    page.click("[data-testid=stop-run]")
    page.wait_for_selector(".flash:has-text('stopped')")
    worker.join(timeout=60)
    assert not worker.is_alive()
    result = outcome["result"]
    assert result["skipped"] and "stopped by an admin" in result["reason"]
    epochs = _epochs(db, experiment_id)
    with session_scope(db) as s:
        assert s.get_one(Experiment, experiment_id).status == "stopped"
        assert s.scalar(select(func.count()).where(ModelVersion.experiment_id == experiment_id)) == 0
    assert 2 <= epochs < 1000
    page.goto(f"{live_url}/admin/experiments/{experiment_id}")
    assert page.inner_text("[data-live=status]") == "stopped"
    assert page.locator(ROWS).count() == epochs  # the partial run stays on its page
    assert page.query_selector("[data-testid=stop-run]") is None
