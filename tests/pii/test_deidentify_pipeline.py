"""De-identification against the real services: PostgreSQL, Label Studio and Airflow's dag.test()."""

from __future__ import annotations

import os

import pytest
from airflow.utils.state import DagRunState
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from include.config import load_settings
from include.db.models import Dataset, Item, Job, JobStatus, PiiReveal, Role, Task
from include.db.session import session_scope
from include.pipelines.catalog import AnyDatasetValues
from include.pipelines.deidentify import run_deidentify
from include.pipelines.ls_import import import_dataset
from include.pipelines.runner import RunRef
from include.pipelines.training.embedding import embed_dataset
from include.services import pii
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC
from include.services.users import create_user

pytestmark = [pytest.mark.airflow, pytest.mark.labelstudio]

TEXTS = [
    "客户王先生来电 13812345678，要求退款到卡 6222 0212 3456 7894",
    "Please email me at jane.doe@example.com or call +86 139 1234 5678",
    "身份证11010519491231002X，订单号13812345679已发货",
    "nothing personal here, the screen is cracked",
]
ORIGINALS = ["13812345678", "6222 0212 3456 7894", "jane.doe@example.com", "+86 139 1234 5678", "11010519491231002X"]
POLICY = {"PHONE": "placeholder", "BANK_CARD": "mask", "EMAIL": "placeholder", "ID_NUMBER": "hash"}


@pytest.fixture
def key(monkeypatch) -> str:
    value = Fernet.generate_key().decode()
    monkeypatch.setenv("PII_KEY", value)
    return value


def _dataset_with_policy(db: str) -> tuple[int, int]:
    with session_scope(db) as s:
        policy = pii.save_policy(s, "customer contact", POLICY)
        dataset = create_dataset(s, "support tickets", labels=["OK", "NG"], privacy=SYNTHETIC)
        assert pii.attach(s, dataset, policy.id) == 0
        add_items(s, dataset, [(t, {}) for t in TEXTS], key=os.environ["PII_KEY"].encode())
        return dataset.id, policy.id


