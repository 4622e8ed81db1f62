"""Train a classifier head: logistic (exact fit, cross-validated) or an MLP (epochs, early stopping).

The MLP runs on CUDA when available (GPU workers), on the CPU otherwise. Data for a head is small
(labeled items x embedding size), so it lives on the device for the whole run.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from include.ml.calibration import fit_temperature
from include.ml.training.logistic import TooFewExamples, fit_logistic
from include.ml.training.metrics import classification_metrics
from include.ml.training.model import HeadConfig, TrainedHead, build_head, softmax
from include.ml.training.params import DEFAULT_LR, TrainParams

log = logging.getLogger(__name__)
MIN_EPOCHS = 10  # early stopping never ends an MLP run before this: a noisy first epoch is not a plateau


class TrainingDataError(ValueError):
    """Not enough (or unusable) labeled data; the message says what is missing."""


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    metrics: dict[str, float]
    seconds: float


@dataclass
class TrainResult:
    head: TrainedHead
    metrics: dict[str, float]
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    device: str = "cpu"
    train_idx: np.ndarray | None = None
    val_idx: np.ndarray | None = None


def stratified_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation indices with every class in both (fixed seed: reproducible).

    Written out rather than scikit-learn's ``train_test_split(stratify=...)``, which rounds a rare
    class's share of a small split to zero: 18 + 2 labels at 20 % gave a validation set of two
    majority examples, so early stopping watched a one-class loss.
    """
    counts = np.bincount(y)
    present = np.flatnonzero(counts)
    if len(present) < 2:
        raise TrainingDataError("training needs labeled examples of at least two classes")
    if counts[present].min() < 2:
        raise TrainingDataError("every class needs at least 2 labeled examples to be split for validation")
    rng = np.random.default_rng(seed)
    val: list[np.ndarray] = []
    for label in present:
        members = np.flatnonzero(y == label)
        take = int(min(max(1, round(len(members) * val_fraction)), len(members) - 1))
        val.append(rng.choice(members, take, replace=False))
    val_idx = np.sort(np.concatenate(val))
    train_idx = np.setdiff1d(np.arange(len(y)), val_idx)
    return train_idx, val_idx


def class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights (n / (k * count)), so a rare class counts as much as a common one."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    weights = np.where(counts > 0, len(y) / (num_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    embedding_model: str,
    params: TrainParams,
    *,
    device: str | None = None,
    on_epoch: Callable[[EpochRecord], Any] | None = None,
    sample_weight: np.ndarray | None = None,
) -> TrainResult:
    """Train on ``x`` (n, d) / ``y`` (n,) and return the head with its validation metrics.

    ``logistic`` (the default) is fitted exactly and judged by cross-validation; ``mlp`` trains by
    epochs with early stopping on a stratified split that holds every class. ``sample_weight``
    (each label's reliability) is taken by the logistic head; the MLP refuses it rather than
    train as if it had been applied.
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if len(np.unique(y)) < 2:
        raise TrainingDataError("training needs labeled examples of at least two classes")
    if params.kind == "logistic":
        return _train_logistic(x, y, labels, embedding_model, params, on_epoch, sample_weight)
    if sample_weight is not None:
        raise TrainingDataError("label weights need the logistic head (the MLP trains every label alike)")
    return _train_mlp(x, y, labels, embedding_model, params, device=device, on_epoch=on_epoch)


def _train_logistic(
    x: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    embedding_model: str,
    params: TrainParams,
    on_epoch: Callable[[EpochRecord], Any] | None,
    sample_weight: np.ndarray | None = None,
) -> TrainResult:
    """The regularisation path is the run's record: one row per setting tried, the chosen one starred."""
    import torch

    try:
        fit = fit_logistic(x, y, len(labels), seed=params.seed, c=params.c, sample_weight=sample_weight)
    except TooFewExamples as exc:
        raise TrainingDataError(str(exc)) from exc
    history = []
    for step, point in enumerate(fit.path, start=1):
        record = EpochRecord(
            step,
            point.train_loss,
            point.cv_loss,
            {"f1": point.cv_f1, "C": point.c, "balanced": float(point.class_weight == "balanced")},
            point.seconds,
        )
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    config = HeadConfig("logistic", x.shape[1], len(labels), params.hidden_dim, params.dropout)
    module = build_head(config)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(fit.weight.astype(np.float32)))
        module.bias.copy_(torch.from_numpy(fit.bias.astype(np.float32)))
    module.eval()
    head = TrainedHead(config=config, labels=list(labels), embedding_model=embedding_model, module=module)
    y_oof = y[fit.oof_index]
    uncalibrated = classification_metrics(softmax(fit.oof_logits), y_oof)
    head.temperature = fit_temperature(fit.oof_logits, y_oof)
    metrics = classification_metrics(softmax(fit.oof_logits / head.temperature), y_oof)
    metrics.update(
        val_loss=fit.path[fit.best].cv_loss,
        ece_before_calibration=uncalibrated["ece"],
        temperature=head.temperature,
        C=fit.c,
        cv_folds=float(fit.folds),
        balanced=float(fit.class_weight == "balanced"),
    )
    # Every label trains the final head; the validation figures are out-of-fold predictions.
    return TrainResult(
        head=head,
        metrics=metrics,
        history=history,
        best_epoch=fit.best + 1,
        device="cpu",
        train_idx=np.arange(len(y)),
        val_idx=np.arange(0),
    )


