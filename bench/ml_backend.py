"""The ML backend's ``POST /ml/predict`` for a batch of 100 tasks, over HTTP (real werkzeug
server, real PostgreSQL), against embedding the same texts plus the head's forward pass alone.

Two cases: 100 texts whose embeddings are stored (read from pgvector) and 100 new texts
(embedded on the fly with the head's embedding model, as for tasks created after training).
Each request is timed 20 times (new texts: a fresh 100 each time). Reported: p50/p95 latency and
the ratio of the backend's median to the bare median (embedding + forward for new texts;
forward alone over vectors already in memory for stored ones).
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

from bench._env import postgres, save, summary
from include.ml.gate import GatePolicy
from include.pipelines.catalog import GateValues, TrainValues
from include.services.privacy import SYNTHETIC

BATCH, ROUNDS = 100, 20


def main() -> None:
    import requests
    from werkzeug.serving import make_server

    from include.db.session import session_scope
    from include.demo.texts import generate_demo_texts
    from include.ml.embeddings.backends import SentenceTransformerEmbedder
    from include.ml.training.params import TrainParams
    from include.pipelines.runner import RunRef
    from include.pipelines.train_classifier import run_train_classifier
    from include.pipelines.training.embedding import embed_dataset
    from include.pipelines.training.gate import run_gate
    from include.services.datasets import add_items, create_dataset
    from include.services.registry import load_head, promoted_model
    from webapp import create_app

    texts = [t for t in generate_demo_texts(400 + BATCH * (ROUNDS + 1), seed=77)]
    known, fresh = texts[:400], texts[400:]
    embedder = SentenceTransformerEmbedder()
    with postgres("ml_backend") as db:
        with session_scope(db) as s:
            dataset = create_dataset(s, "ml-bench", labels=["OK", "NG"], privacy=SYNTHETIC)
            add_items(s, dataset, [(t.text, {"truth": t.true_label}) for t in known])
            dataset.ls_project_id, dataset_id = 7, dataset.id
        _tasks(db, dataset_id)
        embed_dataset(db, embedder, dataset_id)
        _label(db, dataset_id, 300)
        trained = run_train_classifier(
            db, RunRef(), TrainValues(dataset_id=dataset_id, hyper=TrainParams()), embedder=embedder
        )
        run_gate(
            db, RunRef(), GateValues(dataset_id=dataset_id, policy=GatePolicy(min_f1=0.3)), model_id=trained["model_id"]
        )
        with session_scope(db) as s:
            head = load_head(s, promoted_model(s, dataset_id).id)
        app = create_app(
            {
                "SECRET_KEY": "bench-secret-key-0123456789",
                "SQLALCHEMY_DATABASE_URI": db,
                "LS_URL": None,
                "LS_API_TOKEN": None,
                "AIRFLOW_API_URL": "http://127.0.0.1:9",
                "AIRFLOW_API_USER": "webapp",
                "AIRFLOW_API_PASSWORD": "unused",
                "OUTBOX_DISPATCHER": False,
            }
        )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/ml/predict"
        session = requests.Session()

        def call(batch: list[str]) -> float:
            body = {"project": "7.1", "tasks": [{"id": i, "data": {"text": t}} for i, t in enumerate(batch)]}
            started = time.perf_counter()
            response = session.post(url, json=body, timeout=120)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200 and len(response.json()["results"]) == len(batch), response.text
            return elapsed * 1000

        stored = [t.text for t in known[:BATCH]]
        call(stored)  # warm-up: loads the head and the embedder once
        call([t.text for t in fresh[:BATCH]])
        stored_ms = [call(stored) for _ in range(ROUNDS)]
        new_ms = [call([t.text for t in fresh[BATCH * (r + 1) : BATCH * (r + 2)]]) for r in range(ROUNDS)]
        vectors = embedder.embed(stored)
        forward_ms, bare_new_ms = [], []
        for r in range(ROUNDS):
            started = time.perf_counter()
            head.predict_proba(vectors, device="cpu")
            forward_ms.append((time.perf_counter() - started) * 1000)
            batch = [t.text for t in fresh[BATCH * (r + 1) : BATCH * (r + 2)]]
            started = time.perf_counter()
            head.predict_proba(embedder.embed(batch), device="cpu")
            bare_new_ms.append((time.perf_counter() - started) * 1000)
        server.shutdown()
    result: dict[str, Any] = {
        "tasks_per_request": BATCH,
        "rounds": ROUNDS,
        "new_texts": {
            "predict_ms": summary(new_ms),
            "embed_plus_forward_ms": summary(bare_new_ms),
            "ratio_median": statistics.median(new_ms) / statistics.median(bare_new_ms),
        },
        "stored_texts": {
            "predict_ms": summary(stored_ms),
            "forward_only_ms": summary(forward_ms),
            "overhead_median_ms": statistics.median(stored_ms) - statistics.median(forward_ms),
        },
    }
    save("ml_backend", result)


def _label(db: str, dataset_id: int, n: int) -> None:
    """The first ``n`` tasks labeled with their true label, as an export would record them."""
    from sqlalchemy import text

    from include.db.session import session_scope

    with session_scope(db) as s:
        s.execute(
            text(
                "UPDATE tasks t SET status = 'labeled', label = i.source->>'truth' FROM items i "
                "WHERE i.id = t.item_id AND t.id IN (SELECT id FROM tasks WHERE dataset_id = :d ORDER BY id LIMIT :n)"
            ),
            {"d": dataset_id, "n": n},
        )


def _tasks(db: str, dataset_id: int) -> None:
    """Shadow tasks with made-up Label Studio ids (the bench needs no Label Studio)."""
    from sqlalchemy import select

    from include.db.models import Item, Task, TaskStatus
    from include.db.session import session_scope

    with session_scope(db) as s:
        items = s.scalars(select(Item.id).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        s.add_all(
            Task(dataset_id=dataset_id, item_id=i, ls_project_id=7, ls_task_id=10_000 + k, status=TaskStatus.IMPORTED)
            for k, i in enumerate(items)
        )


if __name__ == "__main__":
    main()
