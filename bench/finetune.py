"""Issue 14 goal (c): does fine-tuning the encoder lift sentiment macro-F1 at 200 labels above the
frozen-embedding full-pool ceiling?

Same data and split as bench/active_learning.py (UCI Sentiment Labelled Sentences, deduplicated,
1,000 test sentences, split seed 2026). For each seed, 200 random pool labels; the frozen
all-MiniLM-L6-v2 with the platform's default head on them; then the same 200 labels through
``include.ml.training.finetune`` (SetFit pairs, CosineSimilarityLoss) and the default head on the
tuned embeddings. The reference is the default head on the frozen embeddings of the whole pool
(about 1,970 labels) in the same run, beside the issue's 0.887.

Environment: BENCH_FT_SEEDS (default "11,23,37"), BENCH_FT_ITERATIONS (SetFit's pair iterations,
default 20), BENCH_FT_LABELS (default 200). On a CPU this is minutes per seed: state the device
with the figures.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import numpy as np

from bench._env import RESULTS, save
from bench.active_learning import SPLIT_SEED, TEST_SIZE, embed, load_sentiment

ISSUE_CEILING = 0.887


def _f1(head: Any, x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, head.predict_proba(x, device="cpu").argmax(axis=1), average="macro"))


def main() -> None:
    from sklearn.model_selection import train_test_split

    from include.ml.embeddings.backends import SentenceTransformerEmbedder, torch_device
    from include.ml.training.finetune import FinetuneParams, finetune
    from include.ml.training.train import TrainParams, train_head

    seeds = [int(s) for s in os.environ.get("BENCH_FT_SEEDS", "11,23,37").split(",")]
    iterations = int(os.environ.get("BENCH_FT_ITERATIONS", "20"))
    n_labels = int(os.environ.get("BENCH_FT_LABELS", "200"))
    texts, y = load_sentiment()
    x = embed("sentiment", texts)
    pool, test = train_test_split(
        np.arange(len(y)), test_size=TEST_SIZE["sentiment"], stratify=y, random_state=SPLIT_SEED
    )
    test_texts = [texts[i] for i in test]
    ceiling_head = train_head(x[pool], y[pool], ["0", "1"], "minilm", TrainParams()).head
    ceiling = _f1(ceiling_head, x[test], y[test])
    base = SentenceTransformerEmbedder()
    base.embed(["warm up"])
    device = torch_device()
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        picked = rng.choice(pool, n_labels, replace=False)
        frozen = _f1(
            train_head(x[picked], y[picked], ["0", "1"], "minilm", TrainParams(seed=seed)).head, x[test], y[test]
        )
        encoder = copy.deepcopy(base.sentence_transformer())
        encoder.to(device)
        params = FinetuneParams(pair_iterations=iterations, seed=seed)
        started = time.perf_counter()
        records = finetune(encoder, [texts[i] for i in picked], y[picked].tolist(), params, every=50)
        tune_s = time.perf_counter() - started
        tuned_train = encoder.encode([texts[i] for i in picked], normalize_embeddings=True, convert_to_numpy=True)
        tuned_test = encoder.encode(test_texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=128)
        head = train_head(tuned_train, y[picked], ["0", "1"], "tuned", TrainParams(seed=seed)).head
        tuned = _f1(head, tuned_test, y[test])
        row = {
            "seed": seed,
            "frozen_f1": round(frozen, 4),
            "finetuned_f1": round(tuned, 4),
            "steps": records[-1].steps,
            "final_pair_loss": round(records[-1].loss, 4),
            "tune_s": round(tune_s, 1),
        }
        rows.append(row)
        print(row, flush=True)
    tuned_mean = float(np.mean([r["finetuned_f1"] for r in rows]))
    save(
        "finetune",
        {
            "dataset": "sentiment",
            "device": device,
            "labels": n_labels,
            "pair_iterations": iterations,
            "pairs_per_seed": min(FinetuneParams().max_pairs, 2 * iterations * n_labels),
            "test": len(test),
            "seeds": rows,
            "frozen_at_labels_mean": round(float(np.mean([r["frozen_f1"] for r in rows])), 4),
            "finetuned_at_labels_mean": round(tuned_mean, 4),
            "finetuned_at_labels_std": round(float(np.std([r["finetuned_f1"] for r in rows])), 4),
            "frozen_full_pool_ceiling_this_split": round(ceiling, 4),
            "issue_ceiling": ISSUE_CEILING,
            "goal_c_met": tuned_mean > max(ceiling, ISSUE_CEILING),
        },
    )
    RESULTS.mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    main()
