"""The promotion gate: is a candidate clearly better than the promoted model, beyond noise?

Both models are scored on the dataset's frozen evaluation set, which neither trained on. A
paired bootstrap (the same resampled items for both) gives the distribution of the macro-F1
difference; the candidate is promoted only when the lower end of its 90 % interval (a one-sided
95 % bound) clears ``min_gain``. So when two models are truly equal, about 5 % of comparisons
promote by chance, and fewer when the candidate is truly worse. A first model must clear
``min_f1`` with the lower end of its own interval. Below ``min_eval_per_label`` evaluation
labels of some label, the gate refuses to decide rather than guess.

Plain numpy, no scikit-learn: this module is imported when DAG files are parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from include.params import ParamSpec, Values, param

MIN_F1 = ParamSpec(
    "min_f1",
    "Minimum F1 of a first model",
    "float",
    0.6,
    minimum=0,
    maximum=1,
    help="the lower end of its macro-F1 interval on the evaluation set must reach this",
)
MIN_GAIN = ParamSpec(
    "min_gain",
    "Minimum gain",
    "float",
    0.0,
    minimum=0,
    maximum=0.5,
    help="how much macro F1 (0.01 = one point) the lower end of the improvement must exceed",
)
MIN_EVAL_PER_LABEL = ParamSpec(
    "min_eval_per_label",
    "Evaluation labels needed per label",
    "int",
    10,
    minimum=1,
    maximum=10_000,
    help="below this the gate refuses to decide",
)
REQUIRE_BASELINE = ParamSpec(
    "require_baseline",
    "Must beat the LLM baseline",
    "bool",
    False,
    help="when a baseline probe ran on this evaluation set, the candidate must beat it too",
)


@dataclass(frozen=True, kw_only=True)
class GatePolicy(Values):
    """What a candidate must show on the evaluation set to be promoted."""

    min_f1: float = param(MIN_F1)
    min_gain: float = param(MIN_GAIN)
    min_eval_per_label: int = param(MIN_EVAL_PER_LABEL)
    require_baseline: bool = param(REQUIRE_BASELINE)


GATE_PARAMS = GatePolicy.specs()

RESAMPLES = 2000
CONFIDENCE = 0.90  # two-sided; its lower end is a one-sided 95 % bound


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Macro F1 over the classes present in ``y_true`` or ``y_pred`` (scikit-learn's definition)."""
    return float(_macro_f1_rows(y_true[None, :], y_pred[None, :], num_classes)[0])


