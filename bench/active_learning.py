"""Active learning on real data: the default strategy and head against random sampling and scikit-learn.

Three datasets, embedded with the offline all-MiniLM-L6-v2:

* ``sentiment``: UCI Sentiment Labelled Sentences (amazon, imdb, yelp), from ``../shared/data``;
* ``sms``: UCI SMS Spam Collection (13 % spam), from ``../shared/data``;
* ``demo``: the project's generator (5 % label noise, 20 % ambiguous; scored on the true labels).

The public sets are read from ``../shared/data`` (never copied here); exact duplicates are dropped
(and texts seen with both labels) before a stratified, seeded split into a pool and a test set.
Rounds start at 20 labels and add 20 up to 400, with 5 seeds. Strategies:

* ``random``: 20 random labels a round;
* ``top``: the 20 most uncertain (least confidence), after a random start;
* ``diverse`` (auto-assign's ``strategy=diverse``; its default stays ``top``): a cold start
  from cluster representatives, then the most uncertain spread over clusters (``include.ml.batch``).

Each round retrains the platform's default head (``train_head`` with default parameters) and
measures macro F1 on the test set. On the random rounds scikit-learn's ``LogisticRegressionCV``
is fitted on the same labels and embeddings. Full-pool ceilings: the platform's logistic and
MLP heads and ``LogisticRegressionCV``.

Goals: (a) the default strategy reaches random's target (its mean F1 over the last three rounds)
with <= 60 % of random's labels on all three sets; (b) the default head >= LogisticRegressionCV
at every label count, within noise across seeds.

``BENCH_AL_DATASETS=sms,demo`` and ``BENCH_AL_BUDGET`` narrow a run.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from bench._env import REPO, RESULTS, save

DATA = Path(os.environ.get("LABELOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
CACHE = REPO / ".labelops" / "bench-cache"
START, STEP, BUDGET = 20, 20, int(os.environ.get("BENCH_AL_BUDGET", "400"))
SEEDS = [11, 23, 37, 41, 59]
STRATEGIES = ("random", "top", "diverse")
SPLIT_SEED = 2026
TEST_SIZE = {"sentiment": 1000, "sms": 1500, "demo": 1000}


# -- data -------------------------------------------------------------------------------------
def _dedupe(rows: list[tuple[str, int]]) -> tuple[list[str], np.ndarray]:
    seen: dict[str, set[int]] = {}
    for text, label in rows:
        seen.setdefault(text.strip(), set()).add(label)
    kept = [(t, next(iter(labels))) for t, labels in seen.items() if t and len(labels) == 1]
    return [t for t, _ in kept], np.array([label for _, label in kept], dtype=np.int64)


def load_sentiment() -> tuple[list[str], np.ndarray]:
    rows = []
    folder = DATA / "sentiment_labelled_sentences"
    for name in ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"):
        raw = (folder / name).read_bytes()
        text = raw.decode("utf-8") if name != "imdb_labelled.txt" else raw.decode("iso-8859-1")
        for line in text.splitlines():
            sentence, _, label = line.rpartition("\t")
            if label.strip() in ("0", "1"):
                rows.append((sentence, int(label)))
    return _dedupe(rows)


def load_sms() -> tuple[list[str], np.ndarray]:
    lines = (DATA / "sms_spam_collection" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()
    rows = []
    for line in lines[1:]:
        label, _, message = line.partition("\t")
        if label in ("ham", "spam"):
            rows.append((message, int(label == "spam")))
    return _dedupe(rows)


def embed(name: str, texts: list[str]) -> np.ndarray:
    """MiniLM embeddings, cached under .labelops/ by a hash of the texts (never in the repository)."""
    from include.ml.embeddings.backends import SentenceTransformerEmbedder

    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = CACHE / f"{name}-{key}.npy"
    if path.exists():
        return np.load(path)
    x = SentenceTransformerEmbedder().embed(texts)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def dataset(name: str) -> dict[str, Any]:
    """Pool embeddings and labels (what annotators would give) and test embeddings and true labels."""
    from sklearn.model_selection import train_test_split

    if name == "demo":
        from include.demo.texts import generate_demo_texts

        items = generate_demo_texts(3000, seed=2026, noise=0.05, ambiguous=0.2)
        x = embed(name, [t.text for t in items])
        noisy = np.array([0 if t.label == "OK" else 1 for t in items])
        true = np.array([0 if t.true_label == "OK" else 1 for t in items])
        return {"x_pool": x[:2000], "y_pool": noisy[:2000], "x_test": x[2000:], "y_test": true[2000:]}
    texts, y = load_sentiment() if name == "sentiment" else load_sms()
    x = embed(name, texts)
    pool, test = train_test_split(np.arange(len(y)), test_size=TEST_SIZE[name], stratify=y, random_state=SPLIT_SEED)
    return {"x_pool": x[pool], "y_pool": y[pool], "x_test": x[test], "y_test": y[test]}


# -- one curve -----------------------------------------------------------------------------------
def _f1(probs: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, probs.argmax(axis=1), average="macro"))


def sklearn_baseline(x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    """scikit-learn's plain recipe: LogisticRegressionCV, C from its default grid by stratified CV."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    folds = int(min(5, np.bincount(y).min()))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return LogisticRegressionCV(Cs=10, cv=cv, max_iter=2000, use_legacy_attributes=False).fit(x, y)


