"""When a dataset's new labels are worth a quick retrain of that dataset alone (the live loop).

A dataset with ``retrain_after_labels = N`` is due once N tasks got a label since the later of
its last experiment and the last time the loop was started for it. Counting from the last start
too means a loop that trains nothing (too few labels, a quality block) is not started again on
every export until N more labels arrive.

The signal is committed before Airflow records the ``labels_ready`` event, so it must not be
trusted blindly: a retry of the same export run (the first try died in between) ignores its own
signal, and a signal no loop picked up within ``SIGNAL_LEASE`` counts as lost, so the next
export sends it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from include.db.models import Dataset, Experiment, LsWebhook, Task
from include.params import ParamError, ParamSpec, Values, group, param
from include.services import retune


@dataclass(frozen=True)
class Due:
    dataset_id: int
    new_labels: int
    threshold: int


SIGNAL_LEASE = timedelta(minutes=30)


def _standing_signal(dataset: Dataset, run_id: str | None, now: datetime) -> datetime | None:
    """When the loop was last signalled for the dataset, unless that signal may have been lost."""
    signal = dataset.live_loop_signalled_at
    if signal is None:
        return None
    if run_id is not None and dataset.live_loop_signal_run == run_id:
        return None  # this export run's own signal: a retry after a crash, its event may not exist
    picked_up = dataset.live_loop_started_at is not None and dataset.live_loop_started_at >= signal
    return signal if picked_up or now - signal < SIGNAL_LEASE else None


def new_labels(session: Session, dataset: Dataset, run_id: str | None = None) -> int:
    """Tasks of the dataset labeled since its last experiment or live-loop start (or signal)."""
    last_experiment = session.scalar(select(func.max(Experiment.started_at)).where(Experiment.dataset_id == dataset.id))
    marks = (last_experiment, dataset.live_loop_started_at, _standing_signal(dataset, run_id, datetime.now(UTC)))
    since = max((t for t in marks if t is not None), default=None)
    stmt = select(func.count()).select_from(Task).where(Task.dataset_id == dataset.id, Task.label.is_not(None))
    if since is not None:
        stmt = stmt.where(Task.labeled_at > since)
    return int(session.scalar(stmt) or 0)


# The advisory-lock key under which one process at a time decides and marks the signal.
_SIGNAL_LOCK = 0x4C4F4F50  # "LOOP"


def decide_alone(session: Session) -> bool:
    """Take the transaction-scoped lock for deciding the live loop; False when another process
    (the web app's signaller, or an export's ``live_loop_due``) is deciding right now."""
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _SIGNAL_LOCK}))


def live_datasets(session: Session) -> list[int]:
    """Datasets with the live loop on."""
    return list(session.scalars(select(Dataset.id).where(Dataset.retrain_after_labels.is_not(None))))


def due(session: Session, dataset_ids: list[int], run_id: str | None = None) -> list[Due]:
    """Which of these datasets the live loop should retrain now (``run_id``: the asking export run)."""
    found = []
    datasets = session.scalars(
        select(Dataset)
        .where(Dataset.id.in_(dataset_ids), Dataset.retrain_after_labels.is_not(None))
        .order_by(Dataset.id)
    )
    for dataset in datasets:
        threshold = int(dataset.retrain_after_labels or 0)
        count = new_labels(session, dataset, run_id)
        if threshold > 0 and count >= threshold:
            found.append(Due(dataset.id, count, threshold))
    return found


def mark_started(session: Session, dataset_ids: list[int], run_id: str | None = None) -> None:
    """The loop is signalled for these datasets (by export run ``run_id``): count new labels from now."""
    now = datetime.now(UTC)
    for dataset in session.scalars(select(Dataset).where(Dataset.id.in_(dataset_ids))):
        dataset.live_loop_signalled_at, dataset.live_loop_signal_run = now, run_id


def mark_picked_up(session: Session, dataset_ids: list[int]) -> None:
    """A loop run has started on these datasets: their signal arrived."""
    now = datetime.now(UTC)
    for dataset in session.scalars(select(Dataset).where(Dataset.id.in_(dataset_ids))):
        dataset.live_loop_started_at = now


MAX_RETRAIN_AFTER = 1_000_000


RETRAIN_AFTER = ParamSpec(
    "retrain_after_labels", "Retrain after new labels", "int", None, nullable=True, minimum=1,
    maximum=MAX_RETRAIN_AFTER, empty="off",
    help="the loop runs for this dataset once this many new labels arrive; empty: off (the dataset retrains nightly)",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LiveLoopSettings(Values):
    """After how many new labels the dataset runs the loop on its own."""

    retrain_after_labels: int | None = param(RETRAIN_AFTER)


@dataclass(frozen=True, kw_only=True)
class LiveLoopUpdate(Values):
    """The live-loop resource of the API: the retrain threshold and the encoder's retune."""

    loop: LiveLoopSettings = group(LiveLoopSettings)
    tune: retune.RetuneSettings = group(retune.RetuneSettings)


def apply_settings(session: Session, dataset: Dataset, settings: LiveLoopSettings) -> str:
    """Set the live loop's threshold; returns the sentence that confirms it."""
    dataset.retrain_after_labels = settings.retrain_after_labels
    if settings.retrain_after_labels is None:
        return "The live loop is off for this dataset: it retrains nightly."
    return f"The dataset retrains as soon as {settings.retrain_after_labels} new labels arrive."


def apply_update(session: Session, dataset: Dataset, update: LiveLoopUpdate) -> None:
    apply_settings(session, dataset, update.loop)
    retune.apply_settings(session, dataset, update.tune)


def set_threshold(dataset: Dataset, value: int | None) -> None:
    """Retrain after ``value`` new labels; None turns the live loop off for the dataset.

    Raises:
        ParamError: not a whole number between 1 and 1,000,000 (the message says so).
    """
    if isinstance(value, bool):
        raise ParamError("retrain_after_labels must be a whole number")
    dataset.retrain_after_labels = LiveLoopSettings(retrain_after_labels=value).retrain_after_labels


def status(session: Session, dataset: Dataset) -> dict[str, Any]:
    """What the dataset page and API show about the live loop."""
    last = session.execute(
        select(func.max(LsWebhook.received_at), func.count().filter(LsWebhook.signalled_at.is_(None))).where(
            LsWebhook.dataset_id == dataset.id
        )
    ).one()
    return {
        "retrain_after_labels": dataset.retrain_after_labels,
        "retune_at_labels": dataset.retune_at_labels,  # include.services.retune; None: automatic
        "retune_mode": {None: "auto", 0: "never"}.get(dataset.retune_at_labels, "set"),
        # automatic: the count where training runs on a GPU (CPU-only workers never tune)
        "next_retune_at_labels": retune.next_tune_at(session, dataset, gpu=True),
        "labeled_tasks": retune.labeled_tasks(session, dataset.id),
        "new_labels": new_labels(session, dataset),
        "last_webhook_at": last[0],
        "webhooks_waiting": int(last[1] or 0),
        "last_started_at": dataset.live_loop_started_at or dataset.live_loop_signalled_at,
    }
