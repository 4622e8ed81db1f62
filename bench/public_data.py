"""The public labeled text sets in ``../shared/data`` (read in place, never copied), the demo data,
and their all-MiniLM-L6-v2 embeddings (cached under .labelops/bench-cache between runs).

Texts are deduplicated before anything else, so no text is in both a pool and a test set.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from bench._env import REPO

DATA = Path(os.environ.get("LABELOPS_SHARED_DATA", REPO.parent / "shared" / "data"))
CACHE = REPO / ".labelops" / "bench-cache"


def _dedup(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """First occurrence of each text; a text seen with two labels is dropped (it cannot be scored)."""
    labels: dict[str, set[str]] = {}
    order: list[str] = []
    for text, label in rows:
        key = text.strip()
        if key not in labels:
            labels[key] = set()
            order.append(key)
        labels[key].add(label)
    return [(t, next(iter(labels[t]))) for t in order if len(labels[t]) == 1 and t]


def sentiment() -> tuple[list[str], list[str], list[str]]:
    """UCI Sentiment Labelled Sentences (amazon, imdb, yelp): texts, labels, label names."""
    rows = []
    folder = DATA / "sentiment_labelled_sentences"
    for name in ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"):
        data = (folder / name).read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("iso-8859-1")
        for line in text.splitlines():
            if "\t" in line:
                sentence, _, label = line.rpartition("\t")
                if label.strip() in ("0", "1"):
                    rows.append((sentence.strip(), "positive" if label.strip() == "1" else "negative"))
    kept = _dedup(rows)
    return [t for t, _ in kept], [label for _, label in kept], ["negative", "positive"]


def sms_spam() -> tuple[list[str], list[str], list[str]]:
    """UCI SMS Spam Collection: texts, labels, label names."""
    rows = []
    for line in (DATA / "sms_spam_collection" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[1:]:
        label, _, text = line.partition("\t")
        if label in ("ham", "spam"):
            rows.append((text, label))
    kept = _dedup(rows)
    return [t for t, _ in kept], [label for _, label in kept], ["ham", "spam"]


def demo(n: int = 3000) -> tuple[list[str], list[str], list[str]]:
    """The platform's generated demo notes with their true labels."""
    from include.demo.texts import DEMO_LABELS, generate_demo_texts

    kept = _dedup([(t.text, t.true_label) for t in generate_demo_texts(n, seed=2026)])
    return [t for t, _ in kept], [label for _, label in kept], list(DEMO_LABELS)


DATASETS = {"sentiment": sentiment, "sms_spam": sms_spam, "demo": demo}


def load(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(embeddings (n, 384), label indices, label names, texts) of a dataset."""
    texts, labels, names = DATASETS[name]()
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cached = CACHE / f"{name}-{digest}.npy"
    if cached.exists():
        x = np.load(cached)
    else:
        from include.ml.embeddings.backends import SentenceTransformerEmbedder

        x = SentenceTransformerEmbedder().embed(texts)
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(cached, x)
    y = np.asarray([names.index(label) for label in labels], dtype=np.int64)
    return x, y, names, texts
