"""The interface in Chinese and English: every marked string has its zh-CN translation, the
compiled catalog is the source's, and the language follows the profile, then the browser."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from include.db.models import Role, User
from include.db.session import session_scope
from include.services.assignment import auto_assign
from include.services.labeling import submit_label
from include.services.users import create_user
from tests.webapp.conftest import PASSWORD, log_in, login
from tests.webapp.factories import dataset_with_tasks

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "webapp" / "translations" / "zh_Hans_CN" / "LC_MESSAGES"


def test_every_page_string_has_a_chinese_translation(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    pybabel = str(Path(sys.executable).with_name("pybabel"))
    subprocess.run(
        [pybabel, "extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext", "-k", "_t", "-o", str(pot), "."],
        cwd=REPO, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    wanted = {m.id for m in read_po(pot.open("rb")) if m.id}
    with (CATALOG / "messages.po").open("rb") as f:
        catalog = read_po(f)
    translated = {m.id for m in catalog if m.id and m.string and (not isinstance(m.string, tuple) or all(m.string))}
    missing = sorted(str(m) for m in wanted - translated)
    assert not missing, f"untranslated (run make translations and translate them): {missing}"
    for message in catalog:  # the same placeholders on both sides
        if message.id and not isinstance(message.id, tuple):
            for placeholder in ("%(", "%%"):
                assert message.id.count(placeholder) == str(message.string).count(placeholder), message.id


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def test_the_compiled_catalog_is_the_source(tmp_path: Path) -> None:
    with (CATALOG / "messages.po").open("rb") as f:
        source = {_key(m.id): _key(m.string) for m in read_po(f) if m.id}
    with (CATALOG / "messages.mo").open("rb") as f:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    assert compiled == source, "messages.mo is stale: run make translations"


def test_the_language_follows_the_profile_then_the_cookie_then_the_browser(db, app, users) -> None:
    with app.test_client() as client:
        page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}).get_data(as_text=True)
        assert '<html lang="zh-CN">' in page and "用户名" in page and "保持登录" in page
        english = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
        assert '<html lang="en">' in english and "Username" in english
        assert "Username" in client.get("/login").get_data(as_text=True)  # no preference: English
        # The switch before logging in: a cookie.
        switched = client.post("/language", data={"language": "zh_CN", "next": "/login"})
        assert switched.status_code == 302 and switched.headers["Location"] == "/login"
        assert "用户名" in client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
        client.post("/language", data={"language": "en", "next": "//evil.example"})  # never an open redirect
        login(client, "alice")
        client.post("/language", data={"language": "zh_CN", "next": "/me/tasks"})
    with session_scope(db) as s:
        assert s.get_one(User, users["alice"]).language == "zh_CN"
    with app.test_client() as fresh:  # another browser, English: her profile wins
        login(fresh, "alice")
        tasks = fresh.get("/me/tasks", headers={"Accept-Language": "en"}).get_data(as_text=True)
        assert "我的任务" in tasks and "待标注" in tasks
        flashed = fresh.post("/me/tasks/999999/flag", data={"kind": "skip"}, follow_redirects=True)
        assert flashed.status_code == 404 and "回到我的主页" in flashed.get_data(as_text=True)


@pytest.mark.browser
def test_labeling_review_and_figures_in_chinese(db, users, live_url, page) -> None:
    dataset_id, tasks = dataset_with_tasks(db, "质检", 4, priorities=[400, 300, 200, 100])
    with session_scope(db) as s:
        from include.db.models import Dataset, Item

        dataset = s.get_one(Dataset, dataset_id)
        dataset.guidelines = "## 合格\n外观无划痕、无凹陷。\n\n## 不合格\n任何划痕、凹陷或污渍。"
        dataset.guidelines_version = 1
        for k, item in enumerate(s.scalars(select(Item).where(Item.dataset_id == dataset_id).order_by(Item.id))):
            item.text = [
                "外壳左侧有一道明显划痕，需返工。",
                "包装完好，外观检查通过。",
                "屏幕边缘有轻微污渍。",
                "按键回弹正常。",
            ][k]
        alice, bob = s.get_one(User, users["alice"]), s.get_one(User, users["bob"])
        alice.language = bob.language = "zh_CN"
        create_user(s, "carol", "carol@labelops.test", PASSWORD, Role.REVIEWER).language = "zh_CN"
        auto_assign(s, dataset_id, bob, 2, strategy="top")
        submit_label(s, tasks[0], bob, "NG", lead_time=4.2)
        submit_label(s, tasks[1], bob, "OK", lead_time=2.5)
        auto_assign(s, dataset_id, alice, 2, strategy="top")
    shots = Path(os.environ.get("LABELOPS_SCREENSHOTS", "") or (REPO / ".labelops" / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    log_in(page, live_url, "alice")
    page.goto(f"{live_url}/me/next")
    page.wait_for_selector("[data-testid=task-text]")
    assert page.get_attribute("html", "lang") == "zh-CN"
    assert page.get_attribute("[data-testid=task-text]", "lang") == "zh"
    assert "跳过" in page.inner_text("[data-testid=flag-form]") and "快捷键" in page.content()
    # A CJK font draws the text (not boxes): the browser measures it with a Chinese face.
    assert page.evaluate("() => document.fonts.check('16px \"WenQuanYi Micro Hei\"', '划痕')")
    page.keyboard.press("g")
    page.screenshot(path=str(shots / "labeling-zh.png"), full_page=True)
    page.keyboard.press("1")
    page.wait_for_selector(".flash-success:has-text('已保存')")
    page.context.clear_cookies()
    log_in(page, live_url, "carol")
    page.goto(f"{live_url}/review/next?dataset_id={dataset_id}")
    page.wait_for_selector("[data-testid=review-form]")
    assert "选择了" in page.inner_text("[data-testid=reviewed-label]") and "通过" in page.inner_text("#accept")
    page.screenshot(path=str(shots / "review-zh.png"), full_page=True)
    page.keyboard.press("a")
    page.wait_for_selector(".flash-success:has-text('已通过')")
    page.context.clear_cookies()
    log_in(page, live_url, "bob")
    page.goto(f"{live_url}/me/performance")
    page.wait_for_selector("[data-testid=performance-table]")
    assert "审核通过率" in page.inner_text("[data-testid=performance-table]")
    for img in page.query_selector_all("img[data-chart]"):
        img.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img)
    chart = page.request.get(f"{live_url}/me/performance/{dataset_id}/throughput.svg").text()
    assert "标注数" in chart  # the chart's own words are Chinese too
    page.screenshot(path=str(shots / "figures-zh.png"), full_page=True)
    page.context.clear_cookies()
    with session_scope(db) as s:
        s.get_one(User, users["admin"]).language = "zh_CN"
    log_in(page, live_url, "admin")
    page.goto(f"{live_url}/admin/datasets/{dataset_id}/people")
    page.wait_for_selector("[data-testid=performance-table]")
    assert "人员" in page.inner_text("[data-testid=dataset-tabs]")
    page.screenshot(path=str(shots / "people-zh.png"), full_page=True)
    page.goto(f"{live_url}/admin/datasets/{dataset_id}/settings")
    assert "哪些标注算数" in page.inner_text("[data-testid=setting-what-counts]")
    page.screenshot(path=str(shots / "settings-zh.png"), full_page=True)


def test_every_admin_page_renders_in_chinese(db, app, users) -> None:
    dataset_id, _ = dataset_with_tasks(db, "admin-zh", 3)
    with session_scope(db) as s:
        s.get_one(User, users["admin"]).language = "zh_CN"
    pages = {
        "/admin/": "数据集",
        f"/admin/datasets/{dataset_id}": "概览",
        f"/admin/datasets/{dataset_id}/labeling": "自动分配",
        f"/admin/datasets/{dataset_id}/quality-privacy": "质量",
        f"/admin/datasets/{dataset_id}/models": "训练配置",
        f"/admin/datasets/{dataset_id}/people": "标注员",
        f"/admin/datasets/{dataset_id}/settings": "隐藏金标准",
        "/admin/tasks": "任务",
        "/admin/users": "新用户",
        "/admin/pipelines": "完整主动学习循环",
        "/admin/jobs": "作业",
        "/admin/models": "模型",
        "/admin/privacy": "策略",
        "/admin/inference": "批量推理",
        "/admin/datasets/new": "创建数据集",
        "/review/": "审核队列",
    }
    with app.test_client() as client:
        login(client, "admin")
        for path, words in pages.items():
            response = client.get(path)
            page = response.get_data(as_text=True)
            assert response.status_code == 200, (path, response.status_code)
            assert '<html lang="zh-CN">' in page and words in page, path
