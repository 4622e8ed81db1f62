"""PII_KEY has a fingerprint: another key is refused at start, before de-identification writes
and before an originals export sends its first byte, with a message that names the variable."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from include.config import SettingsError, load_settings
from include.db.models import Job, JobStatus, KeyFingerprint
from include.db.session import session_scope
from include.pipelines.catalog import AnyDatasetValues
from include.pipelines.deidentify import run_deidentify
from include.pipelines.runner import RunRef
from include.services import pii
from include.services.datasets import add_items, create_dataset
from include.services.key_check import KeyMismatch, check_pii_key, fingerprint
from include.services.privacy import SYNTHETIC

FIRST, OTHER = Fernet.generate_key(), Fernet.generate_key()


def _policy_dataset(db: str, text: str = "call 13812345678") -> int:
    with session_scope(db) as s:
        policy = pii.save_policy(s, f"phones {text[-4:]}", {"PHONE": "placeholder"})
        dataset = create_dataset(s, f"keyed {text[-4:]}", labels=["OK", "NG"], privacy=SYNTHETIC)
        pii.attach(s, dataset, policy.id)
        add_items(s, dataset, [(text, {})], key=os.environ["PII_KEY"].encode())
        return dataset.id


def test_the_first_key_is_recorded_and_another_is_refused(db) -> None:
    with session_scope(db) as s:
        assert check_pii_key(s, FIRST) == fingerprint(FIRST)
    with session_scope(db) as s:
        assert check_pii_key(s, FIRST) == fingerprint(FIRST)  # the same key: fine, every time
        (row,) = s.scalars(select(KeyFingerprint)).all()
        assert row.fingerprint == fingerprint(FIRST) and FIRST.decode() not in row.fingerprint
    with pytest.raises(KeyMismatch, match="PII_KEY is not the key") as refused, session_scope(db) as s:
        check_pii_key(s, OTHER)
    assert refused.value.status == 503 and refused.value.details["expected"] == fingerprint(FIRST)


def test_a_database_from_before_fingerprints_is_checked_against_its_mappings(db, monkeypatch) -> None:
    monkeypatch.setenv("PII_KEY", FIRST.decode())
    dataset_id = _policy_dataset(db)
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        s.query(KeyFingerprint).delete()  # as an upgraded database has it: mappings, no fingerprint
    with pytest.raises(KeyMismatch, match="does not open the mappings"), session_scope(db) as s:
        check_pii_key(s, OTHER)
    with session_scope(db) as s:
        check_pii_key(s, FIRST)
        assert s.get_one(KeyFingerprint, "PII_KEY").fingerprint == fingerprint(FIRST)


def test_deidentification_writes_nothing_under_another_key(db, monkeypatch) -> None:
    monkeypatch.setenv("PII_KEY", FIRST.decode())
    run_deidentify(db, RunRef(run_id="first"), load_settings(), AnyDatasetValues(dataset_id=_policy_dataset(db)))
    monkeypatch.setenv("PII_KEY", OTHER.decode())
    second = _policy_dataset(db, "call 13912340000")
    with pytest.raises(KeyMismatch):
        run_deidentify(db, RunRef(run_id="second"), load_settings(), AnyDatasetValues(dataset_id=second))
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == "second"))
        assert job.status == JobStatus.FAILED and "PII_KEY is not the key" in job.message
        assert pii.pending_count(s, second) == 1  # still pending, nothing written under the wrong key


def test_the_launcher_stops_naming_the_variable(db) -> None:
    from include.runtime.stack import Launcher

    with session_scope(db) as s:
        check_pii_key(s, FIRST)
    with pytest.raises(SettingsError, match=r"^PII_KEY: expected the key the stored de-identification mappings"):
        Launcher._check_pii_key(SimpleNamespace(env={"PII_KEY": OTHER.decode()}, settings=load_settings({})), db)  # type: ignore[arg-type]
    Launcher._check_pii_key(SimpleNamespace(env={"PII_KEY": FIRST.decode()}, settings=load_settings({})), db)  # type: ignore[arg-type]


def test_a_key_is_rotated_through_the_pipeline_on_record(db, monkeypatch, run_dag) -> None:
    """New key in PII_KEY, old in PII_KEY_PREVIOUS: everything still opens; the pipeline
    re-encrypts every mapping, records the new fingerprint, and the old key alone is refused."""
    from include.db.models import PiiMapping
    from include.pii.mapping import decrypt
    from include.services.key_check import fingerprint as fp

    monkeypatch.setenv("PII_KEY", FIRST.decode())
    dataset_id = _policy_dataset(db, "call 13812340099")
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    monkeypatch.setenv("PII_KEY", OTHER.decode())
    monkeypatch.setenv("PII_KEY_PREVIOUS", FIRST.decode())
    with session_scope(db) as s:
        check_pii_key(s, OTHER, [FIRST])  # a rotation under way: accepted
    dr = run_dag("rotate_pii_key", {})
    from airflow.utils.state import DagRunState

    assert dr.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.run_id == dr.run_id))
        assert job.status == JobStatus.SUCCESS and "re-encrypted 1 mappings" in job.message
        (mapping,) = s.scalars(select(PiiMapping.mapping)).all()
        assert decrypt(mapping, OTHER)[0]["original"] == "13812340099"  # the new key alone opens it
        assert s.get_one(KeyFingerprint, "PII_KEY").fingerprint == fp(OTHER)
    with pytest.raises(KeyMismatch), session_scope(db) as s:
        check_pii_key(s, FIRST)
    monkeypatch.delenv("PII_KEY_PREVIOUS")
    assert run_dag("rotate_pii_key", {}).state == DagRunState.SUCCESS  # nothing to rotate from: skipped
    with session_scope(db) as s:
        jobs = s.scalars(select(Job.status).where(Job.step == "rotate_pii_key").order_by(Job.id)).all()
    assert jobs == [JobStatus.SUCCESS, JobStatus.SKIPPED]
