"""SetFit-style contrastive fine-tuning of a sentence encoder on a few hundred labels.

A frozen encoder caps what any head can reach (on the sentiment sentences, random labels were at
98.5 % of the frozen full-pool ceiling by 400 labels). SetFit (Tunstall et al. 2022) moves the
encoder instead: pairs of labeled texts, same label -> cosine 1, different labels -> cosine 0,
trained with sentence-transformers' own ``CosineSimilarityLoss``; a plain head is then fitted on
the tuned embeddings.

Why a hand-written loop rather than the ``setfit`` package or ``SentenceTransformerTrainer``:
both need ``datasets`` and ``accelerate`` (and setfit pins transformers ranges of its own) for
what is here pair sampling plus twenty lines of AdamW over the library's loss; the model, the
tokenizer, the loss and the saved format are sentence-transformers' unchanged.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from include.ml.training.params import FinetuneParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneStep:
    """Progress every few steps: the mean contrastive loss since the last record, and the loss on
    pairs of held-out labeled texts (never paired in training)."""

    epoch: int
    step: int
    steps: int
    loss: float
    val_loss: float
    seconds: float


class FinetuneDataError(ValueError):
    """The labeled set cannot make contrastive pairs (fewer than two labels, or one text per label)."""


def contrastive_pairs(y: Sequence[int], iterations: int, max_pairs: int, seed: int) -> list[tuple[int, int, float]]:
    """SetFit's pair sampling: for every text, each iteration one positive (same label, another
    text) and one negative (another label), shuffled and capped at ``max_pairs`` (half of each)."""
    labels = np.asarray(y)
    classes = np.unique(labels)
    by_class = {int(c): np.flatnonzero(labels == c) for c in classes}
    if len(classes) < 2:
        raise FinetuneDataError("fine-tuning needs labeled texts of at least two labels")
    if all(len(members) < 2 for members in by_class.values()):
        raise FinetuneDataError("fine-tuning needs at least two labeled texts of one label")
    rng = np.random.default_rng(seed)
    positives: list[tuple[int, int, float]] = []
    negatives: list[tuple[int, int, float]] = []
    for _ in range(iterations):
        for i, label in enumerate(labels):
            same = by_class[int(label)]
            if len(same) > 1:
                j = int(same[rng.integers(len(same))])
                while j == i:
                    j = int(same[rng.integers(len(same))])
                positives.append((i, j, 1.0))
            other = np.flatnonzero(labels != label)
            negatives.append((i, int(other[rng.integers(len(other))]), 0.0))
    half = max_pairs // 2
    rng.shuffle(positives)
    rng.shuffle(negatives)
    pairs = positives[:half] + negatives[:half]
    rng.shuffle(pairs)
    return pairs


VAL_PAIRS = 256


def finetune(
    model: Any,
    texts: Sequence[str],
    y: Sequence[int],
    params: FinetuneParams,
    *,
    val_texts: Sequence[str] = (),
    val_y: Sequence[int] = (),
    on_step: Callable[[FinetuneStep], None] | None = None,
    every: int = 25,
) -> list[FinetuneStep]:
    """Tune ``model`` (a SentenceTransformer, in place) on the pairs of ``texts``; returns the loss
    records. ``val_texts`` (held out from the pairs) give each record a validation loss.
    ``on_step`` may raise to stop training (the model keeps the steps done so far)."""
    import torch
    from sentence_transformers.losses import CosineSimilarityLoss
    from sentence_transformers.util import batch_to_device
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(params.seed)
    pairs = contrastive_pairs(y, params.pair_iterations, params.max_pairs, params.seed)
    loss_fn = CosineSimilarityLoss(model)
    val_pairs: list[tuple[int, int, float]] = []
    if len(set(val_y)) > 1:
        rounds = max(1, -(-VAL_PAIRS // (2 * len(val_y))))
        val_pairs = contrastive_pairs(val_y, rounds, VAL_PAIRS, params.seed + 1)

    # sentence-transformers 6 renamed tokenize() to preprocess(); older releases have only tokenize().
    features = getattr(model, "preprocess", None) or model.tokenize

    def pair_loss(source: Sequence[str], batch: Sequence[tuple[int, int, float]]) -> Any:
        left = batch_to_device(features([source[a] for a, _, _ in batch]), model.device)
        right = batch_to_device(features([source[b] for _, b, _ in batch]), model.device)
        target = torch.tensor([t for _, _, t in batch], dtype=torch.float32, device=model.device)
        return loss_fn([left, right], target)

    def validation_loss() -> float:
        if not val_pairs:
            return float("nan")
        model.eval()
        with torch.no_grad():
            total = sum(
                float(pair_loss(val_texts, val_pairs[i : i + 64])) * len(val_pairs[i : i + 64])
                for i in range(0, len(val_pairs), 64)
            )
        model.train()
        return total / len(val_pairs)

    optimizer = torch.optim.AdamW(model.parameters(), lr=params.lr)
    steps_per_epoch = -(-len(pairs) // params.batch_size)
    total = steps_per_epoch * params.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total * params.warmup), total)
    rng = np.random.default_rng(params.seed)
    records: list[FinetuneStep] = []
    started, window = time.perf_counter(), []
    model.train()
    try:
        step = 0
        for epoch in range(1, params.epochs + 1):
            order = rng.permutation(len(pairs))
            for start in range(0, len(pairs), params.batch_size):
                loss = pair_loss(texts, [pairs[k] for k in order[start : start + params.batch_size]])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                step += 1
                window.append(float(loss.detach()))
                if step % every == 0 or step == total:
                    record = FinetuneStep(
                        epoch, step, total, float(np.mean(window)), validation_loss(), time.perf_counter() - started
                    )
                    window = []
                    records.append(record)
                    if on_step is not None:
                        on_step(record)
    finally:
        model.eval()
    return records


def pack(model: Any) -> tuple[bytes, str]:
    """The model as a gzipped tar of its sentence-transformers folder, and that archive's SHA-256."""
    with tempfile.TemporaryDirectory(prefix="labelops-encoder-") as tmp:
        model.save(tmp)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for path in sorted(Path(tmp).rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=str(path.relative_to(tmp)))
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def unpack(data: bytes, folder: Path) -> Path:
    """Extract an archive from :func:`pack` into ``folder`` (created; the caller owns it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")
    return folder
