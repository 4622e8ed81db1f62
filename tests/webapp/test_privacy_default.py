"""Privacy by default: every dataset has a decision from its creation on (the platform's
default policy unless its creator chose another or recorded why none is needed), and nothing
reads the texts of a dataset without one."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from include.db.models import Dataset, Item, Job, JobStatus, PiiPolicy
from include.db.session import session_scope
from include.pipelines.catalog import DatasetValues, ImportValues
from include.pipelines.ls_import import run_ls_import
from include.pipelines.quality_check import run_quality_check
from include.pipelines.runner import RunRef
from include.pipelines.training.embedding import embed_dataset
from include.services import pii, privacy
from tests.webapp.conftest import PII_KEY, api_token, login

KEY = PII_KEY.encode()

REASON = "machine logs of the packing line: no names, numbers or addresses"


def _decision(db: str, dataset_id: int) -> tuple[int | None, str | None, int | None]:
    with session_scope(db) as s:
        d = s.get_one(Dataset, dataset_id)
        return d.pii_policy_id, d.pii_exempt_reason, d.pii_decided_by


def test_a_dataset_made_through_the_api_is_de_identified_by_default(db, client, users) -> None:
    admin = api_token(client, "admin")
    made = client.post("/api/v1/datasets", json={"name": "tickets", "demo": 5}, headers=admin)
    assert made.status_code == 201, made.json
    dataset_id = made.json["dataset"]["id"]
    with session_scope(db) as s:
        default = s.scalar(select(PiiPolicy).where(PiiPolicy.is_default))
        assert default.name == "Platform default" and set(default.entities) >= {"PHONE", "EMAIL", "ID_NUMBER"}
        assert pii.pending_count(s, dataset_id) == 5  # waiting for the deidentify step, not raw in Label Studio
    assert _decision(db, dataset_id) == (default.id, None, users["admin"])
    assert made.json["dataset"]["pii_policy_id"] == default.id

    exempt = client.post(
        "/api/v1/datasets",
        json={"name": "machine-logs", "no_personal_data": True, "no_personal_data_reason": REASON},
        headers=admin,
    )
    assert exempt.status_code == 201 and exempt.json["dataset"]["no_personal_data_reason"] == REASON
    assert _decision(db, exempt.json["dataset"]["id"]) == (None, REASON, users["admin"])

    for body, message in (
        ({"no_personal_data": True}, "say why the dataset holds no personal data"),
        ({"no_personal_data": True, "no_personal_data_reason": "none"}, "at least 10 characters"),
        ({"no_personal_data": True, "no_personal_data_reason": REASON, "pii_policy_id": default.id}, "not both"),
        ({"no_personal_data_reason": REASON}, "only with no_personal_data"),
        ({"pii_policy_id": 999}, "no de-identification policy 999"),
    ):
        refused = client.post("/api/v1/datasets", json={"name": "refused-one", **body}, headers=admin)
        assert refused.status_code == 400 and message in refused.json["error"], (body, refused.json)
    with session_scope(db) as s:
        assert s.scalar(select(Dataset).where(Dataset.name == "refused-one")) is None  # nothing half-made


def test_the_new_dataset_form_takes_the_decision(db, client, users) -> None:
    login(client, "admin")
    page = client.get("/admin/datasets/new").get_data(as_text=True)
    assert 'data-testid="new-privacy"' in page and "Platform default (structured data replaced)" in page
    form = {"name": "plant-notes", "labels": "OK, NG", "source": "empty", "text_column": "text"}
    exempt = {**form, "no_personal_data": "true", "no_personal_data_reason": REASON}
    assert client.post("/admin/datasets/new", data=exempt, follow_redirects=True).status_code == 200
    with session_scope(db) as s:
        made = s.scalar(select(Dataset).where(Dataset.name == "plant-notes"))
        assert (made.pii_policy_id, made.pii_exempt_reason, made.pii_decided_by) == (None, REASON, users["admin"])
    tab = client.get(f"/admin/datasets/{made.id}/quality-privacy").get_data(as_text=True)
    assert REASON in tab and "Decided by admin" in tab

    refused = client.post("/admin/datasets/new", data={**form, "name": "x-notes", "no_personal_data": "true"})
    assert refused.status_code == 400 and "say why the dataset holds no personal data" in refused.get_data(as_text=True)
    assert client.post("/admin/datasets/new", data={**form, "name": "default-notes"}).status_code == 302
    with session_scope(db) as s:
        made = s.scalar(select(Dataset).where(Dataset.name == "default-notes"))
        assert made.pii_policy_id == privacy.default_policy(s).id


def test_removing_a_policy_needs_the_reason(db, client, users) -> None:
    admin = api_token(client, "admin")
    dataset_id = client.post("/api/v1/datasets", json={"name": "to-exempt"}, headers=admin).json["dataset"]["id"]
    refused = client.put(f"/api/v1/datasets/{dataset_id}/pii_policy", json={"policy_id": None}, headers=admin)
    assert refused.status_code == 400 and "give no_personal_data_reason" in refused.json["error"]
    done = client.put(
        f"/api/v1/datasets/{dataset_id}/pii_policy",
        json={"policy_id": None, "no_personal_data_reason": REASON},
        headers=admin,
    )
    assert done.status_code == 200 and done.json["privacy"]["no_personal_data_reason"] == REASON
    assert done.json["privacy"]["decided_by"] == "admin" and done.json["privacy"]["decided"] is True


def test_nothing_reads_a_dataset_without_a_decision(db, client, users) -> None:
    """A dataset from before the rule (no policy, no reason) is held back by every reader."""
    admin = api_token(client, "admin")
    dataset_id = client.post(
        "/api/v1/datasets",
        json={"name": "old-one", "demo": 3, "no_personal_data": True, "no_personal_data_reason": REASON},
        headers=admin,
    ).json["dataset"]["id"]
    with session_scope(db) as s:
        s.execute(update(Dataset).where(Dataset.id == dataset_id).values(pii_exempt_reason=None))
        s.execute(update(Item).where(Item.dataset_id == dataset_id).values(pii_status="none"))
    client_not_used = object()  # refused before Label Studio is asked anything
    with pytest.raises(pii.PrivacyUndecided, match="has no privacy decision"):
        run_ls_import(db, client_not_used, RunRef(run_id="one"), ImportValues(dataset_id=dataset_id))  # type: ignore[arg-type]
    nightly = run_ls_import(db, client_not_used, RunRef(run_id="nightly"), ImportValues())  # type: ignore[arg-type]
    assert nightly["imported"] == 0
    with pytest.raises(pii.PrivacyUndecided):
        embed_dataset(db, object(), dataset_id)  # type: ignore[arg-type]
    with pytest.raises(pii.PrivacyUndecided):
        run_quality_check(db, RunRef(run_id="quality"), DatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        jobs = {j.run_id: j for j in s.scalars(select(Job))}
        assert jobs["one"].status == JobStatus.FAILED and "has no privacy decision" in jobs["one"].message
        assert "1 blocked" in jobs["nightly"].message and "old-one" in jobs["nightly"].message
        assert jobs["quality"].status == JobStatus.FAILED
    page = client.get(f"/api/v1/datasets/{dataset_id}", headers=admin).json
    assert page["pii_policy_id"] is None and page["no_personal_data_reason"] is None


def test_an_item_waiting_for_de_identification_is_never_read_for_import(db, client, users) -> None:
    """Even one that arrives after the import checked the dataset (the check and the read race)."""
    from include.services.ls_import import count_pending_items, pending_items

    admin = api_token(client, "admin")
    dataset_id = client.post("/api/v1/datasets", json={"name": "racing", "demo": 4}, headers=admin).json["dataset"][
        "id"
    ]
    with session_scope(db) as s:
        ids = s.scalars(select(Item.id).where(Item.dataset_id == dataset_id).order_by(Item.id)).all()
        s.execute(update(Item).where(Item.id.in_(ids[:2])).values(pii_status="done"))
        assert [i for i, _ in pending_items(s, dataset_id, after_item_id=0, limit=10)] == ids[:2]
        assert count_pending_items(s, dataset_id) == 4  # counted, so the import says it is blocked


def test_while_a_late_policy_runs_nobody_reads_the_old_texts(db, client, users) -> None:
    """A policy attached after import marks the items pending: until de-identification has run
    the annotator's list, the labeling page, plain exports and the ML backend leave them out."""
    from include.db.models import Task, TaskStatus
    from include.services.ml_backend import predict
    from tests.webapp.factories import dataset_with_tasks

    dataset_id, task_ids = dataset_with_tasks(db, "late", 2)
    with session_scope(db) as s:
        for task_id in task_ids:
            task = s.get_one(Task, task_id)
            task.assigned_to, task.status = users["alice"], TaskStatus.ASSIGNED
        s.get_one(Task, task_ids[1]).status, s.get_one(Task, task_ids[1]).label = TaskStatus.LABELED, "OK"
    alice, admin = api_token(client, "alice"), api_token(client, "admin")
    assert len(client.get("/api/v1/annotator/tasks", headers=alice).json["tasks"]) == 2
    with session_scope(db) as s:
        policy = pii.save_policy(s, "phones", {"PHONE": "placeholder"})
        assert privacy.decide(s, s.get_one(Dataset, dataset_id), privacy.Decision(policy.id), None, KEY) == 2
    assert client.get("/api/v1/annotator/tasks", headers=alice).json["tasks"] == []
    labeled = client.post(f"/api/v1/annotator/tasks/{task_ids[0]}/label", json={"label": "OK"}, headers=alice)
    assert labeled.status_code in (400, 409)  # not shown, so not labeled either
    login(client, "alice")
    opened = client.get(f"/me/tasks/{task_ids[0]}")
    assert opened.status_code == 409 and "waiting for de-identification" in opened.get_data(as_text=True)
    assert "late text 0" not in opened.get_data(as_text=True)
    exported = client.get(f"/api/v1/datasets/{dataset_id}/export?format=csv", headers=admin).get_data(as_text=True)
    assert "late text" not in exported and len(exported.splitlines()) == 1  # the header only
    with session_scope(db) as s:
        answer = predict(s, s.get_one(Dataset, dataset_id), [{"data": {"text": "late text 0"}}])
    assert answer.results == [{"result": [], "score": 0.0}]
