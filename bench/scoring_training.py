"""Scoring 1,000,000 items of 384-d with a trained head, plus choosing a diverse batch and a cold
start over them (goal: under 10 s on CPU), and one training epoch over 100,000 items, on the CPU
and (where present) CUDA.

Baselines in the same process: a bare matrix product over the same embeddings (what the
hardware does without the head, softmax and scoring), and reading the data once.
"""

from __future__ import annotations

import os
import time

import numpy as np

from bench._env import save, timed

N_SCORE = int(os.environ.get("BENCH_SCORE_N", "1000000"))
N_TRAIN = int(os.environ.get("BENCH_TRAIN_N", "100000"))
DIM = 384


def data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    centers = rng.normal(size=(2, DIM)).astype(np.float32)
    x = centers[y] * 0.3 + rng.normal(size=(n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y.astype(np.int64)


def main() -> None:
    import torch

    from include.ml.batch import diverse_batch, representatives
    from include.ml.scoring import priority, uncertainty
    from include.ml.training.train import TrainParams, train_head

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    x_small, y_small = data(5_000, 1)
    head = train_head(x_small, y_small, ["OK", "NG"], "bench", TrainParams(kind="mlp", epochs=5)).head
    x, _ = data(N_SCORE, 2)

    scoring = {}
    for device in devices:
        head.predict_proba(x[:10_000], device=device)  # warm-up
        weight = head.module[0].weight.detach().cpu().numpy().T.copy()
        if device == "cpu":
            base_s, _ = timed(lambda w=weight: x @ w)  # the first layer alone, as numpy
        else:
            xt = torch.from_numpy(x).cuda()
            wt = torch.from_numpy(weight).cuda()
            torch.cuda.synchronize()
            base_s, _ = timed(lambda a=xt, b=wt: (a @ b, torch.cuda.synchronize()))
        started = time.perf_counter()
        probs = head.predict_proba(x, device=device)
        predict_s = time.perf_counter() - started
        unc = uncertainty(probs, "least_confidence")
        prio = priority(unc)
        total_s = time.perf_counter() - started
        assert probs.shape == (N_SCORE, 2) and prio.shape == (N_SCORE,)
        # Batch selection on top of the scores: a diverse batch of 100 (k-means over the 1,000 most
        # uncertain) and a cold start of 100 representatives (k-means over a 20,000 sample).
        diverse_s, batch = timed(lambda u=unc: diverse_batch(x, u, 100, seed=0))
        cold_s, reps = timed(lambda: representatives(x, 100, seed=0))
        assert len(batch) == 100 and len(reps) == 100
        scoring[device] = {
            "items": N_SCORE,
            "diverse_batch_100_s": diverse_s,
            "cold_start_100_s": cold_s,
            "score_plus_diverse_batch_s": total_s + diverse_s,
            "predict_s": predict_s,
            "score_total_s": total_s,
            "first_layer_matmul_baseline_s": base_s,
            "ratio_total_over_matmul": total_s / base_s,
            "items_per_s": N_SCORE / total_s,
        }

    training = {}
    x_train, y_train = data(N_TRAIN, 3)
    for device in devices:
        epoch_times: list[float] = []
        params = TrainParams(kind="mlp", epochs=3, batch_size=256, patience=10)
        result = train_head(
            x_train,
            y_train,
            ["OK", "NG"],
            "bench",
            params,
            device=device,
            on_epoch=lambda r, times=epoch_times: times.append(r.seconds),
        )
        copy_s, _ = timed(lambda dev=device: torch.from_numpy(x_train).to(dev).sum().item())
        training[device] = {
            "items": N_TRAIN,
            "train_items": len(result.train_idx),
            "batch_size": 256,
            "epoch_s": epoch_times,
            "median_epoch_s": float(np.median(epoch_times)),
            "data_to_device_baseline_s": copy_s,
            "val_f1": result.metrics["f1"],
        }
    # The default head on 100,000 labels: C chosen on a 20,000 sample (110 fits), one fit on all.
    logistic_s, fitted = timed(lambda: train_head(x_train, y_train, ["OK", "NG"], "bench", TrainParams()))
    logistic = {"items": N_TRAIN, "seconds": logistic_s, "chosen_c": fitted.metrics["C"], "cv_f1": fitted.metrics["f1"]}
    save(
        "scoring_training",
        {
            "dimension": DIM,
            "scoring": scoring,
            "training_epoch": training,
            "default_logistic_head": logistic,
            "goals": {"score_1M_cpu_s": "< 10"},
        },
    )


if __name__ == "__main__":
    main()
