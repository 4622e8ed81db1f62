"""Active-learning simulation: uncertainty sampling vs random sampling on the generated demo data.

The data: the project's demo generator (two classes, 5 % label noise, 20 % ambiguous items,
deterministic seed), embedded with the offline all-MiniLM-L6-v2. A pool of 2,000 items is
"labeled" on demand with its noisy annotator label; F1 is measured on a fixed test set of 1,000
items against the true labels. Each round adds 20 labels, chosen by least confidence of the
current head (the platform's scoring) or at random, and retrains the platform's logistic head
(the same training code as the train_classifier DAG). 5 seeds.

Goal: uncertainty sampling reaches random sampling's final F1 with at most 60 % of its labels.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bench._env import RESULTS, save

POOL, TEST = 2_000, 1_000
START, STEP, BUDGET = 20, 20, int(os.environ.get("BENCH_AL_BUDGET", "400"))
SEEDS = [0, 1, 2, 3, 4]


def run_curve(
    x_pool: np.ndarray, y_noisy: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, strategy: str, seed: int
) -> list[float]:
    from include.ml.scoring import uncertainty
    from include.ml.training.metrics import classification_metrics
    from include.ml.training.train import TrainingDataError, TrainParams, train_head

    rng = np.random.default_rng(seed)
    labeled = list(rng.choice(len(x_pool), START, replace=False))
    curve = []
    while True:
        idx = np.array(labeled)
        try:
            head = train_head(
                x_pool[idx], y_noisy[idx], ["OK", "NG"], "minilm", TrainParams(kind="logistic", seed=seed)
            ).head
            probs_test = head.predict_proba(x_test, device="cpu")
            curve.append(classification_metrics(probs_test, y_test)["f1"])
        except TrainingDataError:  # too few of a class so far: no model yet
            head = None
            curve.append(0.0)
        if len(labeled) >= BUDGET:
            return curve
        remaining = np.setdiff1d(np.arange(len(x_pool)), idx)
        if strategy == "uncertainty" and head is not None:
            scores = uncertainty(head.predict_proba(x_pool[remaining], device="cpu"), "least_confidence")
            picked = remaining[np.argsort(-scores, kind="stable")[:STEP]]
        else:
            picked = rng.choice(remaining, STEP, replace=False)
        labeled.extend(int(i) for i in picked)


def labels_to_reach(curve: np.ndarray, target: float, sizes: list[int]) -> int | None:
    for size, f1 in zip(sizes, curve, strict=True):
        if f1 >= target:
            return size
    return None


def plot(sizes: list[int], curves: dict[str, np.ndarray], target: float, reached: int | None, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    colors = {"uncertainty": "#4f46e5", "random": "#9ca3af"}
    for name, runs in curves.items():
        mean, std = runs.mean(axis=0), runs.std(axis=0)
        ax.plot(sizes, mean, label=f"{name} sampling (mean of {len(runs)} seeds)", color=colors[name], linewidth=2)
        ax.fill_between(sizes, mean - std, mean + std, color=colors[name], alpha=0.2)
    ax.axhline(target, color="#b54708", linestyle="--", linewidth=1, label=f"random's final F1 ({target:.3f})")
    if reached:
        ax.axvline(
            reached,
            color="#12805c",
            linestyle=":",
            linewidth=1.5,
            label=f"uncertainty reaches it at {reached} labels ({reached / sizes[-1]:.0%})",
        )
    ax.set_xlabel("labels")
    ax.set_ylabel("macro F1 on the fixed test set (true labels)")
    ax.set_title("Active learning on the demo data: uncertainty vs random sampling")
    ax.set_ylim(max(0.0, min(c.mean(axis=0)[2:].min() for c in curves.values()) - 0.05), 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    from include.demo.texts import generate_demo_texts
    from include.ml.embeddings.backends import SentenceTransformerEmbedder

    items = generate_demo_texts(POOL + TEST, seed=2026, noise=0.05, ambiguous=0.2)
    x = SentenceTransformerEmbedder().embed([t.text for t in items])
    y_noisy = np.array([0 if t.label == "OK" else 1 for t in items])
    y_true = np.array([0 if t.true_label == "OK" else 1 for t in items])
    x_pool, x_test = x[:POOL], x[POOL:]
    sizes = list(range(START, BUDGET + 1, STEP))
    curves: dict[str, Any] = {}
    for strategy in ("uncertainty", "random"):
        curves[strategy] = np.array(
            [run_curve(x_pool, y_noisy[:POOL], x_test, y_true[POOL:], strategy, s) for s in SEEDS]
        )
        print(strategy, np.round(curves[strategy].mean(axis=0), 3).tolist(), flush=True)
    target = float(curves["random"].mean(axis=0)[-1])
    reached = labels_to_reach(curves["uncertainty"].mean(axis=0), target, sizes)
    per_seed = [
        labels_to_reach(curves["uncertainty"][i], float(curves["random"][i][-1]), sizes) for i in range(len(SEEDS))
    ]
    png = str(RESULTS / "active_learning.png")
    RESULTS.mkdir(parents=True, exist_ok=True)
    plot(sizes, curves, target, reached, png)
    save(
        "active_learning",
        {
            "pool": POOL,
            "test": TEST,
            "label_noise": 0.05,
            "ambiguous": 0.2,
            "seeds": SEEDS,
            "sizes": sizes,
            "mean_f1": {k: v.mean(axis=0).round(4).tolist() for k, v in curves.items()},
            "std_f1": {k: v.std(axis=0).round(4).tolist() for k, v in curves.items()},
            "random_final_f1": target,
            "uncertainty_labels_to_reach_it": reached,
            "fraction_of_random_labels": (reached / BUDGET) if reached else None,
            "per_seed_labels_to_reach_that_seeds_random_final": per_seed,
            "goal": "<= 0.6 of random's labels",
            "plot": "bench/results/active_learning.png",
        },
    )


if __name__ == "__main__":
    main()
