"""The data-in-and-out API and pages: de-identification (seed 003's deidentify:test), reveals,
the quality gate, overlap and agreement, exports, snapshots and batch-inference requests."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, update

from include.db.models import Item, PiiReveal, QualityReport, Task, TaskStatus
from include.db.session import session_scope
from include.pipelines.catalog import AnyDatasetValues
from include.pipelines.deidentify import run_deidentify
from include.pipelines.runner import RunRef
from include.services import pii
from tests.webapp.conftest import api_token, csrf_token, login, make_app
from tests.webapp.factories import dataset_with_tasks

KEY = Fernet.generate_key().decode()


@pytest.fixture
def keyed(db, users):
    """The app with PII_KEY set, and its test client."""
    return make_app(db, PII_KEY=KEY).test_client()  # not a context manager: it runs beside ``client``


def test_deidentify_test_contract(keyed) -> None:
    admin = api_token(keyed, "admin")
    body = {
        "text": ["张三的手机号是13800138000", "mail a@b.example or call 13800138000"],
        "options": {"locale": "zh-CN", "format": "text", "return_mapping": True, "seed": None},
    }
    answer = keyed.post("/api/v1/deidentify:test", json=body, headers=admin)
    assert answer.status_code == 200, answer.json
    assert answer.json["deidentified"] == ["张三的手机号是<PHONE_1>", "mail <EMAIL_1> or call <PHONE_1>"]
    assert answer.json["policy_version"] == "default-1"
    assert answer.json["mapping"] == [
        {"13800138000": "<PHONE_1>"},
        {"a@b.example": "<EMAIL_1>", "13800138000": "<PHONE_1>"},
    ]
    # without asking: no mapping; annotators may test but never see the mapping
    plain = keyed.post("/api/v1/deidentify:test", json={"text": ["13800138000"]}, headers=admin).json
    assert "mapping" not in plain
    alice = api_token(keyed, "alice")
    assert keyed.post("/api/v1/deidentify:test", json={"text": ["13800138000"]}, headers=alice).status_code == 200
    refused = keyed.post("/api/v1/deidentify:test", json=body, headers=alice)
    assert refused.status_code == 403 and "only admins" in refused.json["error"]
    # a policy of our own, JSON format with spans, and a seed that salts the hash operator
    made = keyed.post(
        "/api/v1/pii/policies", json={"name": "hash phones", "entities": {"PHONE": "hash"}}, headers=admin
    )
    assert made.status_code == 201 and made.json["policy"]["version"] == 1
    pid = made.json["policy"]["id"]
    one = keyed.post(
        "/api/v1/deidentify:test",
        json={"policy_id": pid, "text": ["13800138000"], "options": {"format": "json", "seed": 1}},
        headers=admin,
    ).json
    two = keyed.post(
        "/api/v1/deidentify:test",
        json={"policy_id": pid, "text": ["13800138000"], "options": {"format": "json", "seed": 2}},
        headers=admin,
    ).json
    assert one["policy_version"] == f"{pid}.1"
    (entity,) = one["deidentified"][0]["entities"]
    assert entity["type"] == "PHONE" and entity["start"] == 0 and entity["replacement"].startswith("<PHONE:")
    assert one["deidentified"][0]["text"] != two["deidentified"][0]["text"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"policy_id": 999, "text": ["x"]}, 404, "no de-identification policy 999"),
        ({"text": "not a list of strings", "options": {"format": "xml"}}, 400, "options.format"),
        ({"text": []}, 400, "text must be a list"),
        ({"text": ["x"], "options": {"locale": "fr-FR"}}, 400, "options.locale"),
        ({"text": ["x"], "options": {"colour": 1}}, 400, "unknown option 'colour'"),
        ({"text": ["x"] * 101}, 400, "at most 100 texts"),
    ],
)
def test_deidentify_test_refuses_bad_requests(keyed, body, status, message) -> None:
    answer = keyed.post("/api/v1/deidentify:test", json=body, headers=api_token(keyed, "admin"))
    assert answer.status_code == status and message in answer.json["error"]


def test_hash_without_a_key_is_a_clear_error(db, users) -> None:
    client = make_app(db, PII_KEY=None).test_client()
    admin = api_token(client, "admin")
    pid = client.post(
        "/api/v1/pii/policies", json={"name": "hashing", "entities": {"EMAIL": "hash"}}, headers=admin
    ).json["policy"]["id"]
    answer = client.post("/api/v1/deidentify:test", json={"policy_id": pid, "text": ["a@b.example"]}, headers=admin)
    assert answer.status_code == 400 and "need PII_KEY" in answer.json["error"]


def test_policy_on_a_dataset_reveal_and_audit(db, keyed, monkeypatch) -> None:
    admin = api_token(keyed, "admin")
    dataset_id, task_ids = dataset_with_tasks(db, "private", 3)
    with session_scope(db) as s:
        s.execute(update(Item).where(Item.dataset_id == dataset_id).values(text=Item.text + " 13812345678"))
    pid = keyed.post(
        "/api/v1/pii/policies", json={"name": "phones", "entities": {"PHONE": "placeholder"}}, headers=admin
    ).json["policy"]["id"]
    assert (
        keyed.put(f"/api/v1/datasets/{dataset_id}/pii_policy", json={"policy_id": 77}, headers=admin).status_code == 400
    )
    attached = keyed.put(f"/api/v1/datasets/{dataset_id}/pii_policy", json={"policy_id": pid}, headers=admin)
    assert attached.json["pending"] == 3
    monkeypatch.setenv("PII_KEY", KEY)
    from include.config import load_settings

    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    with session_scope(db) as s:
        item_id = s.scalar(select(Task.item_id).where(Task.id == task_ids[0]))
        assert s.get(Item, item_id).text.endswith(" <PHONE_1>")

    alice = api_token(keyed, "alice")
    assert keyed.post(f"/api/v1/items/{item_id}/reveal", headers=alice).status_code == 403
    with session_scope(db) as s:
        assert s.scalar(select(func.count(PiiReveal.id))) == 0
    shown = keyed.post(f"/api/v1/items/{item_id}/reveal", headers=admin)
    assert shown.status_code == 200 and shown.json["original"].endswith(" 13812345678")
    # the page way: an admin reveals from the task page, the audit log shows both
    login(keyed, "admin")
    page = keyed.get(f"/admin/tasks/{task_ids[0]}/resolve").get_data(as_text=True)
    assert "Reveal the original" in page
    revealed = keyed.post(f"/admin/items/{item_id}/reveal", data={"csrf_token": csrf_token(page)})
    assert revealed.status_code == 200 and "13812345678" in revealed.get_data(as_text=True)
    log = keyed.get("/admin/privacy").get_data(as_text=True)
    assert log.count('data-reveal="item"') == 2 and "admin" in log
    # annotators are refused the page way too, before anything is read
    login(keyed, "alice")
    assert keyed.post(f"/admin/items/{item_id}/reveal", data={"csrf_token": "x"}).status_code == 403


def test_quality_override_thresholds_overlap_and_agreement(db, client) -> None:
    admin = api_token(client, "admin")
    dataset_id, _ = dataset_with_tasks(db, "gated", 4)
    assert (
        client.post(
            f"/api/v1/datasets/{dataset_id}/quality/override", json={"reason": "x" * 20}, headers=admin
        ).status_code
        == 404
    )
    with session_scope(db) as s:
        s.add(
            QualityReport(
                dataset_id=dataset_id,
                passed=False,
                checks={
                    "items": 4,
                    "labeled": 0,
                    "checks": {
                        "duplicates": {
                            "passed": False,
                            "value": 0.5,
                            "threshold": 0.02,
                            "detail": "2 repeat",
                            "examples": [],
                        }
                    },
                },
                thresholds={},
            )
        )
    report = client.get(f"/api/v1/datasets/{dataset_id}/quality", headers=admin).json["report"]
    assert report["passed"] is False and report["failed"] == ["duplicates"] and not report["overridden"]
    short = client.post(f"/api/v1/datasets/{dataset_id}/quality/override", json={"reason": "ok"}, headers=admin)
    assert short.status_code == 400 and "at least 10 characters" in short.json["error"]
    done = client.post(
        f"/api/v1/datasets/{dataset_id}/quality/override",
        json={"reason": "reviewed: deliberate repeats"},
        headers=admin,
    )
    assert done.status_code == 200 and done.json["report"]["overridden"]
    assert done.json["report"]["override_reason"] == "reviewed: deliberate repeats"

    bad = client.put(f"/api/v1/datasets/{dataset_id}/quality/thresholds", json={"min_kappa": 3}, headers=admin)
    assert bad.status_code == 400
    assert (
        client.put(f"/api/v1/datasets/{dataset_id}/quality/thresholds", json={"bogus": 1}, headers=admin).status_code
        == 400
    )
    ok = client.put(f"/api/v1/datasets/{dataset_id}/quality/thresholds", json={"min_kappa": 0.6}, headers=admin)
    assert ok.json["thresholds"]["min_kappa"] == 0.6

    assert (
        client.put(f"/api/v1/datasets/{dataset_id}/overlap", json={"overlap_share": 2}, headers=admin).status_code
        == 400
    )
    assert (
        client.put(f"/api/v1/datasets/{dataset_id}/overlap", json={"overlap_share": 0.1}, headers=admin).json[
            "overlap_share"
        ]
        == 0.1
    )
    figures = client.get(f"/api/v1/datasets/{dataset_id}/agreement", headers=admin).json
    assert figures == {
        "dataset_id": dataset_id,
        "overlap_share": 0.1,
        "overlap_tasks": 0,
        "pairs": [],
        "versus_final": [],
        "fleiss_kappa": None,
    }
    alice = api_token(client, "alice")
    assert client.get(f"/api/v1/datasets/{dataset_id}/agreement", headers=alice).status_code == 403

    login(client, "admin")
    page = client.get(f"/admin/datasets/{dataset_id}/quality").get_data(as_text=True)
    assert "reviewed: deliberate repeats" in page and 'data-check="duplicates"' in page
    for name in ("quality", "lengths", "scripts", "agreement"):
        chart = client.get(f"/admin/datasets/{dataset_id}/quality/{name}.svg")
        assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    assert client.get(f"/admin/datasets/{dataset_id}/quality/nope.svg").status_code == 404
    for tab, section in (("quality-privacy", "privacy"), ("quality-privacy", "quality"),
                         ("quality-privacy", "agreement"), ("labeling", "export")):  # fmt: skip
        assert f'data-testid="{section}"' in client.get(f"/admin/datasets/{dataset_id}/{tab}").get_data(as_text=True)


def test_export_and_snapshots_through_the_api(db, keyed) -> None:
    admin = api_token(keyed, "admin")
    dataset_id, task_ids = dataset_with_tasks(db, "exported", 5)
    empty = keyed.post(f"/api/v1/datasets/{dataset_id}/snapshots", headers=admin)
    assert empty.status_code == 400 and "no labeled tasks" in empty.json["error"]
    with session_scope(db) as s:
        s.execute(update(Task).where(Task.id.in_(task_ids[:3])).values(status=TaskStatus.LABELED, label="OK"))
    got = keyed.get(f"/api/v1/datasets/{dataset_id}/export?format=jsonl", headers=admin)
    assert (
        got.status_code == 200 and got.headers["Content-Disposition"] == 'attachment; filename="exported-labels.jsonl"'
    )
    rows = [json.loads(line) for line in got.get_data(as_text=True).splitlines()]
    assert [r["task_id"] for r in rows] == task_ids[:3]
    assert keyed.get(f"/api/v1/datasets/{dataset_id}/export?format=xlsx", headers=admin).status_code == 400
    alice = api_token(keyed, "alice")
    assert keyed.get(f"/api/v1/datasets/{dataset_id}/export", headers=alice).status_code == 403
    first = keyed.post(f"/api/v1/datasets/{dataset_id}/snapshots", headers=admin)
    assert first.status_code == 201 and first.json["snapshot"]["rows"] == 3
    assert keyed.post(f"/api/v1/datasets/{dataset_id}/snapshots", headers=admin).status_code == 200
    assert len(keyed.get(f"/api/v1/datasets/{dataset_id}/snapshots", headers=admin).json["snapshots"]) == 1
    login(keyed, "admin")
    csv_body = keyed.get(f"/admin/datasets/{dataset_id}/export.csv").get_data(as_text=True)
    assert csv_body.startswith("\ufefftask_id,item_id,text,label") and len(csv_body.splitlines()) == 4
    parquet = keyed.get(f"/admin/datasets/{dataset_id}/export.parquet")
    assert parquet.status_code == 200 and parquet.data[:4] == b"PAR1"
    assert keyed.get(f"/admin/datasets/{dataset_id}/export.xlsx").status_code == 404


def test_originals_export_needs_the_key_and_is_audited(db, keyed, monkeypatch) -> None:
    dataset_id, task_ids = dataset_with_tasks(db, "secret", 2)
    admin = api_token(keyed, "admin")
    pid = keyed.post("/api/v1/pii/policies", json={"name": "all", "entities": {"PHONE": "mask"}}, headers=admin).json[
        "policy"
    ]["id"]
    with session_scope(db) as s:
        s.execute(update(Item).where(Item.dataset_id == dataset_id).values(text=Item.text + " 13812345678"))
        s.execute(update(Task).where(Task.id.in_(task_ids)).values(status=TaskStatus.LABELED, label="NG"))
    keyed.put(f"/api/v1/datasets/{dataset_id}/pii_policy", json={"policy_id": pid}, headers=admin)
    monkeypatch.setenv("PII_KEY", KEY)
    from include.config import load_settings

    run_deidentify(db, RunRef(), load_settings(), AnyDatasetValues(dataset_id=dataset_id))
    masked = keyed.get(f"/api/v1/datasets/{dataset_id}/export?format=jsonl", headers=admin).get_data(as_text=True)
    assert "13812345678" not in masked and "*******5678" in masked
    originals = keyed.get(f"/api/v1/datasets/{dataset_id}/export?format=jsonl&originals=true", headers=admin)
    assert originals.headers["Content-Disposition"].endswith('-originals.jsonl"')
    assert originals.get_data(as_text=True).count("13812345678") == 2
    with session_scope(db) as s:
        assert s.scalars(select(PiiReveal.what)).all() == ["export"]
    # On the page a link cannot reveal them (an image or a link on another site would be a GET
    # with the admin's cookie): only the form's POST, with its CSRF token, does, and is audited.
    login(keyed, "admin")
    linked = keyed.get(f"/admin/datasets/{dataset_id}/export.csv?originals=1")
    assert linked.status_code == 400 and "13812345678" not in linked.get_data(as_text=True)
    page = keyed.get(f"/admin/datasets/{dataset_id}/labeling").get_data(as_text=True)
    assert f'action="/admin/datasets/{dataset_id}/export.csv/originals"' in page
    posted = keyed.post(f"/admin/datasets/{dataset_id}/export.csv/originals")
    assert posted.status_code == 200 and posted.get_data(as_text=True).count("13812345678") == 2
    with session_scope(db) as s:
        assert s.scalars(select(PiiReveal.what)).all() == ["export", "export"]
    # another key than the mappings': refused before the first byte (not a 200 that dies mid-file)
    other = make_app(db, PII_KEY=Fernet.generate_key().decode()).test_client()
    wrong = other.get(f"/api/v1/datasets/{dataset_id}/export?format=csv&originals=true", headers=admin)
    assert wrong.status_code == 503 and "PII_KEY is not the key" in wrong.json["error"]
    # without PII_KEY in the web app, originals are refused (and nothing is audited)
    client = make_app(db, PII_KEY=None).test_client()
    keyless = api_token(client, "admin")
    refused = client.get(f"/api/v1/datasets/{dataset_id}/export?format=csv&originals=1", headers=keyless)
    assert refused.status_code == 503 and "PII_KEY is not set" in refused.json["error"]


def test_inference_requests_are_validated(db, client) -> None:
    admin = api_token(client, "admin")
    gone = client.delete("/api/v1/inference/4242", headers=admin)
    assert gone.status_code == 404 and "no batch-inference run 4242" in gone.json["error"]
    assert client.delete("/api/v1/inference/4242", headers=api_token(client, "alice")).status_code == 403
    dataset_id, _ = dataset_with_tasks(db, "no-model", 2)
    none = client.post("/api/v1/inference", json={"dataset_id": dataset_id}, headers=admin)
    assert none.status_code == 400 and "has no promoted model yet" in none.json["error"]
    assert client.post("/api/v1/inference", json={}, headers=admin).status_code == 400
    upload = client.post(
        "/api/v1/inference", data={"file": (__import__("io").BytesIO(b"text\nhi\n"), "x.csv")}, headers=admin
    )
    assert upload.status_code == 400 and "needs a model_id" in upload.json["error"]
    assert client.get("/api/v1/inference/99", headers=admin).status_code == 404
    login(client, "admin")
    page = client.get("/admin/inference")
    assert page.status_code == 200 and "No trained model yet" in page.get_data(as_text=True)


def test_the_live_loop_setting_from_the_page_and_the_api(db, client) -> None:
    dataset_id, _ = dataset_with_tasks(db, "live-setting", 3)
    admin = api_token(client, "admin")
    state = client.get(f"/api/v1/datasets/{dataset_id}/live-loop", headers=admin).json
    assert (state["retrain_after_labels"], state["new_labels"], state["last_webhook_at"]) == (50, 0, None)
    for bad in ({}, {"retrain_after_labels": 0}, {"retrain_after_labels": "ten"}, {"retrain_after_labels": True}):
        answer = client.put(f"/api/v1/datasets/{dataset_id}/live-loop", json=bad, headers=admin)
        assert answer.status_code == 400 and "retrain_after_labels" in answer.json["error"], bad
    off = client.put(f"/api/v1/datasets/{dataset_id}/live-loop", json={"retrain_after_labels": None}, headers=admin)
    assert off.status_code == 200 and off.json["retrain_after_labels"] is None
    assert (off.json["retune_at_labels"], off.json["retune_mode"]) == (None, "auto")  # on GPU workers only
    assert off.json["next_retune_at_labels"] == 100
    for bad in ({"retune_at_labels": 5}, {"retune_at_labels": "many"}, {"retune_at_labels": -1}):
        answer = client.put(f"/api/v1/datasets/{dataset_id}/live-loop", json=bad, headers=admin)
        assert answer.status_code == 400 and "retune_at_labels" in answer.json["error"], bad
    tune = client.put(f"/api/v1/datasets/{dataset_id}/live-loop", json={"retune_at_labels": 120}, headers=admin)
    assert tune.status_code == 200 and (tune.json["retune_at_labels"], tune.json["retrain_after_labels"]) == (120, None)
    assert (tune.json["next_retune_at_labels"], tune.json["labeled_tasks"]) == (120, 0)  # no encoder tuned yet
    never = client.put(f"/api/v1/datasets/{dataset_id}/live-loop", json={"retune_at_labels": 0}, headers=admin)
    assert (never.json["retune_mode"], never.json["next_retune_at_labels"]) == ("never", None)
    assert (
        client.put(
            f"/api/v1/datasets/{dataset_id}/live-loop",
            json={"retrain_after_labels": 5},
            headers=api_token(client, "alice"),
        ).status_code
        == 403
    )

    login(client, "admin")
    page = client.get(f"/admin/datasets/{dataset_id}/settings").get_data(as_text=True)
    assert 'data-testid="setting-live-loop"' in page and "Off: 0 new labels" in page
    form = {"retrain_after_labels": "25"}  # CSRF is off in these tests (the browser tests keep it on)
    shown = client.post(f"/admin/datasets/{dataset_id}/live-loop", data=form, follow_redirects=True)
    assert "retrains as soon as 25 new labels arrive" in shown.get_data(as_text=True)
    refused = client.post(
        f"/admin/datasets/{dataset_id}/live-loop", data={**form, "retrain_after_labels": "-3"}, follow_redirects=True
    )
    assert refused.status_code == 400 and "Retrain after new labels must be between 1 and 1000000" in refused.get_data(
        as_text=True
    )
    assert client.get(f"/api/v1/datasets/{dataset_id}/live-loop", headers=admin).json["retrain_after_labels"] == 25
    for raw in ("abc", "3"):
        form = {"retune_at_labels": raw}
        refused = client.post(f"/admin/datasets/{dataset_id}/retune", data=form, follow_redirects=True)
        assert "Fine-tune the encoder at labeled tasks must be" in refused.get_data(as_text=True), raw
    never = client.post(f"/admin/datasets/{dataset_id}/retune", data={"retune_at_labels": "0"}, follow_redirects=True)
    assert "never fine-tunes this dataset" in never.get_data(as_text=True)
    assert "Never: heads train on the current encoder" in never.get_data(as_text=True)
    assert client.get(f"/api/v1/datasets/{dataset_id}/live-loop", headers=admin).json["retune_at_labels"] == 0
    auto = client.post(f"/admin/datasets/{dataset_id}/retune", data={"retune_at_labels": ""}, follow_redirects=True)
    assert "Automatic: the loop fine-tunes the encoder at 100 labeled tasks" in auto.get_data(as_text=True)
    assert client.get(f"/api/v1/datasets/{dataset_id}/live-loop", headers=admin).json["retune_mode"] == "auto"


def test_deidentify_test_is_no_oracle(db, keyed) -> None:
    """An annotator cannot confirm what a stored pseudonym stands for: their tries hash with a
    fresh key; and every caller's tries are budgeted (429 with Retry-After)."""
    admin, alice = api_token(keyed, "admin"), api_token(keyed, "alice")
    pid = keyed.post(
        "/api/v1/pii/policies", json={"name": "hash all phones", "entities": {"PHONE": "hash"}}, headers=admin
    ).json["policy"]["id"]
    body = {"policy_id": pid, "text": ["call 13800138000"]}
    as_stored = keyed.post("/api/v1/deidentify:test", json=body, headers=admin).json["deidentified"][0]
    from include.pii.engine import deidentify
    from include.services.pii import key_of

    (pipeline,) = deidentify(["call 13800138000"], {"PHONE": "hash"}, key=key_of(KEY))
    assert as_stored == pipeline.text  # an admin's try shows what the tasks show
    tries = [keyed.post("/api/v1/deidentify:test", json=body, headers=alice).json["deidentified"][0] for _ in range(3)]
    assert all(t.startswith("call <PHONE:") for t in tries)
    assert as_stored not in tries and len(set(tries)) == 3  # a fresh key each time: matches nothing

    spent = 3
    while spent < pii.TRY_BUDGETS[False].limit:
        assert keyed.post("/api/v1/deidentify:test", json=body, headers=alice).status_code == 200
        spent += 1
    refused = keyed.post("/api/v1/deidentify:test", json=body, headers=alice)
    assert refused.status_code == 429 and "at most 30 requests per minute" in refused.json["error"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert keyed.post("/api/v1/deidentify:test", json=body, headers=admin).status_code == 200  # a budget each


def test_a_budget_counts_units_within_its_window(db) -> None:
    from datetime import timedelta

    from include.errors import RateLimited
    from include.services import rate_limit

    budget = rate_limit.Budget("probe", 10, timedelta(seconds=2), "texts")
    with session_scope(db) as s:
        assert rate_limit.spend(s, budget, "u1", 6) == 6
        assert rate_limit.spend(s, budget, "u2", 10) == 10  # its own count
    with pytest.raises(RateLimited, match="at most 10 texts per 2 s") as refused, session_scope(db) as s:
        rate_limit.spend(s, budget, "u1", 5)
    assert 1 <= refused.value.retry_after <= 2
    with session_scope(db) as s:
        assert rate_limit.spend(s, budget, "u1", 4) == 10  # the refused units were not counted
    import time

    time.sleep(2.1)
    with session_scope(db) as s:
        assert rate_limit.spend(s, budget, "u1", 5) == 5  # a new window