def test_import_waits_for_deidentification_and_label_studio_sees_placeholders(db, ls, run_dag, key) -> None:
    dataset_id, _ = _dataset_with_policy(db)
    with pytest.raises(pii.DeidentificationRequired, match="4 items have not been de-identified"):
        import_dataset(db, ls.client(), dataset_id)
    with pytest.raises(pii.DeidentificationRequired, match="before embedding"):
        embed_dataset(db, object(), dataset_id)  # type: ignore[arg-type]  # refused before the embedder is used

    dr = run_dag("ls_import", {"dataset_id": dataset_id})
    assert dr.state == DagRunState.SUCCESS
    with session_scope(db) as s:
        jobs = {j.step: j for j in s.scalars(select(Job).where(Job.run_id == dr.run_id))}
        assert jobs["deidentify"].status == JobStatus.SUCCESS
        assert jobs["deidentify"].message.startswith("de-identified 4 items: ")
        assert jobs["ls_import"].message == "imported 4 tasks"
        ls_ids = s.scalars(select(Task.ls_task_id).where(Task.dataset_id == dataset_id)).all()
        stored = s.scalars(select(Item.text).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()

    client = ls.client()
    in_ls = [t["data"]["text"] for t in client.tasks_by_id(_project(db, dataset_id), ls_ids)]
    assert sorted(in_ls) == sorted(stored)
    joined = "\n".join(in_ls)
    for original in ORIGINALS:
        assert original not in joined
    assert "客户王先生来电 <PHONE_1>，要求退款到卡 ***************7894" in in_ls
    assert "Please email me at <EMAIL_1> or call <PHONE_1>" in in_ls
    assert any(t.startswith("身份证<ID_NUMBER:") and t.endswith("订单号13812345679已发货") for t in in_ls)
    assert "nothing personal here, the screen is cracked" in in_ls


def _project(db: str, dataset_id: int) -> int:
    from include.db.models import Dataset

    with session_scope(db) as s:
        return int(s.get(Dataset, dataset_id).ls_project_id)


def test_reveal_is_for_admins_and_audited(db, key) -> None:
    dataset_id, _ = _dataset_with_policy(db)
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        admin = create_user(s, "root", "root@labelops.test", "correct-horse-battery", Role.ADMIN)
        alice = create_user(s, "alice", "alice@labelops.test", "correct-horse-battery", Role.ANNOTATOR)
        item_id = s.scalar(select(Item.id).where(Item.dataset_id == dataset_id).order_by(Item.id))
        with pytest.raises(PermissionError):
            pii.reveal(s, item_id, alice, key.encode())
        assert s.scalar(select(func.count(PiiReveal.id))) == 0
        shown = pii.reveal(s, item_id, admin, key.encode())
        assert shown["original"] == TEXTS[0]
        assert {m["original"] for m in shown["mapping"]} == {"13812345678", "6222 0212 3456 7894"}
        (audit,) = s.scalars(select(PiiReveal)).all()
        assert (audit.user_id, audit.item_id, audit.dataset_id, audit.what) == (admin.id, item_id, dataset_id, "item")
        with pytest.raises(pii.PolicyError, match="does not open"):
            pii.reveal(s, item_id, admin, Fernet.generate_key())
        name = s.get_one(Dataset, dataset_id).name
    # The record of what was revealed outlives the dataset.
    with session_scope(db) as s:
        from include.services.deletion import delete_dataset

        delete_dataset(s, None, s.get_one(Dataset, dataset_id))
    with session_scope(db) as s:
        (audit,) = s.scalars(select(PiiReveal)).all()
        assert (audit.dataset_id, audit.dataset_name, audit.item_id, audit.username) == (
            dataset_id, name, item_id, "root"
        )  # fmt: skip
        assert s.get(Dataset, dataset_id) is None


def test_new_items_and_a_changed_policy_go_through_the_same_path(db, key) -> None:
    dataset_id, policy_id = _dataset_with_policy(db)
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        from include.db.models import Dataset

        add_items(s, s.get(Dataset, dataset_id), [("later: 15012345678", {})], key=key.encode())
        assert pii.pending_count(s, dataset_id) == 1
    result = run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    assert result["deidentified"] == 1
    with session_scope(db) as s:
        assert s.scalar(select(Item.text).where(Item.text.like("later:%"))) == "later: <PHONE_1>"
        # masking phones instead: every item starts again from its original, nothing is masked twice
        pii.save_policy(s, "customer contact", {**POLICY, "PHONE": "mask"}, policy_id=policy_id)
        assert pii.pending_count(s, dataset_id) == 5
    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        texts = s.scalars(select(Item.text).where(Item.dataset_id == dataset_id)).all()
        assert "later: *******5678" in texts
        assert "Please email me at <EMAIL_1> or call *************5678" in texts
        assert pii.get_policy(s, policy_id).version == 2


def test_bad_input_gets_clear_errors(db, key, monkeypatch) -> None:
    dataset_id, _ = _dataset_with_policy(db)
    monkeypatch.delenv("PII_KEY", raising=False)
    with session_scope(db) as s:
        from include.db.models import Dataset

        with pytest.raises(pii.KeyUnavailable, match="stored encrypted until de-identified"):
            add_items(s, s.get_one(Dataset, dataset_id), [("one more: 13800000000", {})])
        assert pii.pending_count(s, dataset_id) == len(TEXTS)  # nothing stored
    with pytest.raises(pii.PolicyError, match="PII_KEY is not set"):
        run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        job = s.scalar(select(Job).where(Job.step == "deidentify"))
        assert job.status == JobStatus.FAILED and "PII_KEY is not set" in job.message
        from include.db.models import Dataset

        with pytest.raises(pii.PolicyError, match="no de-identification policy 9999"):
            pii.attach(s, s.get(Dataset, dataset_id), 9999)
        with pytest.raises(pii.PolicyError, match="unknown entity 'SSN'"):
            pii.save_policy(s, "us", {"SSN": "mask"})
        with pytest.raises(pii.PolicyError, match="unknown operator 'shred'"):
            pii.save_policy(s, "us", {"PHONE": "shred"})
        with pytest.raises(pii.PolicyError, match="PERSON in English text needs the LLM recognizer"):
            pii.save_policy(s, "names", {"PERSON": "placeholder"}, locale="en")
        with pytest.raises(pii.PolicyError, match="already exists"):
            pii.save_policy(s, "Customer Contact", {"PHONE": "mask"})
    with pytest.raises(Exception, match="a Fernet key"):
        load_settings({"PII_KEY": "not-a-key"})
