"""The promoted model as a Label Studio ML backend, against the real Label Studio: connected to the
project the import creates, Label Studio asks /predict and stores the head's label, score and
version, texts embedded after training included; basic auth holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
import requests
from sqlalchemy import select

from include.db.models import Dataset, Item, Task
from include.db.session import session_scope
from include.demo.texts import generate_demo_texts
from include.labelstudio.label_config import label_of
from include.ml.gate import GatePolicy
from include.ml.training.params import TrainParams
from include.pipelines.catalog import GateValues, ImportValues, TrainValues
from include.pipelines.ls_import import run_ls_import
from include.pipelines.runner import RunRef
from include.pipelines.train_classifier import run_train_classifier
from include.pipelines.training.gate import run_gate
from include.services.datasets import add_items, create_dataset
from include.services.ls_projects import MlBackendRef
from include.services.privacy import SYNTHETIC
from include.services.registry import load_head, promoted_model
from tests.ml.test_eval_set import label
from tests.webapp.conftest import make_app

pytestmark = pytest.mark.labelstudio

AUTH = ("labelstudio", "ml-backend-pass")


@pytest.fixture
def backend_url(db) -> Iterator[str]:
    from werkzeug.serving import make_server

    app = make_app(db, ML_BACKEND_USER=AUTH[0], ML_BACKEND_PASSWORD=AUTH[1])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/ml"
    server.shutdown()


def test_label_studio_shows_the_promoted_models_predictions(db, ls, minilm, backend_url) -> None:
    texts = generate_demo_texts(170, seed=41)
    with session_scope(db) as s:
        dataset = create_dataset(s, "ml-backend", labels=["OK", "NG"], privacy=SYNTHETIC)
        dataset.eval_labels = "any"  # single labels judge the model here (what counts: test_review.py)
        add_items(s, dataset, [(t.text, {"truth": t.true_label}) for t in texts[:160]])
        dataset_id = dataset.id
    client = ls.client()
    backend = MlBackendRef(backend_url, *AUTH)
    result = run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id), ml_backend=backend)
    (imported,) = result["datasets"]
    assert imported["ml_problem"] is None
    project_id = imported["ls_project_id"]
    connected = client.request("GET", "/api/ml", params={"project": project_id})
    assert [b["url"] for b in connected] == [backend_url]
    # As if the run had died after creating the project and before connecting it: the next
    # import connects it (once, however many imports follow).
    client.request("DELETE", f"/api/ml/{connected[0]['id']}", project_id=project_id)

    label(db, dataset_id, 120)
    trained = run_train_classifier(
        db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams()), embedder=minilm
    )
    assert run_gate(
        db, RunRef(), GateValues(dataset_id=dataset_id, policy=GatePolicy(min_f1=0.3)), model_id=trained["model_id"]
    )["promoted"]
    # Ten texts arrive after training: never embedded, so /predict embeds them on the fly.
    with session_scope(db) as s:
        add_items(s, s.get_one(Dataset, dataset_id), [(t.text, {}) for t in texts[160:]])
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id), ml_backend=backend)
    run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id), ml_backend=backend)
    reconnected = client.request("GET", "/api/ml", params={"project": project_id})
    assert [b["url"] for b in reconnected] == [backend_url]

    client.request(
        "POST",
        "/api/dm/actions",
        params={"id": "retrieve_tasks_predictions", "project": project_id},
        json_body={"selectedItems": {"all": True, "excluded": []}},
    )
    with session_scope(db) as s:
        head = load_head(s, promoted_model(s, dataset_id).id)
        rows = s.execute(
            select(Task.ls_task_id, Item.text).join(Item, Item.id == Task.item_id).where(Task.dataset_id == dataset_id)
        ).all()
    expected = head.predict_proba(minilm.embed([text for _, text in rows]))
    deadline = time.monotonic() + 60
    checked = 0
    for (ls_id, _), probs in zip(rows, expected, strict=True):
        while True:
            predictions = client.request("GET", f"/api/tasks/{ls_id}").get("predictions") or []
            ours = [p for p in predictions if p.get("model_version") == trained["version"]]
            if ours or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(ours) == 1, (ls_id, predictions)
        best = int(np.argmax(probs))
        assert label_of(ours[0]["result"]) == head.labels[best]
        assert ours[0]["score"] == pytest.approx(float(probs[best]), abs=1e-4)
        checked += 1
    assert checked == 170

    metrics = dict(
        line.split(" ", 1)
        for line in requests.get(f"{backend_url}/metrics", auth=AUTH, timeout=10).text.splitlines()
        if line and not line.startswith("#")
    )
    assert float(metrics["labelops_ml_predicted_tasks_total"]) >= 170
    assert float(metrics["labelops_ml_embedded_on_the_fly_total"]) >= 10  # the texts added after training


def test_the_backend_contract_and_its_basic_auth(db, backend_url) -> None:
    with session_scope(db) as s:
        dataset = create_dataset(s, "ml-contract", labels=["OK", "NG"], privacy=SYNTHETIC)
        dataset.ls_project_id = 424242
    assert requests.get(f"{backend_url}/health", timeout=10).status_code == 401
    assert requests.post(f"{backend_url}/predict", json={"tasks": []}, auth=("x", "y"), timeout=10).status_code == 401
    assert requests.get(f"{backend_url}/health", auth=AUTH, timeout=10).json()["status"] == "UP"
    setup = requests.post(f"{backend_url}/setup", json={"project": "424242.1790000000"}, auth=AUTH, timeout=10)
    assert setup.json() == {"model_version": "none"}  # nothing promoted yet
    empty = requests.post(
        f"{backend_url}/predict",
        json={"tasks": [{"id": 1, "data": {"text": "hello"}}], "project": "424242.1"},
        auth=AUTH,
        timeout=10,
    ).json()
    assert empty["results"] == [{"result": [], "score": 0.0}]
    unknown = requests.post(f"{backend_url}/setup", json={"project": "99.1"}, auth=AUTH, timeout=10)
    assert unknown.status_code == 400 and "project" in unknown.json()["error"]
    hook = requests.post(f"{backend_url}/webhook", json={"action": "ANNOTATION_CREATED"}, auth=AUTH, timeout=10)
    assert hook.json() == {"status": "ok", "action": "ANNOTATION_CREATED"}
