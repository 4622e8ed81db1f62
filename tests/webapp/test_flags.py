"""Skip, "not sure" and flag: the task leaves the annotator's list, never comes back to them,
flagged ones wait for an admin, and the note may not carry personal data."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from include.db.models import Annotation, Task, TaskFlag, TaskStatus, User
from include.db.session import session_scope
from include.services import flags
from include.services.assignment import auto_assign
from include.services.free_text import PersonalDataInText
from tests.webapp.conftest import api_token, csrf_token, log_in, login
from tests.webapp.factories import dataset_with_tasks


def _assign(db: str, dataset_id: int, user_id: int, n: int) -> list[int]:
    with session_scope(db) as s:
        return auto_assign(s, dataset_id, s.get_one(User, user_id), n, strategy="top")


def test_skipped_tasks_go_to_someone_else_and_flagged_ones_wait(db, users) -> None:
    dataset_id, tasks = dataset_with_tasks(db, "flags", 4, priorities=[400, 300, 200, 100])
    assert _assign(db, dataset_id, users["alice"], 3) == tasks[:3]
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        flags.flag_task(s, tasks[0], alice, flags.FlagRequest(kind="skip"))
        flags.flag_task(s, tasks[1], alice, flags.FlagRequest(kind="not_sure", note="sarcasm?"))
        flags.flag_task(s, tasks[2], alice, flags.FlagRequest(kind="pii_left", note="a name is still in it"))
        states = {t.id: (t.status, t.assigned_to) for t in s.scalars(select(Task).where(Task.id.in_(tasks)))}
        counts = flags.counts(s, dataset_id)
    assert all(states[t] == (TaskStatus.IMPORTED, None) for t in tasks[:3])
    assert counts == {"skip": 1, "not_sure": 1, "pii_left": 1}
    # Alice never gets her skips back; the held task goes to nobody; bob gets her skips.
    assert _assign(db, dataset_id, users["alice"], 10) == [tasks[3]]
    assert _assign(db, dataset_id, users["bob"], 10) == tasks[:2]
    with session_scope(db) as s:
        held = next(f for f, _ in flags.open_flags(s, dataset_id) if f.kind == "pii_left")
        flags.resolve(s, dataset_id, held.id, s.get_one(User, users["admin"]))
        with pytest.raises(flags.FlagNotFound):
            flags.resolve(s, dataset_id, held.id, s.get_one(User, users["admin"]))  # already closed
    assert _assign(db, dataset_id, users["bob"], 10) == [tasks[2]]  # resolved: assignable again
    with session_scope(db) as s:
        rows = s.scalars(select(Annotation)).all()  # a flag never labels anything...
        assert [(a.task_id, a.label, a.was_cancelled) for a in rows] == [(tasks[0], None, True)]  # ...a skip is one


def test_a_note_with_personal_data_is_refused_and_a_labeled_task_cannot_be_skipped(db, users) -> None:
    dataset_id, tasks = dataset_with_tasks(db, "flags-note", 2)
    _assign(db, dataset_id, users["alice"], 2)
    with session_scope(db) as s:
        alice = s.get_one(User, users["alice"])
        with pytest.raises(PersonalDataInText, match="PHONE"):
            flags.flag_task(s, tasks[0], alice, flags.FlagRequest(kind="bad_item", note="call 13800138000"))
    with session_scope(db) as s:
        assert s.scalars(select(TaskFlag)).all() == []
        s.get_one(Task, tasks[1]).status = TaskStatus.LABELED
    with session_scope(db) as s, pytest.raises(flags.FlagError, match="relabel it instead"):
        flags.flag_task(s, tasks[1], s.get_one(User, users["alice"]), flags.FlagRequest(kind="skip"))
    with session_scope(db) as s, pytest.raises(flags.TaskNotFound):
        flags.flag_task(s, tasks[0], s.get_one(User, users["bob"]), flags.FlagRequest(kind="skip"))  # not his


def test_the_page_and_the_api(db, app, users) -> None:
    dataset_id, tasks = dataset_with_tasks(db, "flags-web", 3, priorities=[300, 200, 100])
    _assign(db, dataset_id, users["alice"], 3)
    with app.test_client() as client:
        login(client, "alice")
        page = client.get(f"/me/tasks/{tasks[0]}").get_data(as_text=True)
        assert 'data-testid="flag-form"' in page
        moved = client.post(
            f"/me/tasks/{tasks[0]}/flag", data={"csrf_token": csrf_token(page), "kind": "skip", "note": ""}
        )
        assert moved.headers["Location"] == f"/me/tasks/{tasks[1]}"  # on to the next task
        bad = client.post(f"/me/tasks/{tasks[1]}/flag", data={"csrf_token": csrf_token(page), "kind": "nope"})
        assert bad.status_code == 400
        alice = api_token(client, "alice")
        answer = client.post(
            f"/api/v1/annotator/tasks/{tasks[1]}/flag",
            json={"kind": "guideline_unclear", "note": "is a dented box NG?"},
            headers=alice,
        )
        assert answer.status_code == 200 and answer.json["flag"]["kind"] == "guideline_unclear"
        gone = client.post(f"/api/v1/annotator/tasks/{tasks[1]}/flag", json={"kind": "skip"}, headers=alice)
        assert gone.status_code == 404  # not hers any more
        admin = api_token(client, "admin")
        listed = client.get(f"/api/v1/datasets/{dataset_id}/flags", headers=admin).json
        assert listed["counts"] == {"skip": 1, "guideline_unclear": 1}
        assert [(f["task_id"], f["username"]) for f in listed["flags"]] == [(tasks[1], "alice"), (tasks[0], "alice")]
        login(client, "admin")
        tab = client.get(f"/admin/datasets/{dataset_id}/labeling").get_data(as_text=True)
        assert 'data-testid="flags"' in tab and "is a dented box NG?" in tab and "Guidelines unclear" in tab
        flag_id = listed["flags"][0]["id"]
        done = client.post(
            f"/admin/datasets/{dataset_id}/flags/{flag_id}/resolve",
            data={"csrf_token": csrf_token(tab)},
            follow_redirects=True,
        ).get_data(as_text=True)
        assert f"Flag on task {tasks[1]} resolved" in done
        again = client.post(f"/api/v1/datasets/{dataset_id}/flags/{flag_id}/resolve", headers=admin)
        assert again.status_code == 404


@pytest.mark.browser
def test_keys_skip_and_flag_in_the_browser(db, users, live_url, page: Any) -> None:
    dataset_id, tasks = dataset_with_tasks(db, "flags-browser", 3, priorities=[300, 200, 100])
    _assign(db, dataset_id, users["alice"], 3)
    log_in(page, live_url, "alice")
    page.goto(f"{live_url}/me/tasks/{tasks[0]}")
    page.keyboard.press("s")  # skip
    page.wait_for_url(f"**/me/tasks/{tasks[1]}")
    page.select_option("#flag-kind", "bad_item")
    page.fill("input[name=note]", "half the text is missing")
    page.click("#flag-submit")
    page.wait_for_url(f"**/me/tasks/{tasks[2]}")
    with session_scope(db) as s:
        raised = [(f.task_id, f.kind, f.note) for f in s.scalars(select(TaskFlag).order_by(TaskFlag.id))]
    assert raised == [(tasks[0], "skip", ""), (tasks[1], "bad_item", "half the text is missing")]
