"""The model, experiment, comparison and dataset pages in headless Chromium: every chart has
drawn marks (not an empty picture), and screenshots are kept for people to look at."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from include.db.models import Experiment, ModelVersion, User
from include.db.session import session_scope
from include.ml.gate import GatePolicy
from include.ml.training.params import TrainParams
from include.pipelines.catalog import GateValues, TrainValues
from include.pipelines.runner import RunRef
from include.pipelines.train_classifier import run_train_classifier
from include.pipelines.training.gate import run_gate
from include.services.assignment import auto_assign
from include.services.labeling import submit_label
from tests.ml.test_eval_set import demo, label, make_dataset
from tests.webapp.conftest import log_in, make_app

pytestmark = [pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / ".labelops" / "test-screenshots"


@pytest.fixture
def live_url(db, users) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, make_app(db), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _marks(svg: str) -> int:
    """Drawn marks in a matplotlib SVG: paths and uses (markers, bars, lines, cells)."""
    return len(re.findall(r"<(?:path|use)\b", svg))


def _check_charts(page, base: str, path: str, shot: str, minimum_marks: int = 8) -> list[str]:
    page.goto(f"{base}{path}")
    images = page.query_selector_all("img[data-chart]")
    assert images, f"no charts on {path}"
    names = []
    for img in images:
        img.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img)
        src = img.get_attribute("src")
        response = page.request.get(f"{base}{src}")
        assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")
        svg = response.text()
        assert _marks(svg) >= minimum_marks, (src, _marks(svg))
        names.append(img.get_attribute("data-chart"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / shot), full_page=True)
    assert (SHOTS / shot).stat().st_size > 10_000
    return names


def test_model_experiment_comparison_and_dataset_pages_draw_their_charts(
    db, users, live_url, page, minilm, tmp_path
) -> None:
    dataset_id = make_dataset(db, "charts", demo(400, seed=12))
    label(db, dataset_id, 120)
    runs = []
    for kind in ("logistic", "mlp"):
        trained = run_train_classifier(
            db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams(kind=kind), force=True), embedder=minilm
        )
        run_gate(
            db, RunRef(), GateValues(dataset_id=dataset_id, policy=GatePolicy(min_f1=0.3)), model_id=trained["model_id"]
        )
        runs.append(trained)
    with session_scope(db) as s:
        model_id = s.scalar(select(ModelVersion.id).where(ModelVersion.version == runs[1]["version"]))
        experiments = s.scalars(select(Experiment.id).order_by(Experiment.id)).all()
        alice = s.get_one(User, users["alice"])
        for task_id in auto_assign(s, dataset_id, alice, 12):  # an annotator's labels for the daily chart
            submit_label(s, task_id, alice, "OK")

    log_in(page, live_url, "admin")
    drawn = _check_charts(page, live_url, f"/admin/models/{model_id}", "model.png")
    assert drawn == ["confusion", "pr", "roc", "reliability", "histogram"]
    assert page.inner_text("[data-testid=gate]").count("[") >= 1  # the interval is shown
    assert page.query_selector_all("[data-testid=per-label] tbody tr").__len__() == 2
    assert _check_charts(page, live_url, f"/admin/experiments/{experiments[0]}", "experiment.png") == ["training"]
    page.goto(f"{live_url}/admin/models")
    for box in page.query_selector_all("input[name=ids]")[:2]:
        box.check()
    page.click("button:has-text('Compare ticked experiments')")
    page.wait_for_url("**/experiments/compare**")
    assert "kind" in page.inner_text("[data-testid=differences] .differs")
    assert _check_charts(page, live_url, page.url.replace(live_url, ""), "compare.png") == ["comparison"]
    chart = page.request.get(live_url + page.get_attribute("img[data-chart=comparison]", "src")).text()
    assert "C (inverse L2 strength)" in chart and "epoch (encoder runs" in chart  # each run on its own axis
    names = _check_charts(page, live_url, f"/admin/datasets/{dataset_id}", "dataset.png", minimum_marks=3)
    assert names == ["learning", "labels", "daily"]
    page.click("[data-testid=dataset-tabs] >> text=Models")
    assert page.inner_text("[data-testid=eval-size]").endswith("items")
