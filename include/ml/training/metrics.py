"""Evaluation metrics: accuracy, macro F1, ROC-AUC and expected calibration error."""

from __future__ import annotations

from itertools import pairwise

import numpy as np


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Weighted gap between confidence and accuracy over equal-width confidence bins."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in pairwise(edges):
        mask = (confidence > low) & (confidence <= high)
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def classification_metrics(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Metrics of class probabilities ``probs`` (n, k) against integer labels ``y``."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score  # heavy: only when measuring

    predicted = probs.argmax(axis=1)
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, average="macro", zero_division=0)),
        "ece": expected_calibration_error(probs, y),
    }
    try:
        if probs.shape[1] == 2:
            metrics["roc_auc"] = float(roc_auc_score(y, probs[:, 1]))
        else:
            metrics["roc_auc"] = float(roc_auc_score(y, probs, multi_class="ovr"))
    except ValueError:  # one class only in y
        metrics["roc_auc"] = float("nan")
    return metrics
