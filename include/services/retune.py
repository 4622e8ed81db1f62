"""When the loop should fine-tune a dataset's encoder, and which encoder its heads train on.

On frozen embeddings the sentiment benchmark plateaus, and no batch strategy beats random there
(bench/active_learning.py); tuning the encoder once on the first labels lifts every later round
(bench/active_learning_retune.py). A dataset's loop therefore tunes when it first has
``retune_at_labels`` labeled tasks, and again each time that count doubles since the last tune
(the encoder then sees a representative share of the labels, while tuning, minutes even on a GPU,
stays rare). Between tunes, heads keep training on the serving tuned encoder's vectors, so new
labels still improve the serving model instead of feeding frozen heads that cannot beat it.

A dataset with no setting of its own tunes at ``AUTO_RETUNE_AT`` labeled tasks where its training
runs on a GPU, and never on a CPU-only worker, where one takes 8 to 20 minutes of the loop
(bench/finetune.py, bench/active_learning_retune.py); 0 turns tuning off, a number sets the threshold on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from include.db.models import Dataset, EmbeddingModel, Task
from include.ml.embeddings.names import FINETUNED_PREFIX
from include.params import ParamSpec, Values, param
from include.services.registry import promoted_model

GROWTH = 2  # retune when the labeled tasks have doubled since the last tune
# bench/active_learning_retune.py on sentiment: tuning at 100 and 200 passes frozen random's target at
# 100 labels and reaches 0.912 macro F1 at 200 (above the frozen full-pool ceiling); at 120, 0.902.
AUTO_RETUNE_AT = 100
MIN_RETUNE_AT = 20  # fewer labels give too few pairs (and the evaluation set reserves some)
MAX_RETUNE_AT = 10_000_000


def labeled_tasks(session: Session, dataset_id: int) -> int:
    """Tasks of the dataset that carry a label (evaluation items included)."""
    stmt = select(func.count()).select_from(Task).where(Task.dataset_id == dataset_id, Task.label.is_not(None))
    return int(session.scalar(stmt) or 0)


def last_tuned(session: Session, dataset_id: int) -> EmbeddingModel | None:
    """The dataset's most recent fine-tuned encoder that finished (its weights are stored)."""
    stmt = (
        select(EmbeddingModel)
        .where(EmbeddingModel.dataset_id == dataset_id, EmbeddingModel.artifact_sha256.is_not(None))
        .order_by(EmbeddingModel.id.desc())
        .limit(1)
    )
    return session.scalar(stmt)


DATASET_RETUNE_AT = ParamSpec(
    "retune_at_labels", "Fine-tune the encoder at labeled tasks", "int", None, nullable=True,
    minimum=MIN_RETUNE_AT, maximum=MAX_RETUNE_AT, also=(0,), empty="automatic",
    help=f"and each time they double; empty: automatic ({AUTO_RETUNE_AT} where training runs on a GPU, never on "
    "a CPU-only worker); 0: never",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class RetuneSettings(Values):
    """When the loop fine-tunes the dataset's encoder instead of training a head."""

    retune_at_labels: int | None = param(DATASET_RETUNE_AT)


def apply_settings(session: Session, dataset: Dataset, settings: RetuneSettings) -> str:
    """Set when the dataset's encoder is tuned; returns the sentence that confirms it."""
    dataset.retune_at_labels = settings.retune_at_labels
    if settings.retune_at_labels is None:
        return (
            f"Automatic: the loop fine-tunes the encoder at {AUTO_RETUNE_AT} labeled tasks where training runs on "
            "a GPU, never on a CPU-only worker."
        )
    if settings.retune_at_labels == 0:
        return "The loop never fine-tunes this dataset's encoder."
    return f"The loop fine-tunes the encoder at {settings.retune_at_labels} labeled tasks and each time they double."


def set_threshold(dataset: Dataset, value: int | None) -> None:
    """Tune the dataset's encoder at ``value`` labeled tasks (and each doubling); 0: never; None:
    automatic. Raises ParamError (a ValueError) outside :data:`DATASET_RETUNE_AT`."""
    dataset.retune_at_labels = RetuneSettings(retune_at_labels=value).retune_at_labels


def setting(dataset: Dataset, *, gpu: bool) -> int:
    """The dataset's own threshold on a worker with (or without) a GPU; 0: never."""
    if dataset.retune_at_labels is None:
        return AUTO_RETUNE_AT if gpu else 0
    return int(dataset.retune_at_labels)


def _threshold(
    session: Session, dataset_id: int, retune_at: int | None, *, gpu: bool
) -> tuple[int, EmbeddingModel | None]:
    """The labeled-task count of the next tune (0: never) and the last tuned encoder: the
    setting, or twice the count the last encoder was tuned at if that is higher."""
    if retune_at is None:
        dataset = session.get(Dataset, dataset_id)
        retune_at = setting(dataset, gpu=gpu) if dataset is not None else 0
    if retune_at <= 0:
        return 0, None
    last = last_tuned(session, dataset_id)
    before = int(last.origin.get("labeled_tasks") or 0) if last is not None else 0
    return max(retune_at, GROWTH * before), last


def due(session: Session, dataset_id: int, retune_at: int | None = None, *, gpu: bool = False) -> str | None:
    """Why the encoder should be tuned now (a sentence for the job log), or None.

    ``retune_at``: the run's setting, as everywhere: None (empty) is the dataset's own
    (:func:`setting`), 0 is never. ``gpu``: whether this worker trains on a GPU, which turns the
    automatic setting on.
    """
    threshold, last = _threshold(session, dataset_id, retune_at, gpu=gpu)
    labeled = labeled_tasks(session, dataset_id) if threshold else 0
    if not threshold or labeled < threshold:
        return None
    if last is None:
        return f"{labeled} labeled tasks reached retune_at_labels={threshold} and no encoder is tuned yet"
    return f"{labeled} labeled tasks, {GROWTH}x the {last.origin.get('labeled_tasks')} that {last.name} was tuned at"


def next_tune_at(session: Session, dataset: Dataset, *, gpu: bool, retune_at: int | None = None) -> int | None:
    """At how many labeled tasks the loop tunes the dataset's encoder next (None: never);
    ``retune_at``: a run's own setting, as in :func:`due`."""
    return _threshold(session, dataset.id, retune_at, gpu=gpu)[0] or None


def serving_encoder(session: Session, dataset_id: int) -> str | None:
    """The fine-tuned encoder of the model serving the dataset, if that model is on one."""
    serving = promoted_model(session, dataset_id)
    if serving is None or serving.embedding_model_id is None:
        return None
    encoder = session.get(EmbeddingModel, serving.embedding_model_id)
    if encoder is None or encoder.dataset_id != dataset_id or not encoder.name.startswith(FINETUNED_PREFIX):
        return None
    return encoder.name
