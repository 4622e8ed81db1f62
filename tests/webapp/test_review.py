"""The review stage: reviewers accept, fix or reject labels; every verdict is on record; a
rejected task goes back to its annotator; what counts decides which labels train and judge."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from include.db.models import Annotation, Dataset, EvalItem, Item, LabelOutbox, Review, Role, Task, TaskStatus, User
from include.db.session import session_scope
from include.errors import Forbidden
from include.services import eval_set, review, snapshots
from include.services.assignment import auto_assign
from include.services.free_text import PersonalDataInText
from include.services.labeling import submit_label
from include.services.task_queries import next_task
from include.services.users import create_user
from tests.webapp.conftest import PASSWORD, api_token, csrf_token, log_in, login
from tests.webapp.factories import dataset_with_tasks


@pytest.fixture
def carol(db: str, users: dict[str, int]) -> int:
    """A reviewer."""
    with session_scope(db) as s:
        return create_user(s, "carol", "carol@labelops.test", PASSWORD, Role.REVIEWER).id


def _labeled(db: str, name: str, users: dict[str, int], labels: list[str], who: str = "alice") -> tuple[int, list[int]]:
    dataset_id, tasks = dataset_with_tasks(db, name, len(labels), priorities=[900 - 10 * k for k in range(len(labels))])
    with session_scope(db) as s:
        user = s.get_one(User, users[who])
        auto_assign(s, dataset_id, user, len(labels), strategy="top")
        for task_id, label in zip(tasks, labels, strict=True):
            submit_label(s, task_id, user, label)
    return dataset_id, tasks


def _annotation(db: str, task_id: int) -> int:
    with session_scope(db) as s:
        return int(s.scalar(select(Annotation.id).where(Annotation.task_id == task_id)))


def _verdict(db: str, annotation_id: int, reviewer: int, **body: Any) -> Review:
    with session_scope(db) as s:
        record = review.review_annotation(s, annotation_id, s.get_one(User, reviewer), review.ReviewVerdict(**body))
        s.expunge(record)
        return record


def test_accept_fix_and_reject_each_do_what_they_say_and_stay_on_record(db, users, carol) -> None:
    dataset_id, tasks = _labeled(db, "review-verdicts", users, ["OK", "OK", "NG"])
    a0, a1, a2 = (_annotation(db, t) for t in tasks)
    with session_scope(db) as s:
        page = review.queue(s, s.get_one(User, carol), review.ReviewQueueQuery(dataset_id=dataset_id))
        assert [e.annotation_id for e in page.items] == [a0, a1, a2]  # oldest first
        assert page.items[0].annotator == "alice" and page.items[0].label == "OK"
    _verdict(db, a0, carol, verdict="accept", label_seen="OK")
    fixed = _verdict(db, a1, carol, verdict="fix", label_seen="OK", label="NG")
    assert (fixed.verdict, fixed.label_before, fixed.label_after) == ("fixed", "OK", "NG")
    with pytest.raises(review.ReviewError, match="say why"):
        _verdict(db, a2, carol, verdict="reject", label_seen="NG")  # a rejection needs its reason
    _verdict(
        db, a2, carol, verdict="reject", label_seen="NG", comment="the scratch is on the casing: NG is for defects"
    )
    with session_scope(db) as s:
        states = {t.id: (t.status, t.label, t.label_basis) for t in s.scalars(select(Task).where(Task.id.in_(tasks)))}
        entry = s.scalar(select(LabelOutbox).where(LabelOutbox.task_id == tasks[1]))
        records = s.scalars(select(Review).order_by(Review.id)).all()
        assert review.queue(s, s.get_one(User, carol), review.ReviewQueueQuery(dataset_id=dataset_id)).items == []
    assert states[tasks[0]] == (TaskStatus.LABELED, "OK", "reviewed")
    assert states[tasks[1]] == (TaskStatus.LABELED, "NG", "reviewed")  # the fix is the label now
    assert states[tasks[2]] == (TaskStatus.ASSIGNED, None, None)  # to do again
    # The fix goes to Label Studio as the annotator's annotation (a new version of her entry).
    assert (entry.label, entry.version, entry.user_id, entry.ground_truth) == ("NG", 2, users["alice"], False)
    assert [(r.verdict, r.reviewer_id, r.annotator_id) for r in records] == [
        ("accepted", carol, users["alice"]),
        ("fixed", carol, users["alice"]),
        ("rejected", carol, users["alice"]),
    ]


def test_a_rejected_task_comes_back_first_with_the_comment_and_a_new_answer_is_reviewed_again(db, users, carol) -> None:
    _, tasks = _labeled(db, "review-return", users, ["OK", "NG", "OK"])
    annotation = _annotation(db, tasks[2])
    _verdict(db, annotation, carol, verdict="reject", label_seen="OK", comment="read the last sentence again")
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        assert next_task(s, alice).id == tasks[2]  # sent back: first in her list
        (back,) = review.returned_to(s, alice)
        assert (back.task_id, back.label, back.comment, back.reviewer) == (
            tasks[2],
            "OK",
            "read the last sentence again",
            "carol",
        )
        submit_label(s, tasks[2], alice, "OK")  # she insists: the same label goes back for review
        assert review.returned_to(s, alice) == []
        task = s.get_one(Task, tasks[2])
        assert (task.status, task.label, task.label_basis) == (TaskStatus.LABELED, "OK", "single")
        ids = [e.annotation_id for e in review.queue(s, s.get_one(User, carol), review.ReviewQueueQuery()).items]
    assert annotation in ids


def test_a_reviewer_never_judges_blind_twice_or_their_own(db, users, carol) -> None:
    _, tasks = _labeled(db, "review-guards", users, ["OK", "NG"])
    first = _annotation(db, tasks[0])
    with pytest.raises(review.AlreadyReviewed, match="changed"):
        _verdict(db, first, carol, verdict="accept", label_seen="NG")  # the page showed another label
    _verdict(db, first, carol, verdict="accept", label_seen="OK")
    with pytest.raises(review.AlreadyReviewed, match="already accepted"):
        _verdict(db, first, users["admin"], verdict="reject", label_seen="OK", comment="no")
    with pytest.raises(Forbidden):
        _verdict(db, first, users["bob"], verdict="accept", label_seen="OK")  # annotators do not review
    with pytest.raises(review.ReviewError, match="one of"):
        _verdict(db, _annotation(db, tasks[1]), carol, verdict="fix", label_seen="NG", label="MAYBE")
    with pytest.raises(PersonalDataInText):
        _verdict(db, _annotation(db, tasks[1]), carol, verdict="reject", label_seen="NG", comment="ask 13800138000")
    # An admin who labeled (through the admin's own annotation) never sees it in their queue.
    with session_scope(db) as s:
        s.get_one(Annotation, _annotation(db, tasks[1])).annotator_id = users["admin"]
    with session_scope(db) as s:
        assert review.queue(s, s.get_one(User, users["admin"]), review.ReviewQueueQuery()).items == []
    with pytest.raises(review.AnnotationNotFound):
        _verdict(db, _annotation(db, tasks[1]), users["admin"], verdict="accept", label_seen="NG")


def test_the_filters_find_disagreements_model_doubts_flags_and_evaluation_items(db, users, carol) -> None:
    dataset_id, tasks = _labeled(db, "review-filters", users, ["OK", "OK", "NG", "OK"])
    with session_scope(db) as s:
        s.get_one(Task, tasks[1]).prelabel_label = "NG"  # the model disagrees with alice
        s.get_one(Task, tasks[0]).prelabel_label = "OK"  # and agrees here
        item = s.get_one(Item, s.get_one(Task, tasks[3]).item_id)
        s.add(EvalItem(dataset_id=dataset_id, text_hash=item.text_hash, source="sample"))
    with session_scope(db) as s:  # bob labels task 2 differently: a disagreement
        from include.db.models import ExtraAssignee

        s.add(ExtraAssignee(task_id=tasks[2], user_id=users["bob"]))
        s.flush()
        submit_label(s, tasks[2], s.get_one(User, users["bob"]), "OK")
    with session_scope(db) as s:
        reviewer = s.get_one(User, carol)

        def shown(**query: Any) -> list[tuple[int, str | None]]:
            page = review.queue(s, reviewer, review.ReviewQueueQuery(dataset_id=dataset_id, **query))
            return [(e.task_id, e.annotator) for e in page.items]

        assert shown(focus="model") == [(tasks[1], "alice")]
        assert shown(focus="disagreement") == [(tasks[2], "alice"), (tasks[2], "bob")]
        assert shown(focus="evaluation") == [(tasks[3], "alice")]
        assert shown(annotator="bob") == [(tasks[2], "bob")]
        assert shown(label="NG") == [(tasks[2], "alice")]
        entry = review.entry(s, reviewer, _annotation(db, tasks[1]))
        assert entry.model_disagrees and entry.model_label == "NG"
    # A reviewer settles the disagreement by accepting one side.
    with session_scope(db) as s:
        bobs = s.scalar(
            select(Annotation.id).where(Annotation.task_id == tasks[2], Annotation.annotator_id == users["bob"])
        )
    _verdict(db, int(bobs), carol, verdict="accept", label_seen="OK")
    with session_scope(db) as s:
        task = s.get_one(Task, tasks[2])
        assert (task.status, task.label, task.label_basis) == (TaskStatus.LABELED, "OK", "reviewed")


def test_what_counts_keeps_unchecked_labels_out_of_the_evaluation_set_until_reviewed(db, users, carol) -> None:
    labels = ["OK", "NG"] * 10
    dataset_id, tasks = _labeled(db, "review-counts", users, labels)
    with session_scope(db) as s:
        dataset = s.get_one(Dataset, dataset_id)
        assert (dataset.train_labels, dataset.eval_labels) == ("any", "agreed_or_reviewed")  # the defaults
        dataset.eval_fraction, dataset.eval_min_per_label = 0.2, 3
        current = eval_set.refresh(s, dataset)
        members = eval_set.member_task_ids(s, dataset_id)
    assert len(members) >= 6  # chosen from every label, so training leaves them out at once
    assert current.size == 0 and current.waiting == len(members)  # but none judges a model yet
    for task_id in sorted(members)[:4]:
        label = labels[tasks.index(task_id)]
        _verdict(db, _annotation(db, task_id), carol, verdict="accept", label_seen=label)
    with session_scope(db) as s:
        dataset = s.get_one(Dataset, dataset_id)
        current = eval_set.current_set(s, dataset)
        assert (current.size, current.waiting) == (4, len(members) - 4)
        taken = snapshots.take(s, dataset).snapshot
        trained_any = snapshots.training_examples(s, taken.id, dataset.train_labels)
        trained_reviewed = snapshots.training_examples(s, taken.id, "reviewed")
        assert snapshots.verify(s, taken.id)
    assert len(trained_any) == len(tasks) - len(members)  # every label outside the set trains
    assert trained_reviewed == []  # none of those was reviewed
    # A review is part of the snapshot's content: reviewing one more training label makes a new one.
    outside = next(t for t in tasks if t not in members)
    _verdict(db, _annotation(db, outside), carol, verdict="accept", label_seen=labels[tasks.index(outside)])
    with session_scope(db) as s:
        again = snapshots.take(s, s.get_one(Dataset, dataset_id))
        assert again.created and len(snapshots.training_examples(s, again.snapshot.id, "reviewed")) == 1


def test_the_api_and_the_roles(db, app, users, carol) -> None:
    dataset_id, tasks = _labeled(db, "review-api", users, ["OK", "NG"])
    first, second = _annotation(db, tasks[0]), _annotation(db, tasks[1])
    with app.test_client() as client:
        reviewer, alice = api_token(client, "carol"), api_token(client, "alice")
        assert client.get("/api/v1/review/queue", headers=alice).status_code == 403
        assert (
            client.post(f"/api/v1/annotator/tasks/{tasks[0]}/label", json={"label": "OK"}, headers=reviewer).status_code
            == 403
        )
        listed = client.get(f"/api/v1/review/queue?dataset_id={dataset_id}", headers=reviewer).json
        assert [e["annotation_id"] for e in listed["entries"]] == [first, second]
        assert listed["entries"][0]["text"] == "review-api text 0"
        fixed = client.post(
            f"/api/v1/review/annotations/{first}",
            json={"verdict": "fix", "label_seen": "OK", "label": "NG"},
            headers=reviewer,
        )
        assert fixed.status_code == 201 and fixed.json["review"]["label_after"] == "NG"
        stale = client.post(
            f"/api/v1/review/annotations/{first}", json={"verdict": "accept", "label_seen": "OK"}, headers=reviewer
        )
        assert stale.status_code == 409
        bad = client.post(
            f"/api/v1/review/annotations/{second}", json={"verdict": "reject", "label_seen": "NG"}, headers=reviewer
        )
        assert bad.status_code == 400 and "say why" in bad.json["error"]
        client.post(
            f"/api/v1/review/annotations/{second}",
            json={"verdict": "reject", "label_seen": "NG", "comment": "see rule 2"},
            headers=reviewer,
        )
        assert client.get("/api/v1/annotator/returned", headers=alice).json["returned"][0]["comment"] == "see rule 2"
        shown = client.get(f"/api/v1/review/annotations/{first}", headers=reviewer).json
        assert [h["verdict"] for h in shown["history"]] == ["fixed"]
        assert client.get(f"/api/v1/review/annotations/{first}", headers=alice).status_code == 403
        # The export carries what the label rests on and its latest verdict.
        admin = api_token(client, "admin")
        lines = client.get(f"/api/v1/datasets/{dataset_id}/export?format=jsonl", headers=admin).get_data(as_text=True)
        import json

        (row,) = [json.loads(line) for line in lines.splitlines()]
        assert (row["label"], row["label_basis"], row["review"], row["reviewer"]) == (
            "NG",
            "reviewed",
            "fixed",
            "carol",
        )
        login(client, "carol")
        assert client.get("/").headers["Location"].endswith("/review/")  # a reviewer's home


@pytest.mark.browser
def test_the_review_page_is_keyboard_first(db, users, carol, live_url, page) -> None:
    dataset_id, tasks = _labeled(db, "review-page", users, ["OK", "NG", "OK", "NG"])
    with session_scope(db) as s:
        dataset = s.get_one(Dataset, dataset_id)
        dataset.guidelines = "## OK\nNo visible defect.\n\n## NG\nAny scratch, dent or stain."
        dataset.guidelines_version = 1
        s.get_one(Task, tasks[0]).prelabel_label = "NG"
    log_in(page, live_url, "carol")
    page.goto(f"{live_url}/review/?dataset_id={dataset_id}")
    assert page.locator("[data-testid=review-table] tbody tr").count() == 4
    page.click("[data-testid=start-review]")
    page.wait_for_selector("[data-testid=review-form]")
    assert page.inner_text("[data-testid=reviewed-label]").startswith("alice chose OK")
    assert "NG" in page.inner_text("[data-testid=model-view]")
    page.keyboard.press("g")
    assert page.locator("#guidelines-panel").get_attribute("open") is not None
    page.keyboard.press("1")  # fix: the only other label, NG
    page.wait_for_selector(".flash-success:has-text('Fixed: OK → NG')")
    assert "alice chose NG" in page.inner_text("[data-testid=reviewed-label]")  # the next one
    page.keyboard.press("a")
    page.wait_for_selector(".flash-success:has-text('Accepted')")
    page.keyboard.press("r")  # the comment field, then Enter rejects
    page.keyboard.press("Enter")  # an empty comment does not send
    assert "needed" in (page.get_attribute("#review-comment", "class") or "")
    page.keyboard.type("the label list says stains are NG")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash-info:has-text('Rejected')")
    page.keyboard.press("n")  # pass over the last one
    page.wait_for_selector(".flash-success:has-text('Nothing left')")
    with session_scope(db) as s:
        verdicts = [(r.task_id, r.verdict) for r in s.scalars(select(Review).order_by(Review.id))]
    assert verdicts == [(tasks[0], "fixed"), (tasks[1], "accepted"), (tasks[2], "rejected")]
    # Alice finds the task sent back, with the comment, first in her list.
    page.context.clear_cookies()
    log_in(page, live_url, "alice")
    page.goto(f"{live_url}/me/tasks")
    assert "stains are NG" in page.inner_text("[data-testid=returned]")
    page.goto(f"{live_url}/me/next")
    assert "stains are NG" in page.inner_text("[data-testid=returned-note]")
    assert page.url.endswith(f"/me/tasks/{tasks[2]}")


def test_a_page_post_without_csrf_is_refused(db, users, carol) -> None:
    from tests.webapp.conftest import make_app

    _, tasks = _labeled(db, "review-csrf", users, ["OK"])
    app = make_app(db, WTF_CSRF_ENABLED=True)
    with app.test_client() as client:
        token = csrf_token(client.get("/login").get_data(as_text=True))
        client.post("/login", data={"username": "carol", "password": PASSWORD, "csrf_token": token})
        annotation = _annotation(db, tasks[0])
        page = client.get(f"/review/annotations/{annotation}").get_data(as_text=True)
        assert (
            client.post(f"/review/annotations/{annotation}", data={"verdict": "accept", "label_seen": "OK"}).status_code
            == 400
        )
        done = client.post(
            f"/review/annotations/{annotation}",
            data={"verdict": "accept", "label_seen": "OK", "csrf_token": csrf_token(page)},
        )
        assert done.status_code == 302


def test_a_reviewer_sees_and_resolves_flagged_tasks(db, app, users, carol) -> None:
    from include.db.models import TaskFlag
    from include.services import flags

    dataset_id, tasks = dataset_with_tasks(db, "review-flags", 2)
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        auto_assign(s, dataset_id, alice, 2, strategy="top")
        flags.flag_task(s, tasks[0], alice, flags.FlagRequest(kind="guideline_unclear", note="scratch or dent?"))
        flags.flag_task(s, tasks[1], alice, flags.FlagRequest(kind="skip"))  # a skip holds nothing
    with app.test_client() as client:
        login(client, "carol")
        page = client.get(f"/review/?dataset_id={dataset_id}").get_data(as_text=True)
        assert 'data-testid="held-tasks"' in page and "scratch or dent?" in page and "review-flags text 0" in page
        assert "review-flags text 1" not in page
        with session_scope(db) as s:
            flag_id = s.scalar(select(TaskFlag.id).where(TaskFlag.task_id == tasks[0]))
        done = client.post(f"/review/flags/{flag_id}/resolve?dataset_id={dataset_id}", data={})
        assert done.status_code == 302 and done.headers["Location"].endswith(f"/review/?dataset_id={dataset_id}")
        login(client, "alice")
        assert client.post(f"/review/flags/{flag_id}/resolve", data={}).status_code == 403
    with session_scope(db) as s:
        assert s.get_one(TaskFlag, flag_id).resolved_by == carol