def run_curve(data: dict[str, Any], strategy: str, seed: int) -> dict[str, list[float]]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from include.ml.batch import diverse_batch, representatives
    from include.ml.scoring import uncertainty
    from include.ml.training.train import TrainingDataError, TrainParams, train_head

    warnings.simplefilter("ignore", ConvergenceWarning)
    x_pool, y_pool, x_test, y_test = data["x_pool"], data["y_pool"], data["x_test"], data["y_test"]
    rng = np.random.default_rng(seed)
    if strategy == "diverse":
        labeled = [int(i) for i in representatives(x_pool, START, seed=seed)]
    else:
        labeled = [int(i) for i in rng.choice(len(x_pool), START, replace=False)]
    curve: dict[str, list[float]] = {"f1": [], "sklearn": []}
    while True:
        idx = np.array(labeled)
        head = None
        try:
            head = train_head(x_pool[idx], y_pool[idx], ["0", "1"], "minilm", TrainParams(seed=seed)).head
            curve["f1"].append(_f1(head.predict_proba(x_test, device="cpu"), y_test))
        except TrainingDataError:  # fewer than two examples of a class so far: no model yet
            curve["f1"].append(0.0)
        if strategy == "random":
            try:
                base = sklearn_baseline(x_pool[idx], y_pool[idx], seed)
                curve["sklearn"].append(_f1(base.predict_proba(x_test), y_test))
            except ValueError:
                curve["sklearn"].append(0.0)
        if len(labeled) >= BUDGET:
            return curve
        remaining = np.setdiff1d(np.arange(len(x_pool)), idx)
        if strategy == "random" or head is None:
            picked = rng.choice(remaining, STEP, replace=False)
        else:
            scores = uncertainty(head.predict_proba(x_pool[remaining], device="cpu"), "least_confidence")
            if strategy == "top":
                picked = remaining[np.argsort(-scores, kind="stable")[:STEP]]
            else:
                picked = remaining[diverse_batch(x_pool[remaining], scores, STEP, seed=seed)]
        labeled.extend(int(i) for i in picked)


def ceilings(data: dict[str, Any]) -> dict[str, float]:
    from include.ml.training.train import TrainParams, train_head

    x, y = data["x_pool"], data["y_pool"]
    out = {}
    for kind in ("logistic", "mlp"):
        head = train_head(x, y, ["0", "1"], "minilm", TrainParams(kind=kind)).head
        out[kind] = round(_f1(head.predict_proba(data["x_test"], device="cpu"), data["y_test"]), 4)
    out["sklearn_logistic_regression_cv"] = round(
        _f1(sklearn_baseline(x, y, 0).predict_proba(data["x_test"]), data["y_test"]), 4
    )
    return out


# -- report --------------------------------------------------------------------------------------
def labels_to_reach(curve: np.ndarray, target: float, sizes: list[int]) -> int | None:
    for size, f1 in zip(sizes, curve, strict=True):
        if f1 >= target:
            return size
    return None


