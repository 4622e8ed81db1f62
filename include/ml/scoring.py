"""Uncertainty from class probabilities, and the priority the platform orders tasks by.

The seed's definition (least confidence): ``uncertainty = 1 - confidence`` and
``priority = int(uncertainty * 1000)``. Margin and entropy are on the same 0..1 scale (entropy
normalised by log K), so priorities stay comparable across strategies.
"""

from __future__ import annotations

import numpy as np

from include.params import ParamSpec

STRATEGIES = ("least_confidence", "margin", "entropy")
STRATEGY = ParamSpec(
    "strategy",
    "Strategy",
    "choice",
    "least_confidence",
    choices=STRATEGIES,
    help="how uncertainty is measured: 1 - confidence, 1 - top-2 margin, or normalised entropy",
)


def uncertainty(probs: np.ndarray, strategy: str = STRATEGY.default) -> np.ndarray:
    """Per-row uncertainty in [0, 1] for probabilities ``probs`` (n, k)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError("probabilities must be an (n, k>=2) array")
    if strategy == "least_confidence":
        return 1.0 - probs.max(axis=1)
    if strategy == "margin":
        top2 = np.sort(probs, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if strategy == "entropy":
        clipped = np.clip(probs, 1e-12, 1.0)
        return -(clipped * np.log(clipped)).sum(axis=1) / np.log(probs.shape[1])
    raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")


def priority(uncertainty_scores: np.ndarray) -> np.ndarray:
    """``int(uncertainty * 1000)``, clamped to 0..1000.

    A tiny epsilon keeps float noise from dropping a point (1 - 0.9 is 0.0999..., which would give 99).
    """
    return np.clip(np.floor(np.asarray(uncertainty_scores, dtype=np.float64) * 1000 + 1e-6).astype(np.int64), 0, 1000)
