"""The sentence encoder on CPU: torch (sentence-transformers' ``encode``) against ONNX Runtime fp32
and int8 (include/ml/embeddings/onnx.py), the same texts, same process, alternating order.

Per set (the demo notes, the sentiment sentences, the SMS messages; deduplicated): texts/s of
each runtime, its ratio to torch, and the cosine of its vectors to the torch ones (min, 1st
percentile, mean). Goals: ONNX >= 2x torch, cosine >= 0.99. The one-off export and quantisation
times are recorded too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np

from bench._env import save, scratch, setup_airflow_env


def _rate(fn: Any, texts: list[str]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = fn(texts)
    return len(texts) / (time.perf_counter() - started), np.asarray(vectors)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embed_runtime")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=3000, help="texts per set (deduplicated, first N)")
    args = parser.parse_args(sys.argv[1:] if __name__ == "__main__" else [])  # python -m bench: defaults
    setup_airflow_env()

    from bench import public_data
    from include.ml.embeddings import onnx
    from include.ml.embeddings.backends import SentenceTransformerEmbedder

    torch_embedder = SentenceTransformerEmbedder(runtime="torch")
    model = torch_embedder.sentence_transformer()
    cache = scratch() / "onnx"
    started = time.perf_counter()
    fp32 = onnx.encoder_for(model, cache)
    export_s = time.perf_counter() - started
    started = time.perf_counter()
    int8 = onnx.encoder_for(model, cache, quantized=True)
    quantize_s = time.perf_counter() - started
    runtimes = {
        "torch": lambda texts: model.encode(
            texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ),
        "onnx": lambda texts: fp32.encode(texts, 128),
        "onnx-int8": lambda texts: int8.encode(texts, 128),
    }
    sets: dict[str, Any] = {}
    for name in ("demo", "sentiment", "sms_spam"):
        texts = public_data.DATASETS[name]()[0][: args.limit]
        for fn in runtimes.values():
            fn(texts[:128])  # warm-up
        rates: dict[str, list[float]] = {k: [] for k in runtimes}
        vectors: dict[str, np.ndarray] = {}
        for r in range(args.rounds):
            order = list(runtimes) if r % 2 == 0 else list(reversed(runtimes))
            for runtime in order:
                rate, vectors[runtime] = _rate(runtimes[runtime], texts)
                rates[runtime].append(rate)
        row: dict[str, Any] = {"texts": len(texts)}
        for runtime in runtimes:
            row[runtime] = {"texts_per_s": statistics.median(rates[runtime]), "rounds": rates[runtime]}
            if runtime != "torch":
                cosine = (vectors[runtime] * vectors["torch"]).sum(axis=1)
                row[runtime] |= {
                    "ratio_vs_torch": statistics.median(
                        a / b for a, b in zip(rates[runtime], rates["torch"], strict=True)
                    ),
                    "cosine_min": float(cosine.min()),
                    "cosine_p1": float(np.percentile(cosine, 1)),
                    "cosine_mean": float(cosine.mean()),
                }
        sets[name] = row
        print(name, {k: row[k] if k == "texts" else round(row[k]["texts_per_s"]) for k in row}, flush=True)
    save(
        "embed_runtime",
        {
            "model": torch_embedder.name,
            "export_s": export_s,
            "quantize_s": quantize_s,
            "sets": sets,
            "goals": {"ratio_vs_torch": ">= 2", "cosine": ">= 0.99"},
        },
    )


if __name__ == "__main__":
    main()
