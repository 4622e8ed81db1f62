"""The privacy, quality and inference pages in headless Chromium, as an admin uses them:
create a policy and try it, put a dataset under it, read the quality report's charts, and
download an export. Screenshots are kept under .labelops/test-screenshots."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from include.db.models import Dataset, Item, PiiPolicy, Task, TaskStatus
from include.db.session import session_scope
from include.pipelines.catalog import DatasetValues
from include.pipelines.quality_check import run_quality_check
from include.pipelines.runner import RunRef
from include.services.privacy import SYNTHETIC
from tests.dataflow.test_quality_gate import make_dataset
from tests.webapp.conftest import log_in, make_app
from tests.webapp.test_browser_charts import SHOTS, _marks

pytestmark = [pytest.mark.browser]


@pytest.fixture
def live_url(db, users) -> Iterator[str]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, make_app(db, PII_KEY=Fernet.generate_key().decode()), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_privacy_page_create_try_and_attach(db, page, live_url) -> None:
    with session_scope(db) as s:
        from include.services.datasets import add_items, create_dataset

        ds = create_dataset(s, "tickets", labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, ds, [("call 13812345678 please", {}), ("nothing here", {})])
        dataset_id = ds.id
    log_in(page, live_url, "admin")
    page.click("nav >> text=Privacy")
    page.fill("[data-testid=policy-form] input[name=name]", "contact data")
    page.uncheck("input[name=use_URL]")
    page.select_option("select[name=op_EMAIL]", "mask")
    page.click("[data-testid=policy-form] button[type=submit]")
    page.wait_for_selector("text=Policy “contact data” saved (version 1).")
    row = page.locator("[data-policy='contact data']")
    assert "EMAIL → mask" in row.inner_text() and "URL" not in row.inner_text()

    page.select_option("[data-testid=try-policy] select[name=policy_id]", label="contact data")
    page.fill("[data-testid=try-policy] textarea", "客户手机13812345678，邮箱 li@example.com，网址 https://x.example")
    page.click("[data-testid=try-policy] button[type=submit]")
    shown = page.locator("[data-testid=tried-text]").inner_text()
    assert shown == "客户手机<PHONE_1>，邮箱 **********.com，网址 https://x.example"
    assert "13812345678" in page.locator("[data-testid=tried-mapping]").inner_text()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "privacy.png"), full_page=True)

    page.goto(f"{live_url}/admin/datasets/{dataset_id}")
    page.click("[data-testid=dataset-tabs] >> text=Quality and privacy")
    page.select_option("[data-testid=privacy] select[name=policy_id]", label="contact data (v1)")
    page.click("[data-testid=privacy] button:has-text('Save')")
    page.wait_for_selector("[data-testid=pii-pending]:has-text('2 items wait for de-identification')")
    with session_scope(db) as s:
        policy_id = s.scalar(select(PiiPolicy.id))
        assert s.get(Dataset, dataset_id).pii_policy_id == policy_id
        assert set(s.scalars(select(Item.pii_status).where(Item.dataset_id == dataset_id))) == {"pending"}


def test_quality_report_page_and_override(db, page, live_url, minilm) -> None:
    from include.demo.texts import generate_demo_texts

    demo = generate_demo_texts(80, seed=3, noise=0.0, ambiguous=0.0)
    texts = [(d.text, d.label) for d in demo] + [(demo[k].text.upper(), None) for k in range(6)] + [("ok", None)]
    dataset_id = make_dataset(db, texts)
    run_quality_check(db, RunRef(), DatasetValues(dataset_id=dataset_id), embedder=minilm)
    log_in(page, live_url, "admin")
    page.goto(f"{live_url}/admin/datasets/{dataset_id}/quality-privacy")
    assert "failed: duplicates" in page.locator("[data-testid=quality]").inner_text()
    page.click("text=Findings and override →")
    page.wait_for_selector("[data-testid=gate-blocks]")
    for img in page.query_selector_all("img[data-chart]"):
        img.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img)
        svg = page.request.get(f"{live_url}{img.get_attribute('src')}").text()
        if img.get_attribute("data-chart") != "agreement":  # no overlap here: an empty-state picture
            assert _marks(svg) >= 6, img.get_attribute("data-chart")
    assert page.locator("details[data-check=duplicates][open] li").count() == 6
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "quality.png"), full_page=True)
    page.fill("[data-testid=override-form] input[name=reason]", "upper-case copies are from the second source")
    page.click("[data-testid=override-form] button")
    page.wait_for_selector("[data-testid=override-note]:has-text('upper-case copies')")


def test_dataset_page_downloads_an_export(db, page, live_url, tmp_path) -> None:
    dataset_id = make_dataset(db, [("屏幕碎了 😡", "NG"), ("=1+1", "OK"), ("fine", None)])
    with session_scope(db) as s:
        s.execute(
            update(Task).where(Task.dataset_id == dataset_id, Task.label.is_(None)).values(status=TaskStatus.IMPORTED)
        )
    log_in(page, live_url, "admin")
    page.goto(f"{live_url}/admin/datasets/{dataset_id}/labeling#export")
    with page.expect_download() as info:
        page.click("[data-export=csv]")
    path = tmp_path / "labels.csv"
    info.value.save_as(path)
    body = path.read_text(encoding="utf-8-sig")
    assert "屏幕碎了 😡" in body and "'=1+1" in body and "fine" not in body
    page.click("[data-testid=export] button:has-text('Snapshot the labels now')")
    page.wait_for_selector("[data-testid=snapshots] >> text=v1")
    page.goto(f"{live_url}/admin/inference")
    assert "No trained model yet" in page.inner_text("[data-testid=inference-form]")


def test_the_settings_tab_sets_when_a_dataset_retrains(db, page, live_url) -> None:
    dataset_id = make_dataset(db, [("late delivery", "NG"), ("works well", "OK"), ("fine", None)])
    log_in(page, live_url, "admin")
    page.goto(f"{live_url}/admin/datasets/{dataset_id}")
    page.click("[data-testid=dataset-tabs] >> text=Settings")
    card = page.locator("[data-testid=setting-live-loop]")
    assert "of 50 new labels since the last model" in card.inner_text()
    card.locator("input[name=retrain_after_labels]").fill("25")
    card.locator("button").click()
    page.wait_for_selector("text=retrains as soon as 25 new labels arrive")
    assert "of 25 new labels" in page.inner_text("[data-testid=live-loop-state]")
    page.screenshot(path=str(SHOTS / "dataset-settings.png"), full_page=True)
    page.locator("[data-testid=setting-live-loop] input[name=retrain_after_labels]").fill("")
    page.locator("[data-testid=setting-live-loop] button").click()
    page.wait_for_selector("text=The live loop is off for this dataset")
    assert "(automatic: where training runs on a GPU" in page.inner_text("[data-testid=retune-state]")
    retune = page.locator("[data-testid=retune-form]")
    retune.locator("input[name=retune_at_labels]").fill("120")
    retune.locator("button").click()
    page.wait_for_selector("text=fine-tunes the encoder at 120 labeled tasks")
    assert page.locator("[data-testid=retune-form] input[name=retune_at_labels]").input_value() == "120"
    assert "2 of 120 labeled tasks until the next encoder tune" in page.inner_text("[data-testid=retune-state]")
    # A refused value: the same tab again, with the message and the right status.
    overlap = page.locator("[data-testid=overlap-form]")
    overlap.locator("input[name=overlap_share]").evaluate("e => e.removeAttribute('max')")  # the browser would refuse
    overlap.locator("input[name=overlap_share]").fill("250")
    with page.expect_response(lambda r: r.url.endswith("/settings/overlap")) as answer:
        overlap.locator("button").click()
    assert answer.value.status == 400
    page.wait_for_selector("text=Second annotator (%) must be between 0 and 100")
    overlap.locator("input[name=overlap_share]").fill("10")
    overlap.locator("button").click()
    page.wait_for_selector("text=10% of each auto-assignment will also go to a second annotator")
    with session_scope(db) as s:
        row = s.get_one(Dataset, dataset_id)
        assert row.retrain_after_labels is None and row.retune_at_labels == 120
