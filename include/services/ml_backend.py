"""The promoted model as Label Studio sees it: predictions for tasks of a project the platform owns.

Label Studio's ML-backend contract (label-studio-ml-backend): ``/setup`` names the model version,
``/predict`` answers ``{"results": [{"result": [...], "score": p, "model_version": v}, ...]}``,
one per task in order. The model is the promoted head of the dataset that owns the project; texts
already embedded are read from pgvector, new ones are embedded on the fly with the head's
embedding model. Heads and embedders are kept per process (a new promotion is picked up by its
model id).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Dataset
from include.errors import NotFound
from include.labelstudio.label_config import choice_result
from include.services.datasets import text_hash
from include.services.registry import load_head, promoted_model
from include.services.vectors import get_model, load_vectors

TEXT_KEY = "text"
_HEADS: dict[int, Any] = {}
_EMBEDDERS: dict[str, Any] = {}
_LOCK = threading.Lock()


class UnknownProject(NotFound):
    """No dataset of the platform owns this Label Studio project."""


def project_id(raw: Any) -> int | None:
    """Label Studio sends ``"<project id>.<timestamp>"`` (or a bare id)."""
    try:
        return int(str(raw).split(".", 1)[0])
    except ValueError:
        return None


def dataset_for_project(session: Session, raw_project: Any) -> Dataset:
    pid = project_id(raw_project)
    dataset = session.scalar(select(Dataset).where(Dataset.ls_project_id == pid)) if pid is not None else None
    if dataset is None:
        raise UnknownProject(f"no dataset of the platform owns Label Studio project {raw_project!r}")
    return dataset


def model_version(session: Session, dataset: Dataset) -> str | None:
    promoted = promoted_model(session, dataset.id)
    return promoted.version if promoted else None


@dataclass(frozen=True)
class Predictions:
    model_version: str | None
    results: list[dict[str, Any]]
    embedded_now: int  # texts that had no stored embedding and were embedded for this request


def _head(session: Session, model_id: int) -> Any:
    with _LOCK:
        head = _HEADS.get(model_id)
    if head is None:
        head = load_head(session, model_id)
        with _LOCK:
            _HEADS[model_id] = head
    return head


def _embedder(session: Session, name: str) -> Any:
    from include.services.embedding_models import embedder_for, session_url

    with _LOCK:
        if name not in _EMBEDDERS:
            _EMBEDDERS[name] = embedder_for(name, session_url(session))
        return _EMBEDDERS[name]


def _not_yet_private(session: Session, dataset: Dataset) -> bool:
    from include.db.models import Task
    from include.services.pii import pending_count

    if dataset.pii_policy_id is None:
        return dataset.pii_exempt_reason is None  # no decision: nothing is read
    stale = session.scalar(select(Task.id).where(Task.dataset_id == dataset.id, Task.ls_data_stale).limit(1))
    return stale is not None or pending_count(session, dataset.id) > 0


def predict(session: Session, dataset: Dataset, tasks: list[dict[str, Any]]) -> Predictions:
    """One result per task, in order; an empty result where a task has no text or there is no model.

    None while the dataset's texts are not all de-identified, or Label Studio still holds texts
    from before (a policy attached after import, until the next import rewrites them): what
    Label Studio sends could be originals, and would be embedded and stored as vectors here."""
    promoted = promoted_model(session, dataset.id)
    if promoted is None or _not_yet_private(session, dataset):
        return Predictions(None, [{"result": [], "score": 0.0} for _ in tasks], 0)
    head = _head(session, promoted.id)
    texts = [str(((t or {}).get("data") or {}).get(TEXT_KEY) or "") for t in tasks]
    hashes = [text_hash(text) for text in texts]
    embedding_model = get_model(session, head.embedding_model)
    stored = load_vectors(session, embedding_model.id, hashes) if embedding_model is not None else {}
    missing = [i for i, h in enumerate(hashes) if h not in stored and texts[i]]
    vectors: dict[int, np.ndarray] = {i: stored[h] for i, h in enumerate(hashes) if h in stored}
    if missing:
        fresh = _embedder(session, head.embedding_model).embed([texts[i] for i in missing])
        vectors.update({i: fresh[k] for k, i in enumerate(missing)})
    order = sorted(vectors)
    probs = head.predict_proba(np.stack([vectors[i] for i in order]), device="cpu") if order else np.zeros((0, 0))
    by_task = {i: probs[k] for k, i in enumerate(order)}
    results = []
    for i in range(len(tasks)):
        row = by_task.get(i)
        if row is None:
            results.append({"result": [], "score": 0.0, "model_version": promoted.version})
            continue
        best = int(np.argmax(row))
        results.append(
            {"result": choice_result(head.labels[best]), "score": float(row[best]), "model_version": promoted.version}
        )
    return Predictions(promoted.version, results, len(missing))
