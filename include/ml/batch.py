"""Which tasks to label next, as a batch: uncertain and not near-duplicates of each other.

Top-k by uncertainty picks clusters of near-identical texts (the same template, the same
complaint), and labeling ten of them teaches the model once. ``diverse`` follows Zhdanov's
diverse mini-batch active learning (2019): keep the ``pool_factor x k`` most uncertain
candidates (dropping any with less than half the uncertainty of the k-th), cluster them with
k-means weighted by uncertainty, and take from each cluster the candidate nearest its centre.
:func:`representatives` is the cold start for a dataset with no model:
k-means over the embeddings alone, one representative per cluster, so the first labels cover
the data instead of a random corner of it.

scikit-learn's k-means does the clustering; this module only chooses what to cluster and whom
to pick. No torch and no database here: callers pass embeddings and scores.
"""

from __future__ import annotations

import numpy as np

from include.params import ParamSpec

BATCH_STRATEGIES = ("diverse", "top")
BATCH_STRATEGY = ParamSpec(
    "batch_strategy",
    "Batch strategy",
    "choice",
    "diverse",
    choices=BATCH_STRATEGIES,
    help="diverse (default): the most uncertain tasks, one per cluster of similar texts (and representatives "
    "of the data before any model); top: strictly by priority (hardest first)",
)
RELATIVE_FLOOR = 0.5  # candidates need at least half the uncertainty of the k-th most uncertain
DIVERSE_HEAD = ParamSpec(
    "diverse_head",
    "Diverse queue head",
    "int",
    0,
    minimum=0,
    maximum=1000,
    help="0: the queue is strictly by priority; N: its first N tasks are the most uncertain spread over "
    "clusters of similar texts (their near-duplicates wait just behind them)",
)
POOL_FACTOR = 10  # candidates per batch slot: wide enough to skip duplicates, narrow enough to stay uncertain
COLD_SAMPLE = 20_000  # tasks clustered for a cold start (k-means on a sample is as representative)
RESTARTS_UP_TO = 100  # k-means restarts 3 times up to this k, once above (k-means++ seeding costs k x n)


def _nearest_to_centres(x: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Per non-empty cluster, the row of ``x`` closest to its centre."""
    picked = []
    for cluster in range(len(centres)):
        members = np.flatnonzero(labels == cluster)
        if len(members):
            distances = np.square(x[members] - centres[cluster]).sum(axis=1)
            picked.append(int(members[np.argmin(distances)]))
    return np.asarray(picked, dtype=np.int64)


def _kmeans(x: np.ndarray, k: int, weights: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n_init = 3 if k <= RESTARTS_UP_TO else 1
    if len(x) > 5_000:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=n_init, batch_size=2048)
    else:
        model = KMeans(n_clusters=k, random_state=seed, n_init=n_init)
    labels = model.fit_predict(x, sample_weight=weights)
    return labels, model.cluster_centers_


def diverse_batch(
    embeddings: np.ndarray, uncertainty: np.ndarray, k: int, *, pool_factor: int = POOL_FACTOR, seed: int = 0
) -> np.ndarray:
    """Indices of ``k`` rows: the most uncertain, spread over clusters (most uncertain first).

    Rows with NaN uncertainty (never scored) are considered last.
    """
    scores = np.nan_to_num(np.asarray(uncertainty, dtype=np.float64), nan=-1.0)
    n = len(scores)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if n <= k:
        return np.argsort(-scores, kind="stable")
    width = min(n, max(k, pool_factor * k))
    candidates = np.argpartition(-scores, width - 1)[:width] if width < n else np.arange(n)
    # Far less uncertain than the batch's k-th hardest: a cluster of its own must not win it a place.
    kth = np.sort(scores[candidates])[::-1][k - 1]
    candidates = candidates[scores[candidates] >= min(kth, RELATIVE_FLOOR * kth)]
    if len(candidates) <= k:
        return candidates[np.argsort(-scores[candidates], kind="stable")]
    x = np.asarray(embeddings[candidates], dtype=np.float64)
    weights = np.clip(scores[candidates], 1e-6, None)
    labels, centres = _kmeans(x, k, weights, seed)
    picked = candidates[_nearest_to_centres(x, labels, centres)]
    if len(picked) < k:  # duplicate points can leave clusters empty: fill with the next most uncertain
        rest = candidates[~np.isin(candidates, picked)]
        picked = np.concatenate([picked, rest[np.argsort(-scores[rest], kind="stable")][: k - len(picked)]])
    return picked[np.argsort(-scores[picked], kind="stable")]


def representatives(embeddings: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Indices of ``k`` rows that stand for the data: the row nearest each k-means centre."""
    n = len(embeddings)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if n <= k:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, COLD_SAMPLE, replace=False)) if n > COLD_SAMPLE else np.arange(n)
    x = np.asarray(embeddings[sample], dtype=np.float64)
    labels, centres = _kmeans(x, k, None, seed)
    picked = sample[_nearest_to_centres(x, labels, centres)]
    if len(picked) < k:
        rest = np.setdiff1d(sample, picked)
        picked = np.concatenate([picked, rng.choice(rest, min(len(rest), k - len(picked)), replace=False)])
    return picked
