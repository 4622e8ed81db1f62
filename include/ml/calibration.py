"""Temperature scaling (Guo et al., 2017): one number that makes a head's confidences honest.

Fitted on the validation split by minimising the negative log-likelihood of
``softmax(logits / T)``; it changes no prediction, only how sure the head says it is.
"""

from __future__ import annotations

import numpy as np

from include.ml.training.model import softmax


def nll(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    probs = softmax(logits / temperature)
    return float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0)).mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray, *, low: float = 0.05, high: float = 20.0) -> float:
    """The temperature in [low, high] that minimises validation NLL (1.0 when there is nothing to fit)."""
    from scipy.optimize import minimize_scalar  # scikit-learn's dependency; only when fitting

    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if len(y) < 2 or len(np.unique(y)) < 2:
        return 1.0
    result = minimize_scalar(
        lambda log_t: nll(logits, y, float(np.exp(log_t))), bounds=(np.log(low), np.log(high)), method="bounded"
    )
    return float(np.exp(result.x)) if result.success else 1.0
