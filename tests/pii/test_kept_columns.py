"""The columns a dataset keeps beside the text are de-identified with it."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import select

from include.config import load_settings
from include.db.models import Item
from include.db.session import session_scope
from include.pipelines.catalog import AnyDatasetValues
from include.pipelines.deidentify import run_deidentify
from include.pipelines.runner import RunRef
from include.services import pii, privacy
from include.services.datasets import add_items, create_dataset, parse_upload


def test_kept_columns_are_de_identified_and_the_others_never_stored(db, monkeypatch) -> None:
    key = Fernet.generate_key()
    monkeypatch.setenv("PII_KEY", key.decode())
    upload = parse_upload(
        "text,contact,customer_name\n退货，请联系我,13812345678,王小明\n".encode(),
        "tickets.csv",
        keep_columns=["contact"],
    )
    assert upload.dropped_columns == ["customer_name"]
    with session_scope(db) as s:
        policy = pii.save_policy(s, "phones", {"PHONE": "placeholder"})
        dataset = create_dataset(
            s, "kept", labels=["OK", "NG"], keep_columns=["contact"], privacy=privacy.Decision(policy.id)
        )
        add_items(s, dataset, upload.rows, key=key)
        dataset_id = dataset.id
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        (item,) = s.scalars(select(Item).where(Item.dataset_id == dataset_id)).all()
        assert item.pii_status == "done"
        assert item.source == {"file": "tickets.csv", "line": 2, "contact": "<PHONE_1>"}
