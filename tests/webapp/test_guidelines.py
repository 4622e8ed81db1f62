"""Guidelines where people label: versioned, sanitised, shown beside every task (page, API and
Label Studio's instruction), read by the LLM prompt, and recorded with each label."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from include.db.models import Annotation, Dataset, LsProject, Task, User
from include.db.session import session_scope
from include.ml.prelabel.backends import build_prompt
from include.services import guidelines
from include.services.assignment import auto_assign
from tests.webapp.conftest import api_token, csrf_token, log_in, login, make_app
from tests.webapp.factories import dataset_with_tasks

RULES = """## What counts as NG

A unit that **leaks**, smokes or does not start. See [the handbook](https://example.com/handbook).

| Case | Label |
|------|-------|
| leaks once | NG |
"""


def _save(db: str, dataset_id: int, text: str, descriptions: dict[str, str] | None = None) -> guidelines.Saved:
    with session_scope(db) as s:
        body = guidelines.Guidelines(guidelines=text, label_descriptions=descriptions)
        return guidelines.save(s, s.get_one(Dataset, dataset_id), body, None)


def test_versions_and_what_the_markdown_may_become(db) -> None:
    dataset_id, _ = dataset_with_tasks(db, "rules", 2)
    assert _save(db, dataset_id, RULES, {"NG": "broken in use"}) == guidelines.Saved(1, changed=True)
    assert _save(db, dataset_id, RULES) == guidelines.Saved(1, changed=False)  # descriptions kept, nothing new
    hostile = RULES + '\n<script>alert(1)</script>\n[click](javascript:alert(2)) <img src="https://x/p.png">'
    assert _save(db, dataset_id, hostile).version == 2
    with session_scope(db) as s:
        dataset = s.get_one(Dataset, dataset_id)
        html = guidelines.render(dataset.guidelines)
        instruction = guidelines.instruction_html(dataset)
        history = [(v.version, v.label_descriptions) for v in guidelines.versions(s, dataset_id)]
    assert "<strong>leaks</strong>" in html and "<table>" in html and "<td>NG</td>" in html
    assert 'href="https://example.com/handbook"' in html and 'rel="noopener noreferrer"' in html
    assert "<script" not in html and 'href="javascript' not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "[click](javascript:alert(2))" in html  # shown as text, never run
    assert "<dt>NG</dt><dd>broken in use</dd>" in instruction
    assert history == [(2, {"NG": "broken in use"}), (1, {"NG": "broken in use"})]


def test_personal_data_in_the_examples_is_refused(db) -> None:
    dataset_id, _ = dataset_with_tasks(db, "rules-pii", 1)
    with pytest.raises(guidelines.GuidelinesError, match=r"personal data in the guidelines \(PHONE\)"):
        _save(db, dataset_id, "Example: call 13800138000 and the kettle leaks -> NG")
    with pytest.raises(guidelines.GuidelinesError, match="EMAIL"):
        _save(db, dataset_id, "ok", {"NG": "ask jane.doe@example.com"})
    with session_scope(db) as s:
        assert s.get_one(Dataset, dataset_id).guidelines_version == 0  # nothing saved


def test_the_llm_prompt_carries_the_guidelines(db) -> None:
    prompt = build_prompt("The kettle leaks.", ["OK", "NG"], {"NG": "broken"}, "Leaks are always NG.")
    assert prompt.index("Leaks are always NG.") < prompt.index("- NG: broken") < prompt.index("The kettle leaks.")
    assert "guidelines" not in build_prompt("x", ["OK", "NG"]).lower()
    long = "rule\n" * 2000
    dataset = Dataset(name="d", labels=["OK", "NG"], guidelines=long)
    text = guidelines.prompt_text(dataset)
    assert text is not None and len(text) <= guidelines.PROMPT_LIMIT + 2 and text.endswith("…")


def test_admin_saves_and_annotator_sees_and_labels_under_a_version(db, app, users) -> None:
    dataset_id, _ = dataset_with_tasks(db, "rules-web", 3)
    with session_scope(db) as s:
        auto_assign(s, dataset_id, s.get_one(User, users["alice"]), 2)
    with app.test_client() as client:
        login(client, "admin")
        page = client.get(f"/admin/datasets/{dataset_id}/labeling").get_data(as_text=True)
        assert 'data-testid="guidelines-editor"' in page
        saved = client.post(
            f"/admin/datasets/{dataset_id}/guidelines",
            data={"csrf_token": csrf_token(page), "guidelines": RULES, "label_descriptions": "NG: broken in use"},
            follow_redirects=True,
        ).get_data(as_text=True)
        assert "Guidelines saved as version 1." in saved and "<strong>leaks</strong>" in saved
        refused = client.post(
            f"/admin/datasets/{dataset_id}/guidelines",
            data={"csrf_token": csrf_token(saved), "guidelines": "call 13800138000", "label_descriptions": ""},
            follow_redirects=True,
        ).get_data(as_text=True)
        assert "personal data in the guidelines (PHONE)" in refused
        login(client, "alice")
        with session_scope(db) as s:
            mine = s.scalars(select(Task.id).where(Task.assigned_to == users["alice"]).order_by(Task.id)).all()
        task_page = client.get(f"/me/tasks/{mine[0]}").get_data(as_text=True)
        assert 'data-testid="guidelines-panel"' in task_page and "<strong>leaks</strong>" in task_page
        assert 'name="guidelines_version" value="1"' in task_page and 'title="broken in use"' in task_page
        client.post(
            f"/me/tasks/{mine[0]}/label",
            data={"csrf_token": csrf_token(task_page), "label": "NG", "guidelines_version": "1"},
        )
    with session_scope(db) as s:
        annotation = s.scalar(select(Annotation).where(Annotation.task_id == mine[0]))
    assert annotation is not None and (annotation.label, annotation.guidelines_version) == ("NG", 1)


def test_the_api_saves_serves_and_records_the_version(db, app, users) -> None:
    dataset_id, _ = dataset_with_tasks(db, "rules-api", 3)
    other_id, _ = dataset_with_tasks(db, "rules-api-other", 1)
    with session_scope(db) as s:
        auto_assign(s, dataset_id, s.get_one(User, users["alice"]), 1)
        mine = s.scalar(select(Task.id).where(Task.assigned_to == users["alice"]))
    with app.test_client() as client:
        admin = api_token(client, "admin")
        put = client.put(f"/api/v1/datasets/{dataset_id}/guidelines", json={"guidelines": RULES}, headers=admin)
        assert put.status_code == 200, put.json
        assert put.json["version"] == 1 and [v["version"] for v in put.json["versions"]] == [1]
        bad = client.put(f"/api/v1/datasets/{dataset_id}/guidelines", json={"guidelines": 3}, headers=admin)
        assert bad.status_code == 400
        alice = api_token(client, "alice")
        assert client.put(f"/api/v1/datasets/{dataset_id}/guidelines", json={}, headers=alice).status_code == 403
        seen = client.get(f"/api/v1/annotator/datasets/{dataset_id}/guidelines", headers=alice)
        assert seen.status_code == 200 and seen.json["version"] == 1 and "<table>" in seen.json["html"]
        assert seen.json["versions"] == []
        hidden = client.get(f"/api/v1/annotator/datasets/{other_id}/guidelines", headers=alice)
        assert hidden.status_code == 404  # no task of hers there: it looks like no dataset at all
        ahead = client.post(
            f"/api/v1/annotator/tasks/{mine}/label", json={"label": "OK", "guidelines_version": 7}, headers=alice
        )
        assert ahead.status_code == 400 and "does not exist yet" in str(ahead.json)
        done = client.post(f"/api/v1/annotator/tasks/{mine}/label", json={"label": "OK"}, headers=alice)
        assert done.status_code == 200
    with session_scope(db) as s:
        assert s.scalar(select(Annotation.guidelines_version).where(Annotation.task_id == mine)) == 1  # current


@pytest.mark.labelstudio
def test_label_studio_shows_them_as_the_projects_instruction(db, ls, users) -> None:
    from include.pipelines.catalog import ImportValues
    from include.pipelines.ls_import import run_ls_import
    from include.pipelines.runner import RunRef
    from include.services.datasets import add_items, create_dataset
    from include.services.privacy import SYNTHETIC

    with session_scope(db) as s:
        dataset = create_dataset(s, "rules-ls", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, dataset, [("the kettle leaks", {}), ("the kettle works", {})])
        dataset_id = dataset.id
    _save(db, dataset_id, RULES, {"NG": "broken in use"})
    client = ls.client()
    result = run_ls_import(db, client, RunRef(), ImportValues(dataset_id=dataset_id))
    project_id = result["datasets"][0]["ls_project_id"]
    project = client.get_project(project_id)
    assert project["show_instruction"] is True and "<strong>leaks</strong>" in project["expert_instruction"]
    # An edit in the web app reaches Label Studio at once.
    app = make_app(db, LS_URL=ls.url, LS_API_TOKEN=ls.token)
    with app.test_client() as web:
        admin = api_token(web, "admin")
        put = web.put(f"/api/v1/datasets/{dataset_id}/guidelines", json={"guidelines": "Only **smoke** is NG."},
                      headers=admin)  # fmt: skip
        assert put.status_code == 200 and put.json["version"] == 2
    assert "<strong>smoke</strong>" in client.get_project(project_id)["expert_instruction"]
    with session_scope(db) as s:
        assert s.get_one(LsProject, project_id).instruction_version == 2


@pytest.mark.browser
def test_the_panel_opens_with_a_key_and_the_label_keys_still_work(db, users, live_url, page: Any) -> None:
    dataset_id, _ = dataset_with_tasks(db, "rules-browser", 2)
    _save(db, dataset_id, RULES, {"NG": "broken in use"})
    with session_scope(db) as s:
        auto_assign(s, dataset_id, s.get_one(User, users["alice"]), 2)
    log_in(page, live_url, "alice")
    page.goto(f"{live_url}/me/next")
    panel = page.locator("[data-testid=guidelines-panel]")
    assert panel.get_attribute("open") is None
    page.keyboard.press("g")
    page.wait_for_function("document.getElementById('guidelines-panel').open === true")
    assert page.locator(".guidelines-body table").is_visible()
    assert page.locator("[data-testid=label-meanings]").inner_text().startswith("NG")
    page.keyboard.press("?")
    page.wait_for_function("document.getElementById('guidelines-panel').open === false")
    first = page.url
    page.keyboard.press("2")  # NG, as before
    page.wait_for_url(lambda url: url != first)
    with session_scope(db) as s:
        labeled = s.scalars(select(Annotation).where(Annotation.annotator_id == users["alice"])).all()
    assert [(a.label, a.guidelines_version) for a in labeled] == [("NG", 1)]
    assert labeled[0].lead_time is not None and 0 < labeled[0].lead_time < 120  # measured by the page


def test_two_admins_saving_at_once_get_two_versions(db) -> None:
    """The second save waits for the first and takes the next number (no duplicate version)."""
    import threading
    import time

    dataset_id, _ = dataset_with_tasks(db, "rules-race", 1)
    errors: list[BaseException] = []

    def save(text: str, hold: float) -> None:
        try:
            with session_scope(db) as s:
                saved = guidelines.save(s, s.get_one(Dataset, dataset_id), guidelines.Guidelines(guidelines=text), None)
                assert saved.changed
                time.sleep(hold)  # the first holds its transaction open while the second arrives
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=save, args=("first rules", 1.0))
    second = threading.Thread(target=save, args=("second rules", 0.0))
    first.start()
    time.sleep(0.3)
    second.start()
    first.join(30)
    second.join(30)
    assert not errors, errors
    with session_scope(db) as s:
        assert [v.version for v in guidelines.versions(s, dataset_id)] == [2, 1]
        assert s.get_one(Dataset, dataset_id).guidelines == "second rules"
