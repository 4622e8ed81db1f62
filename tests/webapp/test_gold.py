"""Hidden gold and annotator performance: gold checks hide in a queue, their answers never become
labels, a weak annotator raises an alert, and everyone sees the figures they may see."""

from __future__ import annotations

import csv
import io

import pytest
from scipy.stats import binomtest
from sqlalchemy import func, select

from include.db.models import (
    Annotation,
    Dataset,
    EvalItem,
    GoldAlert,
    GoldAnswer,
    Item,
    Job,
    LabelOutbox,
    Role,
    Task,
    TaskStatus,
    User,
)
from include.db.session import session_scope
from include.services import gold, review
from include.services.assignment import auto_assign
from include.services.labeling import submit_label
from include.services.task_queries import next_task
from include.services.users import create_user
from tests.webapp.conftest import PASSWORD, api_token, log_in, login
from tests.webapp.factories import dataset_with_tasks


@pytest.mark.parametrize(("correct", "answered"), [(0, 1), (5, 5), (7, 10), (28, 40), (90, 100), (1, 300)])
def test_the_interval_is_scipys_wilson_interval(correct: int, answered: int) -> None:
    expected = binomtest(correct, answered).proportion_ci(0.95, method="wilson")
    assert gold.wilson(correct, answered) == pytest.approx((expected.low, expected.high), abs=1e-9)


def _world(
    db: str, users: dict[str, int], *, gold_items: int = 12, queue: int = 30
) -> tuple[int, list[int], list[int]]:
    """A dataset whose first ``gold_items`` tasks are evaluation items bob labeled and carol
    accepted (gold), and ``queue`` more tasks; returns (dataset id, gold task ids, other task ids)."""
    labels = ["OK", "NG"]
    dataset_id, tasks = dataset_with_tasks(db, "gold", gold_items + queue, priorities=None)
    golden, rest = tasks[:gold_items], tasks[gold_items:]
    with session_scope(db) as s:
        carol = create_user(s, "carol", "carol@labelops.test", PASSWORD, Role.REVIEWER)
        bob = s.get_one(User, users["bob"])
        dataset = s.get_one(Dataset, dataset_id)
        dataset.gold_share, dataset.gold_threshold = 0.25, 0.8
        for k, task_id in enumerate(golden):
            task = s.get_one(Task, task_id)
            task.assigned_to, task.status = bob.id, TaskStatus.ASSIGNED
            submit_label(s, task_id, bob, labels[k % 2])
            s.add(EvalItem(dataset_id=dataset_id, text_hash=s.get_one(Item, task.item_id).text_hash, source="gold"))
        s.flush()
        for k, task_id in enumerate(golden):
            annotation = s.scalar(select(Annotation).where(Annotation.task_id == task_id))
            review.review_annotation(
                s, annotation.id, carol, review.ReviewVerdict(verdict="accept", label_seen=labels[k % 2])
            )
    return dataset_id, golden, rest


def test_gold_checks_hide_in_the_queue_and_their_answers_never_become_labels(db, app, users) -> None:
    dataset_id, golden, rest = _world(db, users)
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        assert gold.pool_size(s, s.get_one(Dataset, dataset_id)) == len(golden)
        assigned = auto_assign(s, dataset_id, alice, 30)
        assert set(assigned) <= set(rest)  # the answer (for the admin) lists real tasks only
        checks = [t for t in golden if gold.is_check(s, t, alice.id)]
    assert len(checks) == 10  # 25 % of her queue: 30 tasks and 10 gold checks
    with app.test_client() as client:
        headers = api_token(client, "alice")
        listed = client.get("/api/v1/annotator/tasks?status=assigned&limit=100", headers=headers).json["tasks"]
        shown = {t["id"]: t for t in listed}
        assert set(shown) == set(assigned) | set(checks)  # gold checks are tasks to do like any other
        assert all(shown[t]["status"] == "assigned" and shown[t]["label"] is None for t in checks)  # no answer leaks
        login(client, "alice")
        page = client.get(f"/me/tasks/{checks[0]}").get_data(as_text=True)
        assert "Your label:" not in page and "badge-labeled" not in page
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        before = {t.id: (t.status, t.label) for t in s.scalars(select(Task).where(Task.id.in_(checks)))}
        for n, task_id in enumerate(checks, start=1):
            known = s.get_one(Task, task_id).label
            submit_label(s, task_id, alice, "NG" if known == "OK" else "OK")  # all wrong
            if n < gold.MIN_ANSWERS:
                assert s.scalar(select(GoldAlert)) is None  # too few answers to judge anyone
        after = {t.id: (t.status, t.label) for t in s.scalars(select(Task).where(Task.id.in_(checks)))}
        assert after == before  # the task's label is untouched
        assert s.scalar(select(func.count()).where(Annotation.annotator_id == alice.id)) == 0
        assert s.scalar(select(func.count()).select_from(LabelOutbox).where(LabelOutbox.user_id == alice.id)) == 0
        answers = s.scalars(select(GoldAnswer).where(GoldAnswer.user_id == alice.id)).all()
        assert len(answers) == 10 and not any(a.correct for a in answers)
        following = next_task(s, alice)
        assert following is not None and following.id not in checks  # answered: off her list
        alert = s.scalar(select(GoldAlert).where(GoldAlert.user_id == alice.id))
        assert alert is not None and alert.answered == 10 and alert.upper < 0.8
        job = s.scalar(select(Job).where(Job.step == "gold_alert"))
        assert (
            "alice's accuracy on" in job.message
            and "10 checked answers" in job.message
            and job.dataset_id == dataset_id
        )