def _train_mlp(
    x: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    embedding_model: str,
    params: TrainParams,
    *,
    device: str | None,
    on_epoch: Callable[[EpochRecord], Any] | None,
) -> TrainResult:
    import torch
    from torch import nn

    num_classes = len(labels)
    train_idx, val_idx = stratified_split(y, params.val_fraction, params.seed)
    x_tr, y_tr, x_va, y_va = x[train_idx], y[train_idx], x[val_idx], y[val_idx]

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(params.seed)
    generator = torch.Generator(device="cpu").manual_seed(params.seed)
    config = HeadConfig(params.kind, x.shape[1], num_classes, params.hidden_dim, params.dropout)
    module = build_head(config).to(dev)
    loss_fn = nn.CrossEntropyLoss(weight=torch.from_numpy(class_weights(y_tr, num_classes)).to(dev))
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=float(params.lr or DEFAULT_LR["mlp"]), weight_decay=params.weight_decay
    )
    xt, yt = torch.from_numpy(x_tr).to(dev), torch.from_numpy(y_tr).to(dev)
    xv, yv = torch.from_numpy(x_va).to(dev), torch.from_numpy(y_va).to(dev)

    best_loss, best_state, best_epoch, waited = float("inf"), copy.deepcopy(module.state_dict()), 0, 0
    history: list[EpochRecord] = []
    for epoch in range(1, params.epochs + 1):
        started = time.perf_counter()
        module.train()
        order = torch.randperm(len(yt), generator=generator).to(dev)
        total = 0.0
        for start in range(0, len(order), params.batch_size):
            batch = order[start : start + params.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(module(xt[batch]), yt[batch])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        module.eval()
        with torch.inference_mode():
            logits = module(xv)
            val_loss = float(loss_fn(logits, yv))
            probs = torch.softmax(logits, dim=1).float().cpu().numpy()
        record = EpochRecord(
            epoch, total / len(yt), val_loss, classification_metrics(probs, y_va), time.perf_counter() - started
        )
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if val_loss < best_loss - 1e-5:
            best_loss, best_state, best_epoch, waited = val_loss, copy.deepcopy(module.state_dict()), epoch, 0
        else:
            waited += 1
            if waited >= params.patience and epoch >= MIN_EPOCHS:
                log.info("early stop at epoch %d (best %d)", epoch, best_epoch)
                break
    module.load_state_dict(best_state)
    module.eval()
    head = TrainedHead(config=config, labels=list(labels), embedding_model=embedding_model, module=module.cpu())
    val_logits = head.logits(x_va, device="cpu")
    uncalibrated = classification_metrics(softmax(val_logits), y_va)
    head.temperature = fit_temperature(val_logits, y_va)
    metrics = classification_metrics(head.predict_proba(x_va, device="cpu"), y_va)
    metrics["val_loss"] = best_loss
    metrics["ece_before_calibration"] = uncalibrated["ece"]
    metrics["temperature"] = head.temperature
    return TrainResult(
        head=head,
        metrics=metrics,
        history=history,
        best_epoch=best_epoch,
        device=str(dev),
        train_idx=train_idx,
        val_idx=val_idx,
    )
