"""The loop's training decision: tune the encoder now, or train a head, and on which encoder."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from include.db.models import Dataset
from include.db.session import session_scope
from include.ml.embeddings.backends import torch_device
from include.services import retune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainChoice:
    retune: str | None  # why the encoder is tuned now; None: train a head
    encoder: str | None  # the serving tuned encoder a head trains on; None: the run's embedding model


def choose(db_url: str, dataset_id: int, retune_at: int | None) -> TrainChoice:
    """Read-only: what the loop's training step does for this dataset (include.services.retune).

    Runs on the training worker, so the automatic setting follows the device that would tune.
    """
    gpu = torch_device() == "cuda"
    with session_scope(db_url) as session:
        choice = TrainChoice(
            retune.due(session, dataset_id, retune_at, gpu=gpu), retune.serving_encoder(session, dataset_id)
        )
        if choice.retune is None:  # the task log says why not, and on which device it was decided
            dataset = session.get(Dataset, dataset_id)
            upcoming = retune.next_tune_at(session, dataset, gpu=gpu, retune_at=retune_at) if dataset else None
            log.info(
                "no encoder tune (%s worker; run setting %s, dataset setting %s): next at %s labeled tasks",
                "GPU" if gpu else "CPU-only",
                "the dataset's" if retune_at is None else retune_at,
                "automatic" if dataset is None or dataset.retune_at_labels is None else dataset.retune_at_labels,
                upcoming or "never",
            )
        return choice
