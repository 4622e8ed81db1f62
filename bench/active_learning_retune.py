"""Issue 14 goal (a) on sentiment: active learning with the encoder retuned once inside the loop.

On the frozen MiniLM embeddings no batch strategy beat random sampling on the sentiment sentences
(bench/active_learning.py): uncertainty picks the ambiguous sentences, and the frozen encoder's
plateau caps every curve. The small-text maintainers' advice for that plateau is contrastive
fine-tuning plus an uncertainty strategy, which is what the platform's loop does when
``retune_at_labels`` is set: once a dataset has that many labels, ``finetune_encoder`` tunes the
encoder on them, the pool is re-embedded, and scoring continues on the tuned vectors.

This bench runs that loop on the same data, split and seeds as bench/active_learning.py: 20
labels (cluster representatives for ``diverse``, random for ``random``), 20 more a round, one
retune at ``BENCH_RETUNE_AT`` labels (default 120) with ``BENCH_RETUNE_ITERATIONS`` SetFit pair
iterations (default 5: a CPU budget, about 1,200 pairs), up to ``BENCH_AL_BUDGET`` (default 260).
Both strategies get the same retune, so the comparison is fair; the issue's target (random's mean
F1 over its last three rounds on the frozen embeddings, up to 400 labels) is read from
bench/results/active_learning.json.

``BENCH_RETUNE_DOUBLING=1`` tunes again each time the labels double, as the platform's loop does.
``BENCH_RETUNE_STRATEGIES`` narrows the strategies, ``BENCH_RETUNE_TAG`` names a variant's
files (``_20it`` for SetFit's full 20 iterations). ``BENCH_RETUNE_SEEDS`` picks seeds ("11,23");
``BENCH_RETUNE_PART`` names the output file so two processes can share the seeds, and ``--merge``
writes the report from the parts (over the rounds every part has, if their budgets differed).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from typing import Any

import numpy as np

from bench._env import RESULTS, save
from bench.active_learning import SEEDS, SPLIT_SEED, START, STEP, TEST_SIZE, _f1, embed, labels_to_reach, load_sentiment

RETUNE_AT = int(os.environ.get("BENCH_RETUNE_AT", "120"))
ITERATIONS = int(os.environ.get("BENCH_RETUNE_ITERATIONS", "5"))
BUDGET = int(os.environ.get("BENCH_AL_BUDGET", "260"))
STRATEGIES = tuple(os.environ.get("BENCH_RETUNE_STRATEGIES", "diverse,random").split(","))
TAG = os.environ.get("BENCH_RETUNE_TAG", "")  # a variant's own result files (e.g. "_20it")
# The platform's rule: tune again each time the labels double since the last tune (one tune if 0).
DOUBLING = os.environ.get("BENCH_RETUNE_DOUBLING", "0") == "1"


def data() -> dict[str, Any]:
    from sklearn.model_selection import train_test_split

    texts, y = load_sentiment()
    x = embed("sentiment", texts)
    pool, test = train_test_split(
        np.arange(len(y)), test_size=TEST_SIZE["sentiment"], stratify=y, random_state=SPLIT_SEED
    )
    return {
        "x_pool": x[pool],
        "y_pool": y[pool],
        "x_test": x[test],
        "y_test": y[test],
        "t_pool": [texts[i] for i in pool],
        "t_test": [texts[i] for i in test],
    }


def run_curve(d: dict[str, Any], strategy: str, seed: int) -> dict[str, Any]:
    """One curve: F1 per round, with the encoder retuned on the labels at RETUNE_AT."""
    from include.ml.batch import diverse_batch, representatives
    from include.ml.embeddings.backends import SentenceTransformerEmbedder
    from include.ml.scoring import uncertainty
    from include.ml.training.finetune import FinetuneParams, finetune
    from include.ml.training.train import TrainParams, train_head

    x_pool, y_pool, x_test, y_test = d["x_pool"], d["y_pool"], d["x_test"], d["y_test"]
    rng = np.random.default_rng(seed)
    if strategy == "diverse":
        labeled = [int(i) for i in representatives(x_pool, START, seed=seed)]
    else:
        labeled = [int(i) for i in rng.choice(len(x_pool), START, replace=False)]
    f1: list[float] = []
    tune_s = 0.0
    next_tune = RETUNE_AT
    while True:
        idx = np.array(labeled)
        if len(labeled) == next_tune:
            next_tune = 2 * next_tune if DOUBLING else -1
            started = time.perf_counter()
            encoder = copy.deepcopy(SentenceTransformerEmbedder().sentence_transformer())
            texts = [d["t_pool"][i] for i in idx]
            finetune(encoder, texts, y_pool[idx].tolist(), FinetuneParams(pair_iterations=ITERATIONS, seed=seed))
            x_pool = encoder.encode(d["t_pool"], normalize_embeddings=True, convert_to_numpy=True, batch_size=128)
            x_test = encoder.encode(d["t_test"], normalize_embeddings=True, convert_to_numpy=True, batch_size=128)
            tune_s += time.perf_counter() - started
        head = train_head(x_pool[idx], y_pool[idx], ["0", "1"], "minilm", TrainParams(seed=seed)).head
        f1.append(_f1(head.predict_proba(x_test, device="cpu"), y_test))
        print(strategy, seed, len(labeled), round(f1[-1], 4), flush=True)
        if len(labeled) >= BUDGET:
            return {"f1": f1, "tune_s": round(tune_s, 1)}
        remaining = np.setdiff1d(np.arange(len(x_pool)), idx)
        if strategy == "random":
            picked = rng.choice(remaining, STEP, replace=False)
        else:
            scores = uncertainty(head.predict_proba(x_pool[remaining], device="cpu"), "least_confidence")
            picked = remaining[diverse_batch(x_pool[remaining], scores, STEP, seed=seed)]
        labeled.extend(int(i) for i in picked)


def run_part() -> None:
    seeds = [int(s) for s in os.environ.get("BENCH_RETUNE_SEEDS", ",".join(map(str, SEEDS))).split(",")]
    d = data()
    out = {s: {str(seed): run_curve(d, s, seed) for seed in seeds} for s in STRATEGIES}
    part = os.environ.get("BENCH_RETUNE_PART", "all")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f".active_learning_retune{TAG}_{part}.json").write_text(json.dumps(out))


def merge() -> None:
    curves: dict[str, dict[str, Any]] = {s: {} for s in STRATEGIES}
    for path in sorted(RESULTS.glob(f".active_learning_retune{TAG}_*.json")):
        for strategy, by_seed in json.loads(path.read_text()).items():
            curves[strategy].update(by_seed)
    frozen = json.loads((RESULTS / "active_learning.json").read_text())["datasets"]["sentiment"]
    target = frozen["target_random_last3_mean_f1"]
    # Parts run with different budgets: report the rounds every curve has.
    rounds = min(len(run["f1"]) for by_seed in curves.values() for run in by_seed.values())
    for by_seed in curves.values():
        for run in by_seed.values():
            run["f1"] = run["f1"][:rounds]
    sizes = list(range(START, START + STEP * rounds, STEP))
    report: dict[str, Any] = {}
    means = {}
    for strategy, by_seed in curves.items():
        runs = np.array([by_seed[k]["f1"] for k in sorted(by_seed)])
        mean = runs.mean(axis=0)
        means[strategy] = mean
        reached = labels_to_reach(mean, target, sizes)
        report[strategy] = {
            "seeds": sorted(int(k) for k in by_seed),
            "mean_f1": mean.round(4).tolist(),
            "std_f1": runs.std(axis=0).round(4).tolist(),
            "f1_at": {str(n): round(float(mean[sizes.index(n)]), 4) for n in (100, 200, 240) if n in sizes},
            "labels_to_reach_frozen_random_target": reached,
            "share_of_frozen_random_labels": round(reached / 400, 3) if reached else None,
            "retune_seconds": [by_seed[k]["tune_s"] for k in sorted(by_seed)],
        }
    _plot(sizes, curves, frozen, target)
    save(
        f"active_learning_retune{TAG}",
        {
            "dataset": "sentiment",
            "retune_at_labels": RETUNE_AT,
            "retune_again_when_labels_double": DOUBLING,
            "pair_iterations": ITERATIONS,
            "device": "cpu",
            "sizes": sizes,
            "frozen_random_target_last3_mean_f1": target,
            "frozen_random_labels_to_target": frozen["random"]["labels_to_reach_target"],
            "strategies": report,
            "diverse_minus_random_after_retune": (
                (means["diverse"] - means["random"]).round(4).tolist() if len(means) == 2 else None
            ),
            "plot": f"bench/results/active_learning_retune{TAG}_sentiment.png",
        },
    )


def _plot(sizes: list[int], curves: dict[str, dict[str, Any]], frozen: dict[str, Any], target: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    colors = {"diverse": "#4f46e5", "random": "#9ca3af"}
    for strategy, by_seed in curves.items():
        runs = np.array([by_seed[k]["f1"] for k in sorted(by_seed)])
        mean, std = runs.mean(axis=0), runs.std(axis=0)
        when = f"{RETUNE_AT} and each doubling" if DOUBLING else f"{RETUNE_AT}"
        label = f"{strategy}, encoder retuned at {when} ({len(runs)} seeds)"
        ax.plot(sizes, mean, "-", color=colors[strategy], linewidth=2, label=label)
        ax.fill_between(sizes, mean - std, mean + std, color=colors[strategy], alpha=0.15)
    frozen_sizes = list(range(START, 401, STEP))
    for strategy in STRATEGIES:
        ax.plot(frozen_sizes, frozen[strategy]["mean_f1"], ":", color=colors[strategy], label=f"{strategy}, frozen")
    ax.axhline(
        target, color="#b54708", linestyle="--", linewidth=1, label=f"target: frozen random's last 3 ({target:.3f})"
    )
    tune = RETUNE_AT
    while tune <= sizes[-1]:  # each tune (one, or every doubling)
        ax.axvline(tune, color="#6b7280", linewidth=0.8)
        tune = 2 * tune if DOUBLING else sizes[-1] + 1
    ax.set_xlabel("labels")
    ax.set_ylabel("macro F1 on the test set")
    ax.set_title("Sentiment: active learning with the encoder retuned in the loop (CPU budget)")
    ax.set_ylim(0.75, 0.93)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"active_learning_retune{TAG}_sentiment.png")
    plt.close(fig)


if __name__ == "__main__":
    merge() if "--merge" in sys.argv else run_part()
