"""How often does a gate promote a model that is not better, and how often does it catch one that is?

On the two public sets (sentiment sentences, SMS spam; deduplicated) and the demo data, each split
once into a train pool (35 %), an evaluation pool (25 %) and a large independent test set (40 %).
Logistic heads (the platform's own training code) are trained on 20 to 320 labels with three
seeds; a head's *true* quality is its macro F1 on the test set. Every ordered pair of heads is a
(candidate, incumbent) comparison whose true difference is known.

Rules compared, per evaluation-set size (50/100/200/400 items drawn from the evaluation pool):

* ``old``: the platform's previous rule: candidate F1 > incumbent F1 on the candidate's own
  validation split (20 % of its labels, which the incumbent may have trained on);
* ``old_on_eval``: F1 > F1 on the frozen evaluation sample (no leak, no notion of noise);
* ``gate``: the new gate (paired bootstrap, 2,000 resamples, promote when the 90 % interval's lower
  end is above 0).

Reported: the false-promotion rate (promoted although the true difference is <= 0) and the power
(promoted when the candidate is truly >= 3 macro-F1 points better). Goals: false promotions
<= 5 % at every size; power >= 80 % at 200 evaluation items.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bench._env import save

SIZES = [50, 100, 200, 400]
LABEL_COUNTS = [20, 30, 40, 60, 80, 120, 160, 240, 320]
SEEDS = [0, 1, 2]
DRAWS = int(os.environ.get("BENCH_GATE_DRAWS", "3"))  # evaluation samples per pair and size
BETTER = 0.03


def _split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    a, b = int(0.35 * len(y)), int(0.60 * len(y))
    return order[:a], order[a:b], order[b:]


def _stratified(y: np.ndarray, pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n items of the pool in the pool's label proportions (at least 2 per label)."""
    picked = []
    classes = np.unique(y[pool])
    for c in classes:
        members = pool[y[pool] == c]
        share = max(2, round(n * len(members) / len(pool)))
        picked.append(rng.choice(members, min(share, len(members)), replace=False))
    return np.concatenate(picked)[:n] if sum(len(p) for p in picked) > n else np.concatenate(picked)


def _models(x: np.ndarray, y: np.ndarray, names: list[str], train_pool: np.ndarray) -> list[dict[str, Any]]:
    from include.ml.training.params import TrainParams
    from include.ml.training.train import TrainingDataError, train_head

    models = []
    for count in LABEL_COUNTS:
        for seed in SEEDS:
            rng = np.random.default_rng(1000 * count + seed)
            idx = _stratified(y, train_pool, count, rng)
            try:
                result = train_head(x[idx], y[idx], names, "minilm", TrainParams(kind="logistic", seed=seed))
            except TrainingDataError:
                continue
            models.append(
                {
                    "labels": count,
                    "seed": seed,
                    "head": result.head,
                    "train": set(idx.tolist()),
                    "val": idx[result.val_idx],
                }
            )
    return models


def _run(name: str) -> dict[str, Any]:
    from bench.public_data import load
    from include.ml.gate import decide, macro_f1

    x, y, names, _ = load(name)
    k = len(names)
    train_pool, eval_pool, test = _split(y, 7)
    models = _models(x, y, names, train_pool)
    preds = [m["head"].predict_proba(x, device="cpu").argmax(axis=1) for m in models]
    true_f1 = [macro_f1(y[test], p[test], k) for p in preds]
    rng = np.random.default_rng(11)
    counts: dict[str, dict[str, list[int]]] = {}

    def tally(rule: str, promoted: bool, diff: float) -> None:
        bucket = counts.setdefault(rule, {"fp": [0, 0], "power": [0, 0]})
        if diff <= 0:
            bucket["fp"][0] += promoted
            bucket["fp"][1] += 1
        elif diff >= BETTER:
            bucket["power"][0] += promoted
            bucket["power"][1] += 1

    pairs = [(c, i) for c in range(len(models)) for i in range(len(models)) if c != i]
    for c, i in pairs:
        diff = true_f1[c] - true_f1[i]
        val = models[c]["val"]
        old = macro_f1(y[val], preds[c][val], k) > macro_f1(y[val], preds[i][val], k)
        tally("old", bool(old), diff)
        for n in SIZES:
            for draw in range(DRAWS):
                sample = _stratified(y, eval_pool, n, rng)
                ys = y[sample]
                naive = macro_f1(ys, preds[c][sample], k) > macro_f1(ys, preds[i][sample], k)
                tally(f"old_on_eval@{n}", bool(naive), diff)
                verdict = decide(
                    ys, names, preds[c][sample], preds[i][sample], min_eval_per_label=1, seed=draw * 7919 + c * 31 + i
                )
                tally(f"gate@{n}", verdict.promoted, diff)
    rates = {
        rule: {
            "false_promotion_rate": round(v["fp"][0] / max(v["fp"][1], 1), 4),
            "power": round(v["power"][0] / max(v["power"][1], 1), 4),
            "comparisons_not_better": v["fp"][1],
            "comparisons_3pt_better": v["power"][1],
        }
        for rule, v in counts.items()
    }
    return {
        "items": len(y),
        "models": len(models),
        "pairs": len(pairs),
        "test_items": len(test),
        "true_macro_f1_range": [round(min(true_f1), 4), round(max(true_f1), 4)],
        "rates": rates,
    }


def main() -> None:
    results = {name: _run(name) for name in ("sentiment", "sms_spam", "demo")}
    summary = {
        f"{name}/{rule}": (r["false_promotion_rate"], r["power"])
        for name, res in results.items()
        for rule, r in res["rates"].items()
    }
    worst_fp = max(
        r["false_promotion_rate"]
        for res in results.values()
        for rule, r in res["rates"].items()
        if rule.startswith("gate")
    )
    power_200 = min(res["rates"]["gate@200"]["power"] for res in results.values())
    save(
        "gate",
        {
            "datasets": results,
            "summary_false_promotion_and_power": summary,
            "gate_worst_false_promotion_rate": worst_fp,
            "gate_min_power_at_200": power_200,
            "goals": {"false_promotion_rate_max": 0.05, "power_at_200_min": 0.8},
            "draws_per_pair_and_size": DRAWS,
        },
    )


if __name__ == "__main__":
    main()
