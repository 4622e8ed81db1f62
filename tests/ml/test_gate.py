"""The promotion gate: paired bootstrap intervals, refusal below a minimum, repeatable per seed."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from include.ml.gate import compare, decide, macro_f1, score


def noisy(y: np.ndarray, error_rate: float, seed: int, k: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    flip = rng.random(len(y)) < error_rate
    return np.where(flip, (y + rng.integers(1, k, len(y))) % k, y)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_macro_f1_is_scikit_learns(k: int) -> None:
    rng = np.random.default_rng(k)
    y = rng.integers(0, k, 400)
    pred = noisy(y, 0.3, 1, k)
    assert macro_f1(y, pred, k) == pytest.approx(f1_score(y, pred, average="macro"))
    # A class present only in the predictions counts, as in scikit-learn.
    y2, p2 = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    assert macro_f1(y2, p2, 3) == pytest.approx(f1_score(y2, p2, average="macro"))


def test_bootstrap_repeats_for_a_seed_and_varies_across_seeds() -> None:
    y = np.random.default_rng(0).integers(0, 2, 300)
    a, b = noisy(y, 0.1, 1), noisy(y, 0.2, 2)
    first = compare(y, a, b, 2, resamples=1000, seed=7)
    assert compare(y, a, b, 2, resamples=1000, seed=7) == first
    assert compare(y, a, b, 2, resamples=1000, seed=8) != first
    assert first.low < first.diff < first.high
    s = score(y, a, 2, resamples=1000, seed=7)
    assert s.low < s.f1 < s.high


def test_clearly_better_is_promoted() -> None:
    y = np.random.default_rng(1).integers(0, 2, 400)
    decision = decide(y, ["OK", "NG"], noisy(y, 0.05, 1), noisy(y, 0.25, 2))
    assert decision.promoted and decision.decided
    assert decision.versus_incumbent is not None and decision.versus_incumbent.low > 0
    assert decision.reason.startswith("better beyond noise")


def test_an_equal_model_is_rejected_with_an_interval_containing_zero() -> None:
    y = np.random.default_rng(2).integers(0, 2, 400)
    same_quality = [noisy(y, 0.15, s) for s in (3, 4)]
    decision = decide(y, ["OK", "NG"], same_quality[0], same_quality[1])
    assert not decision.promoted and decision.decided
    vs = decision.versus_incumbent
    assert vs is not None and vs.low < 0 < vs.high
    assert f"{vs.low:+.3f} to {vs.high:+.3f}" in decision.reason


def test_below_the_minimum_it_refuses_and_says_what_is_missing() -> None:
    y = np.array([0] * 4 + [1] * 30)
    decision = decide(y, ["OK", "NG"], y, y, min_eval_per_label=10)
    assert not decision.decided and not decision.promoted
    assert decision.reason == "not enough evaluation labels to decide: needs 6 more evaluation labels for OK"


def test_a_first_model_needs_min_f1_on_its_lower_bound() -> None:
    y = np.random.default_rng(3).integers(0, 2, 60)
    pred = noisy(y, 0.2, 5)
    point = macro_f1(y, pred, 2)
    assert point > 0.7
    just_below_point = decide(y, ["OK", "NG"], pred, None, min_f1=point - 0.01)
    assert not just_below_point.promoted  # the point estimate clears it, its lower bound does not
    assert decide(y, ["OK", "NG"], pred, None, min_f1=0.5).promoted


def test_the_baseline_can_be_required() -> None:
    y = np.random.default_rng(4).integers(0, 2, 300)
    candidate, llm = noisy(y, 0.2, 1), noisy(y, 0.1, 2)
    loose = decide(y, ["OK", "NG"], candidate, None, baseline_pred=llm, min_f1=0.5)
    assert loose.promoted and loose.baseline is not None
    strict = decide(y, ["OK", "NG"], candidate, None, baseline_pred=llm, require_baseline=True, min_f1=0.5)
    assert not strict.promoted and "does not clearly beat the LLM baseline" in strict.reason
    unanswered = np.where(np.arange(300) % 3 == 0, 2, llm)  # index k: no usable answer, counted wrong
    assert decide(
        y, ["OK", "NG"], candidate, None, baseline_pred=unanswered, require_baseline=True, min_f1=0.5
    ).promoted
