"""Does the int8 encoder learn as well? The active-learning curves of bench/active_learning.py on
torch vectors and on ONNX int8 vectors of the same texts, same splits, same seeds.

Per set and strategy (``random``, ``top``): macro F1 after each round of 20 labels (20..400), mean
over the seeds, for both runtimes; the largest gap between the two mean curves, and the
seed-to-seed spread (the mean standard deviation across seeds) it is measured against. Also the
labels the ``top`` curve needs to reach random's target, as bench/active_learning.py counts them.
``BENCH_AL_SEEDS=3`` narrows a run (default: the five seeds of bench/active_learning.py).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bench._env import save, scratch, setup_airflow_env

STRATEGIES = ("random", "top")


def main() -> None:
    setup_airflow_env()
    from bench import active_learning as al
    from include.ml.embeddings import onnx
    from include.ml.embeddings.backends import SentenceTransformerEmbedder

    seeds = al.SEEDS[: int(os.environ.get("BENCH_AL_SEEDS", len(al.SEEDS)))]
    model = SentenceTransformerEmbedder(runtime="torch").sentence_transformer()
    int8 = onnx.encoder_for(model, scratch() / "onnx", quantized=True)
    sizes = list(range(al.START, al.BUDGET + 1, al.STEP))
    torch_embed = al.embed
    results: dict[str, Any] = {}
    for name in ("sentiment", "sms", "demo"):
        data = {"torch": al.dataset(name)}
        al.embed = lambda _name, texts: int8.encode(list(texts))  # type: ignore[assignment]
        try:
            data["onnx-int8"] = al.dataset(name)
        finally:
            al.embed = torch_embed  # type: ignore[assignment]
        row: dict[str, Any] = {}
        for strategy in STRATEGIES:
            curves = {
                runtime: np.array([al.run_curve(data[runtime], strategy, seed)["f1"] for seed in seeds])
                for runtime in data
            }
            means = {runtime: c.mean(axis=0) for runtime, c in curves.items()}
            spread = float(np.mean([c.std(axis=0).mean() for c in curves.values()]))
            row[strategy] = {
                "mean_f1": {runtime: [round(float(v), 4) for v in m] for runtime, m in means.items()},
                "max_gap": float(np.abs(means["torch"] - means["onnx-int8"]).max()),
                "mean_gap": float((means["onnx-int8"] - means["torch"]).mean()),
                "seed_spread": spread,
            }
        for runtime in data:
            target = float(np.mean(row["random"]["mean_f1"][runtime][-3:]))
            row.setdefault("top_labels_to_random_target", {})[runtime] = al.labels_to_reach(
                np.array(row["top"]["mean_f1"][runtime]), target, sizes
            )
        results[name] = row
        print(
            name,
            {s: (round(row[s]["max_gap"], 4), round(row[s]["seed_spread"], 4)) for s in STRATEGIES},
            row["top_labels_to_random_target"],
            flush=True,
        )
    save("embed_runtime_al", {"seeds": seeds, "sizes": sizes, "sets": results})


if __name__ == "__main__":
    main()