def test_a_good_annotator_raises_no_alert_and_few_answers_raise_none(db, users) -> None:
    dataset_id, golden, _ = _world(db, users)
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        auto_assign(s, dataset_id, alice, 30)
        checks = [t for t in golden if gold.is_check(s, t, alice.id)]
        assert len(checks) == 10
        for k, task_id in enumerate(checks):
            known = s.get_one(Task, task_id).label
            wrong = k == 0  # one miss in ten
            submit_label(s, task_id, alice, ("NG" if known == "OK" else "OK") if wrong else known)
        standing = gold.standing(s, s.get_one(Dataset, dataset_id), alice.id)
        assert (standing.answered, standing.correct) == (10, 9) and not standing.below
        assert s.scalar(select(func.count()).select_from(GoldAlert)) == 0


def test_the_people_tab_the_annotators_own_page_and_the_api(db, app, users) -> None:
    dataset_id, golden, _ = _world(db, users)
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        auto_assign(s, dataset_id, alice, 30)
        for task_id in [t for t in golden if gold.is_check(s, t, alice.id)]:
            submit_label(s, task_id, alice, "NG" if s.get_one(Task, task_id).label == "OK" else "OK", lead_time=3.5)
        real = next_task(s, alice)
        submit_label(s, real.id, alice, "OK", lead_time=12.0)
    with app.test_client() as client:
        login(client, "admin")
        page = client.get(f"/admin/datasets/{dataset_id}/people").get_data(as_text=True)
        assert 'data-testid="performance-table"' in page and 'data-annotator="alice"' in page
        assert 'data-annotator="bob"' in page and "gold-alerts" in page
        for name in ("throughput", "lead-times", "gold", "gold-trend"):
            chart = client.get(f"/admin/datasets/{dataset_id}/people/{name}.svg")
            assert chart.status_code == 200 and chart.mimetype == "image/svg+xml" and b"<svg" in chart.data
        rows = list(
            csv.DictReader(io.StringIO(client.get(f"/admin/datasets/{dataset_id}/people.csv").data.decode("utf-8-sig")))
        )
        figures = {r["username"]: r for r in rows}
        assert figures["alice"]["gold_answered"] == "10" and figures["alice"]["gold_accuracy"] == "0.0000"
        assert figures["alice"]["gold_alert"] == "true" and figures["bob"]["accepted"] == "12"
        dashboard = client.get("/admin/").get_data(as_text=True)
        assert 'data-testid="gold-alert-badge"' in dashboard
        login(client, "alice")
        mine = client.get("/me/performance").get_data(as_text=True)
        assert 'data-annotator="alice"' in mine and 'data-annotator="bob"' not in mine  # only her own
        assert client.get(f"/admin/datasets/{dataset_id}/people").status_code == 403
        own_csv = client.get(f"/me/performance/{dataset_id}.csv").data.decode("utf-8-sig")
        assert "alice" in own_csv and "bob" not in own_csv
        headers = api_token(client, "alice")
        mine_api = client.get(f"/api/v1/annotator/performance?dataset_id={dataset_id}", headers=headers).json
        assert [a["username"] for a in mine_api["annotators"]] == ["alice"]
        assert mine_api["annotators"][0]["lead_p50"] == pytest.approx(12.0)
        admin = api_token(client, "admin")
        everyone = client.get(f"/api/v1/datasets/{dataset_id}/performance", headers=admin).json
        assert {a["username"] for a in everyone["annotators"]} == {"alice", "bob"}
        assert client.get(f"/api/v1/datasets/{dataset_id}/performance", headers=headers).status_code == 403
        # The admin clears the alert after talking to her.
        login(client, "admin")
        with session_scope(db) as s:
            alert_id = s.scalar(select(GoldAlert.id))
        cleared = client.post(f"/admin/datasets/{dataset_id}/gold-alerts/{alert_id}/clear", data={})
        assert cleared.status_code == 302
    with session_scope(db) as s:
        assert gold.open_alerts(s, dataset_id) == []


@pytest.mark.browser
def test_the_people_tab_in_a_browser(db, users, live_url, page) -> None:
    dataset_id, golden, _ = _world(db, users)
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        auto_assign(s, dataset_id, alice, 30)
        for k, task_id in enumerate(t for t in golden if gold.is_check(s, t, alice.id)):
            known = s.get_one(Task, task_id).label
            submit_label(s, task_id, alice, known if k % 2 else ("NG" if known == "OK" else "OK"), lead_time=2.0 + k)
    log_in(page, live_url, "admin")
    page.goto(f"{live_url}/admin/datasets/{dataset_id}/people")
    page.wait_for_selector("[data-testid=performance-table]")
    assert "50 %" in page.inner_text("[data-testid=gold-alice]")
    for name in ("throughput", "lead-times", "gold", "gold-trend"):
        img = page.locator(f"img[data-chart={name}]")
        img.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
