"""Originals sealed at rest: between an upload and its de-identification nothing original is in
the database in plaintext, nor a hash anyone can confirm one against; a policy attached later
seals what is there, a decision of "no personal data" opens it, a key rotation re-seals it."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import inspect, select, text

from include.config import load_settings
from include.db.models import Dataset, EvalItem, Item
from include.db.session import get_engine, session_scope
from include.pipelines.catalog import AnyDatasetValues, NoValues
from include.pipelines.deidentify import run_deidentify
from include.pipelines.rotate_pii_key import run_rotate_pii_key
from include.pipelines.runner import RunRef
from include.services import pii, privacy, sealing
from include.services.datasets import add_items, create_dataset, parse_upload

PHONE, NAME = "13812345678", "Zhang Wei-Ling"
UPLOAD = f"text,contact,customer\n退货，请回电 {PHONE},{PHONE},{NAME}\nthe screen is cracked,none,nobody\n".encode()


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def dump(db: str) -> str:
    """Every row of every table, as text: what someone with a copy of the database reads."""
    engine = get_engine(db)
    with engine.connect() as conn:
        return "\n".join(
            row
            for table in inspect(engine).get_table_names()
            for row in conn.execute(text(f'SELECT t::text FROM "{table}" t')).scalars()
        )


@pytest.fixture
def key(monkeypatch) -> bytes:
    value = Fernet.generate_key()
    monkeypatch.setenv("PII_KEY", value.decode())
    return value


def _upload(db: str, key: bytes, name: str = "sealed tickets") -> int:
    upload = parse_upload(UPLOAD, "tickets.csv", keep_columns=["contact"])
    with session_scope(db) as s:
        policy = pii.save_policy(s, f"phones {name}", {"PHONE": "placeholder"})
        dataset = create_dataset(
            s, name, labels=["OK", "NG"], keep_columns=["contact"], privacy=privacy.Decision(policy.id)
        )
        report = add_items(s, dataset, upload.rows, key=key)
        assert report.added == 2
        return dataset.id


def test_an_upload_is_sealed_until_de_identified(db, key) -> None:
    dataset_id = _upload(db, key)
    before = dump(db)
    assert PHONE not in before and "退货" not in before and sha(f"退货，请回电 {PHONE}") not in before
    with session_scope(db) as s:
        items = s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        assert [i.text for i in items] == ["", ""] and all(i.sealed for i in items)
        assert items[0].source == {"file": "tickets.csv", "line": 2}  # the kept column is in the seal
        assert sealing.unseal(items[0].sealed, key).kept == {"contact": PHONE}
        # the same text again is still a duplicate: the keyed hash deduplicates as the plain one did
        again = add_items(s, s.get_one(Dataset, dataset_id), [(f"退货，请回电 {PHONE}", {})], key=key)
        assert (again.added, again.duplicates) == (0, 1)
    result = run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    assert result["deidentified"] == 2
    with session_scope(db) as s:
        items = s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        assert [i.text for i in items] == ["退货，请回电 <PHONE_1>", "the screen is cracked"]
        assert [i.sealed for i in items] == [None, None] and items[0].source["contact"] == "<PHONE_1>"
        assert items[1].text_hash == sha("the screen is cracked")  # keyed by the stored text again
    assert PHONE not in dump(db) and NAME not in dump(db)  # only the encrypted mapping holds it


def test_without_the_key_nothing_is_stored(db, key) -> None:
    dataset_id = _upload(db, key)
    with session_scope(db) as s:
        dataset = s.get_one(Dataset, dataset_id)
        with pytest.raises(pii.KeyUnavailable, match="PII_KEY is not set"):
            add_items(s, dataset, [("call 13900000000", {})])
        with pytest.raises(pii.KeyUnavailable, match="another key"):
            sealing.unseal(s.scalars(select(Item.sealed).where(Item.dataset_id == dataset_id)).first(),
                           Fernet.generate_key())  # fmt: skip
        assert s.scalar(select(Dataset.item_count).where(Dataset.id == dataset_id)) == 2


def test_a_policy_attached_later_seals_and_a_decision_of_none_opens(db, key) -> None:
    originals = [f"call me on {PHONE}", "the screen is cracked"]
    with session_scope(db) as s:
        dataset = create_dataset(
            s, "late", labels=["OK", "NG"], privacy=privacy.Decision.none_needed("assumed to hold no personal data")
        )
        add_items(s, dataset, [(t, {}) for t in originals])
        dataset_id = dataset.id
        first = s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)).first()
        s.add(EvalItem(dataset_id=dataset_id, text_hash=first.text_hash, source="sample"))
    assert PHONE in dump(db)  # decided: no personal data, so stored as uploaded
    with session_scope(db) as s:
        policy_id = pii.save_policy(s, "phones", {"PHONE": "placeholder"}).id
    with pytest.raises(pii.KeyUnavailable), session_scope(db) as s:
        privacy.decide(s, s.get_one(Dataset, dataset_id), privacy.Decision(policy_id), None)
    with session_scope(db) as s:
        assert s.get_one(Dataset, dataset_id).pii_policy_id is None  # refused whole: nothing half-sealed
        assert privacy.decide(s, s.get_one(Dataset, dataset_id), privacy.Decision(policy_id), None, key) == 2
    sealed = dump(db)
    assert PHONE not in sealed and sha(originals[0]) not in sealed and sha(originals[1]) not in sealed
    with session_scope(db) as s:
        (member,) = s.scalars(select(EvalItem.text_hash).where(EvalItem.dataset_id == dataset_id)).all()
        first = s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)).first()
        assert member == first.text_hash  # eval membership followed the keyed hash
        reason = privacy.Decision.none_needed("checked again: machine logs only")
        privacy.decide(s, s.get_one(Dataset, dataset_id), reason, None, (key,))
    with session_scope(db) as s:
        items = s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        assert [i.text for i in items] == originals and [i.pii_status for i in items] == ["none", "none"]
        assert [i.text_hash for i in items] == [sha(t) for t in originals] and not any(i.sealed for i in items)
        (member,) = s.scalars(select(EvalItem.text_hash).where(EvalItem.dataset_id == dataset_id)).all()
        assert member == sha(originals[0])


def test_a_rotation_re_seals_and_re_keys(db, key, monkeypatch) -> None:
    dataset_id = _upload(db, key)
    new = Fernet.generate_key()
    monkeypatch.setenv("PII_KEY", new.decode())
    monkeypatch.setenv("PII_KEY_PREVIOUS", key.decode())
    result = run_rotate_pii_key(db, RunRef(), load_settings(), NoValues())
    assert result["resealed"] == 2
    with session_scope(db) as s:
        blobs = s.scalars(select(Item.sealed).where(Item.dataset_id == dataset_id)).all()
        assert {sealing.unseal(b, new).text for b in blobs} == {f"退货，请回电 {PHONE}", "the screen is cracked"}
        with pytest.raises(pii.KeyUnavailable):
            sealing.unseal(blobs[0], key)  # the old key alone opens nothing any more
        again = add_items(s, s.get_one(Dataset, dataset_id), [("the screen is cracked", {})], key=new)
        assert again.duplicates == 1  # re-keyed: still found a duplicate under the new key
    monkeypatch.delenv("PII_KEY_PREVIOUS")
    assert run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))["deidentified"] == 2
