"""After de-identification an item is keyed by its stored text: no hash of an original is
left to confirm by brute force, eval membership follows, and vectors of the original go."""

from __future__ import annotations

import hashlib

from cryptography.fernet import Fernet
from sqlalchemy import inspect, select, text

from include.config import load_settings
from include.db.models import Dataset, EvalItem, Item
from include.db.session import get_engine, session_scope
from include.pipelines.catalog import AnyDatasetValues
from include.pipelines.deidentify import run_deidentify
from include.pipelines.runner import RunRef
from include.services import pii, privacy
from include.services.datasets import add_items, create_dataset
from include.services.vectors import load_vectors, register_model, write_embeddings

ORIGINALS = ["call me on 13800000001", "call me on 13800000002", "the screen is cracked"]


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_items_are_keyed_by_their_stored_text(db, monkeypatch) -> None:
    import numpy as np

    key = Fernet.generate_key()
    monkeypatch.setenv("PII_KEY", key.decode())
    with session_scope(db) as s:
        dataset = create_dataset(s, "rehash", labels=["OK", "NG"], privacy=privacy.Decision.none_needed(
            "assumed free of personal data"))  # fmt: skip
        add_items(s, dataset, [(t, {}) for t in ORIGINALS])
        dataset_id = dataset.id
        items = s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        s.add(EvalItem(dataset_id=dataset_id, text_hash=items[0].text_hash, source="sample"))
        model = register_model(s, "probe-model", "sentence_transformers", "probe", 3)
        write_embeddings(s, model.id, [i.text_hash for i in items], np.ones((3, 3), dtype=np.float32))
        model_id = model.id
    with session_scope(db) as s:
        policy = pii.save_policy(s, "phones", {"PHONE": "placeholder"})
        privacy.decide(s, s.get_one(Dataset, dataset_id), privacy.Decision(policy.id), None, key)
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        items = s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        texts = [i.text for i in items]
        assert texts == ["call me on <PHONE_1>", "call me on <PHONE_1>", "the screen is cracked"]
        hashes = [i.text_hash for i in items]
        assert hashes[0] == sha(texts[0]) and hashes[1] != hashes[0]  # the same text, kept apart
        assert hashes[2] == sha(ORIGINALS[2])  # nothing replaced: unchanged
        (member,) = s.scalars(select(EvalItem.text_hash).where(EvalItem.dataset_id == dataset_id)).all()
        assert member == hashes[0]  # eval membership followed the item
        kept = load_vectors(s, model_id, [sha(ORIGINALS[0]), sha(ORIGINALS[1]), hashes[2]])
        # Every original's vector went when the policy sealed them (nobody knew yet which held
        # personal data); the next embed run computes the de-identified texts' vectors.
        assert set(kept) == set()
    # No hash of an original anywhere in the database.
    engine = get_engine(db)
    with engine.connect() as conn:
        dump = "\n".join(
            row for table in inspect(engine).get_table_names() for row in conn.execute(
                text(f'SELECT t::text FROM "{table}" t')).scalars()
        )  # fmt: skip
    assert sha(ORIGINALS[0]) not in dump and sha(ORIGINALS[1]) not in dump
