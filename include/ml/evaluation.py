"""A model's evaluation report on the evaluation set: what the model page draws and the API returns.

Confusion matrix, per-label precision/recall/F1/support, one-vs-rest PR and ROC curves,
reliability (calibration) bins, confidence histograms of right and wrong answers, and the most
confident mistakes with links back to their tasks. Plain data (JSON-ready): the web app draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from include.ml.gate import macro_f1
from include.ml.training.metrics import expected_calibration_error

CURVE_POINTS = 120
MISTAKES = 15


def _thin(xs: np.ndarray, ys: np.ndarray, n: int = CURVE_POINTS) -> tuple[list[float], list[float]]:
    """At most ``n`` points of a curve (its ends kept): enough to draw, small enough to store."""
    if len(xs) > n:
        keep = np.unique(np.linspace(0, len(xs) - 1, n).astype(int))
        xs, ys = xs[keep], ys[keep]
    return [round(float(v), 4) for v in xs], [round(float(v), 4) for v in ys]


def evaluation_report(
    probs: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    items: Sequence[dict[str, Any]],
    *,
    pred: np.ndarray | None = None,
) -> dict[str, Any]:
    """The report for class probabilities ``probs`` (n, k) against ``y``; ``items[i]`` describes
    row i (``text_hash``, ``task_id``, ``text``) for the mistakes list and the predictions.

    ``pred`` overrides the predicted labels; index ``k`` means "no usable answer" (an LLM that
    broke its contract): counted wrong, and reported as ``unanswered``.
    """
    from sklearn.metrics import auc, precision_recall_curve, roc_curve  # heavy: only when reporting

    probs = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    k = len(labels)
    pred = probs.argmax(axis=1) if pred is None else np.asarray(pred, dtype=np.int64)
    answered = pred < k
    confidence = np.where(answered, probs.max(axis=1), 0.0)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y[answered], pred[answered]), 1)
    per_label = []
    for c, label in enumerate(labels):
        support = int((y == c).sum())
        tp, fp = confusion[c, c], confusion[:, c].sum() - confusion[c, c]
        fn = support - tp
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label.append({"label": label, "precision": precision, "recall": recall, "f1": f1, "support": support})
    curves = []
    for c, label in enumerate(labels):
        truth = (y == c).astype(int)
        if truth.min() == truth.max():
            continue  # one class only: no curve
        precision, recall, _ = precision_recall_curve(truth, probs[:, c])
        fpr, tpr, _ = roc_curve(truth, probs[:, c])
        r, p = _thin(recall[::-1], precision[::-1])
        f, t = _thin(fpr, tpr)
        curves.append(
            {
                "label": label,
                "pr": {"recall": r, "precision": p, "auc": float(auc(recall, precision))},
                "roc": {"fpr": f, "tpr": t, "auc": float(auc(fpr, tpr))},
            }
        )
    edges = np.linspace(1.0 / k, 1.0, 11)
    reliability = []
    for low, high in pairwise(edges):
        mask = (confidence > low) & (confidence <= high) if low > edges[0] else (confidence <= high)
        if mask.any():
            reliability.append(
                {
                    "confidence": float(confidence[mask].mean()),
                    "accuracy": float((pred[mask] == y[mask]).mean()),
                    "count": int(mask.sum()),
                }
            )
    bins = np.linspace(1.0 / k, 1.0, 21)
    right, _ = np.histogram(confidence[pred == y], bins=bins)
    wrong, _ = np.histogram(confidence[pred != y], bins=bins)
    wrong_rows = np.flatnonzero(pred != y)
    worst = wrong_rows[np.argsort(-confidence[wrong_rows], kind="stable")[:MISTAKES]]
    return {
        "n": len(y),
        "labels": list(labels),
        "macro_f1": macro_f1(y, pred, k),
        "accuracy": float((pred == y).mean()) if len(y) else 0.0,
        "ece": expected_calibration_error(probs, y),
        "unanswered": int((~answered).sum()),
        "confusion": confusion.tolist(),
        "per_label": per_label,
        "curves": curves,
        "reliability": reliability,
        "histogram": {"edges": [round(float(e), 4) for e in bins], "right": right.tolist(), "wrong": wrong.tolist()},
        "mistakes": [
            {
                "task_id": items[i].get("task_id"),
                "text": str(items[i].get("text", ""))[:300],
                "label": labels[int(y[i])],
                "predicted": labels[int(pred[i])] if pred[i] < k else "(no usable answer)",
                "confidence": round(float(confidence[i]), 4),
            }
            for i in worst
        ],
        "predictions": {str(items[i]["text_hash"]): int(pred[i]) for i in range(len(y))},
    }
