"""Progress records of a training run: committed one by one so the experiment page draws them
while it trains, and the place where an admin's stop takes effect.

One recorder serves a head's epochs (or a logistic head's regularisation path) and an encoder's
steps: each kind of record is turned into a :class:`Progress` by a small function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from include.db.session import session_scope
from include.ml.training.finetune import FinetuneStep
from include.ml.training.train import EpochRecord
from include.pipelines.runner import JobHandle, SkipStep
from include.services.experiments import fail_experiment, is_stopped, record_epoch

R = TypeVar("R")


class TrainingStopped(Exception):
    """An admin stopped the experiment; raised from the progress callback to end training there."""


@dataclass(frozen=True)
class Progress:
    """One record as the experiment page shows it, and the job's progress line (None: not now)."""

    epoch: int
    train_loss: float
    val_loss: float
    metrics: dict[str, Any]
    line: str | None = None
    counts: dict[str, Any] = field(default_factory=dict)


class ProgressRecorder(Generic[R]):
    """Commits each record as an experiment "epoch" row, reports progress, and ends training
    (raising :class:`TrainingStopped`) when an admin has stopped the experiment."""

    def __init__(self, db_url: str, experiment_id: int, job: JobHandle, convert: Callable[[R, int], Progress]) -> None:
        self.db_url, self.experiment_id, self.job, self.convert = db_url, experiment_id, job, convert
        self.n = 0

    def __call__(self, record: R) -> None:
        self.n += 1
        progress = self.convert(record, self.n)
        with session_scope(self.db_url) as session:
            record_epoch(
                session, self.experiment_id, progress.epoch, progress.train_loss, progress.val_loss, progress.metrics
            )
            stopped = is_stopped(session, self.experiment_id)
        if stopped:
            raise TrainingStopped(progress.epoch)
        if progress.line is not None:
            self.job.progress(progress.line, **progress.counts)


def head_progress(record: EpochRecord, n: int) -> Progress:
    """A head's epoch (or a point of a logistic head's regularisation path)."""
    line = None
    if record.epoch % 10 == 0 or record.epoch == 1:
        step = f"C={record.metrics['C']:.3g}" if "C" in record.metrics else f"epoch {record.epoch}"
        line = (
            f"{step}: train loss {record.train_loss:.4f}, val loss {record.val_loss:.4f}, "
            f"val F1 {record.metrics['f1']:.3f}"
        )
    metrics = {**record.metrics, "seconds": record.seconds}
    return Progress(record.epoch, record.train_loss, record.val_loss, metrics, line, {"epoch": record.epoch})


def encoder_progress(record: FinetuneStep, n: int) -> Progress:
    """An encoder's progress record every few steps (the n-th record is its "epoch" row)."""
    val = record.val_loss if np.isfinite(record.val_loss) else record.loss
    metrics = {"step": record.step, "steps": record.steps, "pair_epoch": record.epoch, "seconds": record.seconds}
    line = f"encoder step {record.step}/{record.steps}: pair loss {record.loss:.4f}, held-out pair loss {val:.4f}"
    return Progress(n, record.loss, val, metrics, line, {"done": record.step, "total": record.steps})


@contextmanager
def supervised(db_url: str, experiment_id: int, unit: str) -> Iterator[None]:
    """Around a training loop: an admin's stop ends the step as skipped (the experiment keeps its
    records, no model), any other failure marks the experiment failed and propagates."""
    try:
        yield
    except TrainingStopped as stop:
        raise SkipStep(
            f"stopped by an admin after {stop.args[0]} {unit}; experiment {experiment_id} keeps them, no model"
        ) from None
    except SkipStep:
        with session_scope(db_url) as session:
            fail_experiment(session, experiment_id)
        raise
    except Exception:
        with session_scope(db_url) as session:
            fail_experiment(session, experiment_id)
        raise
