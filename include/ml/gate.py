"""The promotion gate: is a candidate head good enough to replace the promoted one?

A candidate is promoted only if it beats the promoted model on the same held-out set (the
candidate's validation split, on which both are evaluated now), or, when there is none yet,
reaches a minimum F1. Otherwise it is rejected and the reason is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from include.ml.training.metrics import classification_metrics
from include.ml.training.model import TrainedHead
from include.params import ParamSpec

MIN_F1 = ParamSpec(
    "min_f1", "Minimum F1 of a first model", "float", 0.6, minimum=0, maximum=1, help="macro F1 on held-out labels"
)


@dataclass
class GateDecision:
    promoted: bool
    reason: str
    candidate_f1: float
    incumbent_f1: float | None


def decide(
    candidate: TrainedHead,
    incumbent: TrainedHead | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    min_f1: float = MIN_F1.default,
    min_gain: float = 0.0,
) -> GateDecision:
    """Compare candidate and incumbent on the same held-out examples."""
    cand = classification_metrics(candidate.predict_proba(x_val, device="cpu"), y_val)["f1"]
    if incumbent is None:
        if cand >= min_f1:
            return GateDecision(True, f"first model: F1 {cand:.3f} >= minimum {min_f1:.2f}", cand, None)
        return GateDecision(False, f"first model: F1 {cand:.3f} below minimum {min_f1:.2f}", cand, None)
    if incumbent.labels != candidate.labels:
        return GateDecision(True, "label set changed since the promoted model: replacing it", cand, None)
    inc = classification_metrics(incumbent.predict_proba(x_val, device="cpu"), y_val)["f1"]
    if cand > inc + min_gain:
        return GateDecision(
            True, f"F1 {cand:.3f} beats the promoted model's {inc:.3f} on the same held-out set", cand, inc
        )
    return GateDecision(
        False, f"F1 {cand:.3f} does not beat the promoted model's {inc:.3f} on the same held-out set", cand, inc
    )
