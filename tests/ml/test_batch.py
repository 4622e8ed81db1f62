"""Batch strategies: a batch drawn from two tight clusters takes from both; a cold start covers the data."""

from __future__ import annotations

import numpy as np

from include.ml.batch import diverse_batch, representatives


def clusters(sizes: list[int], d: int = 16, spread: float = 0.01, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), d)) * 3
    membership = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[membership] + rng.normal(size=(len(membership), d)) * spread
    return x, membership


def test_a_batch_from_two_tight_clusters_takes_from_both() -> None:
    x, membership = clusters([60, 60])
    # Cluster 0 is a little more uncertain throughout: top-k would take only from it.
    uncertainty = np.where(membership == 0, 0.49, 0.45) + np.random.default_rng(1).uniform(0, 0.005, len(x))
    top = np.argsort(-uncertainty)[:10]
    assert set(membership[top]) == {0}
    batch = diverse_batch(x, uncertainty, 10)
    assert len(batch) == len(set(batch.tolist())) == 10
    assert set(membership[batch]) == {0, 1}
    assert uncertainty[batch].tolist() == sorted(uncertainty[batch].tolist(), reverse=True)  # hardest first


def test_diverse_stays_among_the_uncertain() -> None:
    x, membership = clusters([50, 50, 50, 50])
    uncertainty = np.linspace(0, 1, len(x))  # the last cluster is the most uncertain
    batch = diverse_batch(x, uncertainty, 4, pool_factor=10)
    # 40 candidates: the 40 most uncertain, all in the last cluster, so nothing confident sneaks in.
    assert set(membership[batch]) == {3}
    unscored = np.full(len(x), np.nan)
    unscored[:5] = 0.9
    assert set(diverse_batch(x, unscored, 3, pool_factor=1).tolist()) <= set(range(5))


def test_cold_start_takes_one_representative_per_cluster() -> None:
    x, membership = clusters([200, 30, 80, 5, 120], seed=3)
    picked = representatives(x, 5, seed=0)
    assert sorted(membership[picked].tolist()) == [0, 1, 2, 3, 4]
    assert representatives(x[:3], 5).tolist() == [0, 1, 2]
    assert len(diverse_batch(x[:4], np.ones(4), 10)) == 4