def plot(name: str, sizes: list[int], curves: dict[str, np.ndarray], target: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"diverse": "#4f46e5", "top": "#d97706", "random": "#9ca3af", "sklearn": "#12805c"}
    labels = {
        "diverse": "diverse (default)",
        "top": "top-k uncertainty",
        "random": "random",
        "sklearn": "random + sklearn LogisticRegressionCV",
    }
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for key, runs in curves.items():
        mean, std = runs.mean(axis=0), runs.std(axis=0)
        style = "--" if key == "sklearn" else "-"
        ax.plot(sizes, mean, style, label=f"{labels[key]} ({len(runs)} seeds)", color=colors[key], linewidth=2)
        ax.fill_between(sizes, mean - std, mean + std, color=colors[key], alpha=0.15)
    ax.axhline(target, color="#b54708", linestyle=":", linewidth=1, label=f"target: random's last 3 ({target:.3f})")
    ax.set_xlabel("labels")
    ax.set_ylabel("macro F1 on the test set")
    ax.set_title(f"Active learning on {name}")
    low = min(float(c.mean(axis=0)[2:].min()) for c in curves.values())
    ax.set_ylim(max(0.0, low - 0.05), 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def report(name: str, sizes: list[int], runs: dict[str, np.ndarray], ceiling: dict[str, float]) -> dict[str, Any]:
    target = float(runs["random"].mean(axis=0)[-3:].mean())
    out: dict[str, Any] = {"target_random_last3_mean_f1": round(target, 4), "ceilings_full_pool": ceiling}
    at = {n: sizes.index(n) for n in (100, 200) if n in sizes}
    for key, curves in runs.items():
        mean = curves.mean(axis=0)
        reached = labels_to_reach(mean, target, sizes)
        out[key] = {
            "mean_f1": mean.round(4).tolist(),
            "std_f1": curves.std(axis=0).round(4).tolist(),
            "f1_at": {str(n): round(float(mean[i]), 4) for n, i in at.items()},
            "labels_to_reach_target": reached,
            "share_of_random_labels": round(reached / sizes[-1], 3) if reached else None,
        }
    diff = runs["random"] - runs["sklearn"]  # same labels, same embeddings: head vs head
    se = diff.std(axis=0, ddof=1) / np.sqrt(len(diff))
    out["default_head_minus_sklearn"] = {
        "mean": diff.mean(axis=0).round(4).tolist(),
        "standard_error": se.round(4).tolist(),
        "worst_mean": round(float(diff.mean(axis=0).min()), 4),
        "rounds_below_by_more_than_2se": int(((diff.mean(axis=0) + 2 * se) < 0).sum()),
    }
    return out


def main() -> None:
    names = [n for n in os.environ.get("BENCH_AL_DATASETS", "sentiment,sms,demo").split(",") if n]
    data = {name: dataset(name) for name in names}
    sizes = list(range(START, BUDGET + 1, STEP))
    results: dict[str, dict[str, list[list[float]]]] = {n: {} for n in names}
    for name in names:  # in process: worker pools made each curve many times slower here
        for strategy in STRATEGIES:
            for seed in SEEDS:
                curve = run_curve(data[name], strategy, seed)
                results[name].setdefault(strategy, []).append(curve["f1"])
                if strategy == "random":
                    results[name].setdefault("sklearn", []).append(curve["sklearn"])
                print(name, strategy, seed, np.round(curve["f1"], 3).tolist()[::5], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    for name in names:
        runs = {k: np.array(v) for k, v in results[name].items()}
        summary[name] = report(name, sizes, runs, ceilings(data[name]))
        summary[name]["pool"], summary[name]["test"] = len(data[name]["y_pool"]), len(data[name]["y_test"])
        plot(name, sizes, runs, summary[name]["target_random_last3_mean_f1"], RESULTS / f"active_learning_{name}.png")
        summary[name]["plot"] = f"bench/results/active_learning_{name}.png"
    save(
        "active_learning",
        {
            "seeds": SEEDS,
            "sizes": sizes,
            "datasets": summary,
            "goals": {
                "a": "diverse reaches random's target with <= 0.6 of its labels on every set",
                "b": "default head >= sklearn LogisticRegressionCV at every label count, within noise",
            },
        },
    )


if __name__ == "__main__":
    main()
