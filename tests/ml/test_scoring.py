"""Uncertainty strategies and the seed's priority formula."""

from __future__ import annotations

import numpy as np
import pytest

from include.ml.scoring import priority, uncertainty


def test_least_confidence_is_the_seed_formula() -> None:
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7], [0.999, 0.001]])
    u = uncertainty(probs, "least_confidence")
    assert u == pytest.approx([0.1, 0.5, 0.3, 0.001])
    assert priority(u).tolist() == [int(0.1 * 1000), 500, int(0.3 * 1000), 1]


def test_margin_and_entropy_rank_the_same_way_for_two_classes() -> None:
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.5, 0.5]])
    for strategy in ("margin", "entropy"):
        u = uncertainty(probs, strategy)
        assert list(np.argsort(u)) == [0, 1, 2]
        assert u[2] == pytest.approx(1.0)
        assert 0.0 <= u.min() <= u.max() <= 1.0


def test_entropy_is_normalised_for_many_classes() -> None:
    uniform = np.full((1, 4), 0.25)
    certain = np.array([[1.0, 0.0, 0.0, 0.0]])
    assert uncertainty(uniform, "entropy")[0] == pytest.approx(1.0)
    assert uncertainty(certain, "entropy")[0] == pytest.approx(0.0, abs=1e-9)
    assert uncertainty(np.array([[0.5, 0.3, 0.2]]), "margin")[0] == pytest.approx(0.8)


def test_priority_is_clamped() -> None:
    assert priority(np.array([-0.2, 0.0, 0.4999, 1.0, 1.7])).tolist() == [0, 0, 499, 1000, 1000]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="strategy"):
        uncertainty(np.array([[0.5, 0.5]]), "vibes")
    with pytest.raises(ValueError, match=r"\(n, k>=2\)"):
        uncertainty(np.array([0.5, 0.5]), "margin")
