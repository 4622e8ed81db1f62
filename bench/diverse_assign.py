"""What a diverse auto-assign costs the admin who clicks it, now that ``diverse`` is the default.

Auto-assign runs k-means with k = the batch size over the batch's candidates (10 per slot when
tasks are scored; a sample of the unassigned tasks at a cold start). Measured on one core, on
real MiniLM vectors (the demo texts, jittered to 20,000 rows), for the current settings of
include.ml.batch (one k-means restart above k = 100) against the settings before diverse became
the default (3 restarts at every k), in the same process. Top-k by priority (``argpartition``) is
the floor. The database part (reading candidates and vectors) is not in these figures.
"""

from __future__ import annotations

import numpy as np

from bench._env import save, timed

SIZES = (20, 100, 300)


def _vectors() -> np.ndarray:
    from bench.active_learning import embed
    from include.demo.texts import generate_demo_texts

    texts = [t.text for t in generate_demo_texts(2_000, seed=1)]
    base = embed("demo-assign", texts)
    rng = np.random.default_rng(0)
    x = np.concatenate([base] * 10) + rng.normal(size=(10 * len(base), base.shape[1])) * 0.01
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _old_kmeans(x: np.ndarray, k: int) -> None:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    model = (
        MiniBatchKMeans(n_clusters=k, random_state=0, n_init=3, batch_size=2048)
        if len(x) > 5_000
        else KMeans(n_clusters=k, random_state=0, n_init=3)
    )
    model.fit(x)


def main() -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # one core, as on a busy web worker
        _measure()


def _measure() -> None:
    from include.ml.batch import POOL_FACTOR, diverse_batch, representatives

    x = _vectors()
    scores = np.random.default_rng(1).random(len(x))
    representatives(x[:2_000], 5)  # warm-up: imports and thread pools, outside the timings
    rows = []
    for k in SIZES:
        cand = x[: POOL_FACTOR * k].astype(np.float64)
        top_s, _ = timed(lambda k=k: np.argpartition(-scores, k)[:k])
        cold_s, _ = timed(lambda k=k: representatives(x, k))
        cold_old_s, _ = timed(lambda k=k: _old_kmeans(x.astype(np.float64), k))
        scored_s, _ = timed(lambda k=k: diverse_batch(x[: POOL_FACTOR * k], scores[: POOL_FACTOR * k], k))
        scored_old_s, _ = timed(lambda k=k, cand=cand: _old_kmeans(cand, k))
        rows.append(
            {
                "k": k,
                "top_k_s": round(top_s, 4),
                "cold_s": round(cold_s, 3),
                "cold_before_s": round(cold_old_s, 3),
                "cold_before_over_now": round(cold_old_s / cold_s, 2),
                "scored_s": round(scored_s, 3),
                "scored_before_s": round(scored_old_s, 3),
                "scored_before_over_now": round(scored_old_s / scored_s, 2),
            }
        )
        print(rows[-1], flush=True)
    save("diverse_assign", {"rows": 20_000, "threads": 1, "sizes": rows})


if __name__ == "__main__":
    main()