def _macro_f1_rows(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Macro F1 of each row of (resamples, n) label arrays, vectorised."""
    scores = np.zeros(y_true.shape[0])
    present = np.zeros(y_true.shape[0])
    for c in range(num_classes):
        truth, pred = y_true == c, y_pred == c
        tp = (truth & pred).sum(axis=1)
        fp = (~truth & pred).sum(axis=1)
        fn = (truth & ~pred).sum(axis=1)
        denominator = 2 * tp + fp + fn
        in_play = denominator > 0
        scores += np.where(in_play, 2 * tp / np.maximum(denominator, 1), 0.0)
        present += in_play
    return scores / np.maximum(present, 1)


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Score:
    """A model's macro F1 on the evaluation set with its bootstrap interval."""

    f1: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """Candidate minus incumbent, paired on the same resamples."""

    diff: float
    low: float
    high: float


def score(y: np.ndarray, pred: np.ndarray, num_classes: int, *, resamples: int, seed: int) -> Score:
    idx = bootstrap_indices(len(y), resamples, seed)
    low, high = interval(_macro_f1_rows(y[idx], pred[idx], num_classes))
    return Score(macro_f1(y, pred, num_classes), low, high)


def compare(
    y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, num_classes: int, *, resamples: int, seed: int
) -> Comparison:
    """Paired bootstrap of macro-F1(a) - macro-F1(b)."""
    idx = bootstrap_indices(len(y), resamples, seed)
    diffs = _macro_f1_rows(y[idx], pred_a[idx], num_classes) - _macro_f1_rows(y[idx], pred_b[idx], num_classes)
    low, high = interval(diffs)
    return Comparison(macro_f1(y, pred_a, num_classes) - macro_f1(y, pred_b, num_classes), low, high)


@dataclass
class GateDecision:
    promoted: bool
    reason: str
    decided: bool = True  # False: refused (too few evaluation labels)
    eval_size: int = 0
    candidate: Score | None = None
    incumbent: Score | None = None
    versus_incumbent: Comparison | None = None
    baseline: Score | None = None
    versus_baseline: Comparison | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def candidate_f1(self) -> float | None:
        return self.candidate.f1 if self.candidate else None

    @property
    def incumbent_f1(self) -> float | None:
        return self.incumbent.f1 if self.incumbent else None

    def record(self) -> dict[str, Any]:
        """What the registry keeps."""
        out: dict[str, Any] = {"promoted": self.promoted, "decided": self.decided, "eval_size": self.eval_size}
        for name in ("candidate", "incumbent", "versus_incumbent", "baseline", "versus_baseline"):
            value = getattr(self, name)
            out[name] = asdict(value) if value is not None else None
        return {**out, **self.details}


def too_few(y: np.ndarray, labels: Sequence[str], minimum: int) -> dict[str, int]:
    """Labels with fewer than ``minimum`` evaluation items: how many more each needs."""
    counts = np.bincount(y, minlength=len(labels)) if len(y) else np.zeros(len(labels), dtype=int)
    return {label: minimum - int(n) for label, n in zip(labels, counts, strict=True) if n < minimum}


def decide(
    y: np.ndarray,
    labels: Sequence[str],
    candidate_pred: np.ndarray,
    incumbent_pred: np.ndarray | None,
    *,
    min_f1: float = MIN_F1.default,
    min_gain: float = MIN_GAIN.default,
    min_eval_per_label: int = MIN_EVAL_PER_LABEL.default,
    baseline_pred: np.ndarray | None = None,
    require_baseline: bool = REQUIRE_BASELINE.default,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> GateDecision:
    """Promote, reject or refuse, from predicted label indices on the evaluation set ``y``."""
    y = np.asarray(y, dtype=np.int64)
    k = len(labels)
    missing = too_few(y, labels, min_eval_per_label)
    if missing:
        needs = ", ".join(f"{n} more evaluation labels for {label}" for label, n in missing.items())
        return GateDecision(False, f"not enough evaluation labels to decide: needs {needs}", False, len(y))
    decision = GateDecision(False, "", True, len(y))
    decision.candidate = score(y, candidate_pred, k, resamples=resamples, seed=seed)
    cand = decision.candidate
    if baseline_pred is not None:
        decision.baseline = score(y, baseline_pred, k, resamples=resamples, seed=seed)
        decision.versus_baseline = compare(y, candidate_pred, baseline_pred, k, resamples=resamples, seed=seed)
        if require_baseline and decision.versus_baseline.low <= 0:
            vb = decision.versus_baseline
            decision.reason = (
                f"does not clearly beat the LLM baseline: macro F1 {cand.f1:.3f} vs {decision.baseline.f1:.3f}, "
                f"difference {vb.diff:+.3f} (90 % interval {vb.low:+.3f} to {vb.high:+.3f}) on {len(y)} items"
            )
            return decision
    if incumbent_pred is None:
        decision.promoted = cand.low >= min_f1
        verdict = "reaches" if decision.promoted else "is below"
        decision.reason = (
            f"first model: macro F1 {cand.f1:.3f} (90 % interval {cand.low:.3f} to {cand.high:.3f}) on {len(y)} "
            f"evaluation items; its lower end {verdict} the minimum {min_f1:.2f}"
        )
        return decision
    decision.incumbent = score(y, incumbent_pred, k, resamples=resamples, seed=seed)
    vs = compare(y, candidate_pred, incumbent_pred, k, resamples=resamples, seed=seed)
    decision.versus_incumbent = vs
    decision.promoted = vs.low > min_gain
    shown = (
        f"macro F1 {cand.f1:.3f} vs the promoted model's {decision.incumbent.f1:.3f}: difference {vs.diff:+.3f}, "
        f"90 % interval {vs.low:+.3f} to {vs.high:+.3f} on {len(y)} evaluation items"
    )
    decision.reason = (
        f"better beyond noise: {shown}"
        if decision.promoted
        else f"not better beyond noise (the interval's lower end must exceed {min_gain:+.3f}): {shown}"
    )
    return decision
