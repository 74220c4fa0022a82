"""The admin page in a browser: collections, API keys, the audit log, the dead letter and the
model catalog, each tab going through /v1 as the signed-in key (so its checks hold)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.e2e.ui.conftest import Ui, sign_in

pytestmark = [pytest.mark.slow]


def open_admin(page: Page, ui: Ui, tab: str | None = None, **options: object) -> None:
    """Signed in with a new admin key (`Ui.key` options), on the admin page at `tab`."""
    sign_in(page, ui.key(["admin"], **options), "/ui/admin")
    if tab:
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")


def panel(page: Page, name: str) -> Locator:
    return page.get_by_role("tabpanel", name=name)


def secret_works(ui: Ui, secret: str) -> int:
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.get(f"{ui.url}/v1/collections", headers=headers, timeout=30).status_code


def test_create_and_delete_a_collection(page: Page, ui: Ui) -> None:
    open_admin(page, ui)
    collections = panel(page, "Collections")
    expect(collections.get_by_role("cell", name="fleet", exact=True)).to_be_visible()

    name = collections.get_by_label("Name", exact=True)
    name.fill("Not Valid")
    collections.get_by_role("button", name="Create collection").click()
    expect(collections.get_by_role("alert")).to_contain_text("invalid collection name")
    expect(name).to_have_value("Not Valid")  # the input is kept for fixing
    expect(name).to_have_attribute("aria-invalid", "true")

    name.fill("ui-made")
    collections.get_by_label("Description").fill("made in the browser")
    collections.get_by_role("button", name="Create collection").click()
    expect(collections.get_by_role("cell", name="ui-made", exact=True)).to_be_visible()
    expect(name).to_have_value("")
    listed = [c["name"] for c in ui.admin.get("/v1/collections").json()]
    assert "ui-made" in listed

    collections.get_by_role("button", name="Delete collection ui-made").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Delete collection")
    typed = dialog.get_by_label("Type ui-made to confirm")
    typed.fill("ui-mad")
    expect(confirm).to_be_disabled()
    typed.fill("ui-made")
    confirm.click()
    expect(dialog).to_have_count(0)
    expect(collections.get_by_role("cell", name="ui-made", exact=True)).to_have_count(0)
    listed = [c["name"] for c in ui.admin.get("/v1/collections").json()]
    assert "ui-made" not in listed and "fleet" in listed


def test_a_new_key_is_shown_once_works_and_can_be_revoked(page: Page, ui: Ui) -> None:
    open_admin(page, ui, "API keys")
    expect(page).to_have_url(re.compile(r"/ui/admin#keys$"))
    keys = panel(page, "API keys")

    keys.get_by_label("Name", exact=True).fill("ui-made-key")
    keys.get_by_role("checkbox", name="query").uncheck()
    keys.get_by_role("button", name="Create key").click()
    expect(keys.get_by_role("alert")).to_have_text("Choose at least one scope.")
    expect(keys.get_by_label("Name", exact=True)).to_have_value("ui-made-key")

    keys.get_by_role("checkbox", name="query").check()
    keys.get_by_label("Collections").fill("fleet, ")
    keys.get_by_label("Groups").fill("hr")
    keys.get_by_role("button", name="Create key").click()
    expect(keys.get_by_text("it will not be shown again")).to_be_visible()
    secret = keys.locator(".secret").inner_text().strip()
    assert secret.startswith("rag_")
    assert secret_works(ui, secret) == 200

    row = keys.get_by_role("row").filter(has_text="ui-made-key")
    expect(row).to_contain_text("fleet")
    expect(row).to_contain_text("hr")
    expect(row.get_by_text("active")).to_be_visible()

    keys.get_by_role("button", name="I have saved it").click()
    expect(keys.locator(".secret")).to_be_hidden()
    expect(keys.get_by_label("Name", exact=True)).to_be_focused()

    # The name is taken now: the API's message, in the form.
    keys.get_by_label("Name", exact=True).fill("ui-made-key")
    keys.get_by_role("button", name="Create key").click()
    expect(keys.get_by_role("alert")).to_contain_text("already exists")

    keys.get_by_role("button", name="Revoke key ui-made-key").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke key").click()
    expect(row.get_by_text("revoked")).to_be_visible()
    expect(keys.get_by_role("button", name="Revoke key ui-made-key")).to_have_count(0)
    assert secret_works(ui, secret) == 401

    page.reload()  # the tab is kept; the secret is gone for good
    expect(page.get_by_role("tab", name="API keys")).to_have_attribute("aria-selected", "true")
    expect(keys.get_by_role("row").filter(has_text="ui-made-key")).to_be_visible()
    expect(page.get_by_text(secret)).to_have_count(0)


def test_tabs_follow_the_keyboard_and_the_hash(page: Page, ui: Ui) -> None:
    open_admin(page, ui)
    first = page.get_by_role("tab", name="Collections")
    first.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="API keys")).to_be_focused()
    expect(page.get_by_role("tab", name="API keys")).to_have_attribute("aria-selected", "true")
    expect(panel(page, "API keys")).to_be_visible()
    expect(panel(page, "Collections")).to_be_hidden()
    page.keyboard.press("End")
    expect(page.get_by_role("tab", name="Models")).to_be_focused()
    expect(page).to_have_url(re.compile(r"#models$"))
    page.keyboard.press("ArrowRight")  # wraps around
    expect(first).to_be_focused()
    expect(first).to_have_attribute("tabindex", "0")
    expect(page.get_by_role("tab", name="Models")).to_have_attribute("tabindex", "-1")

    page.goto("/ui/admin#audit")
    expect(page.get_by_role("tab", name="Audit log")).to_have_attribute("aria-selected", "true")


def test_the_audit_log_lists_a_key_creation(page: Page, ui: Ui) -> None:
    made = ui.admin.post("/v1/keys", json={"name": "audited-key", "scopes": ["query"]})
    assert made.status_code == 201, made.text
    open_admin(page, ui, "Audit log")
    audit = panel(page, "Audit log")
    audit.get_by_label("Action").fill("key.create")
    audit.get_by_role("button", name="Apply filters").click()
    row = audit.get_by_role("row").filter(has_text="audited-key")
    expect(row).to_contain_text("key.create")
    expect(row).to_contain_text("201")
    expect(audit.get_by_role("status")).to_contain_text("newest first")
    expect(audit.get_by_role("button", name="Newer")).to_be_disabled()
    expect(audit.get_by_role("button", name="Older")).to_be_disabled()

    audit.get_by_label("Action").fill("no.such-action")
    audit.get_by_role("button", name="Apply filters").click()
    expect(audit.get_by_text("No entries match these filters.")).to_be_visible()
    audit.get_by_role("button", name="Clear filters").click()
    expect(audit.get_by_label("Action")).to_have_value("")
    expect(audit.get_by_role("cell", name="ui.signin")).not_to_have_count(0)


def test_the_models_tab_shows_the_catalog_and_breakers(page: Page, ui: Ui) -> None:
    open_admin(page, ui, "Models")
    models = panel(page, "Models")
    catalog = models.get_by_role("table", name="Models")
    for name in ("gpt", "vllm"):
        row = catalog.get_by_role("row").filter(has=page.get_by_role("cell", name=name, exact=True))
        expect(row).to_have_count(1)
        expect(row.get_by_text("closed", exact=True)).to_be_visible()
    gpt = catalog.get_by_role("row").filter(has=page.get_by_role("cell", name="gpt", exact=True))
    expect(gpt).to_contain_text("$0.15")
    expect(gpt).to_contain_text("$0.60")
    policies = models.get_by_role("table", name="Policies")
    policy = policies.get_by_role("row").filter(has_text="standard")
    expect(policy.get_by_text("default", exact=True)).to_be_visible()
    expect(policy).to_contain_text("gpt, vllm")


def test_the_dead_letter_tab_says_when_it_is_empty(page: Page, ui: Ui) -> None:
    open_admin(page, ui, "Dead letter")
    dead = panel(page, "Dead letter")
    expect(dead.get_by_text("No documents failed for good")).to_be_visible()
    expect(dead.get_by_role("button", name="Retry all")).to_be_disabled()
    expect(dead.get_by_label("Collection")).to_contain_text("fleet")


def test_dead_letter_rows_and_retry_all(page: Page, ui: Ui) -> None:
    """Making ingestion fail for good takes every retry: the list and the retry answer are
    stubbed at the network instead (the page's rendering and confirmation are what is tested)."""
    failed = {
        "job_id": "job-1",
        "document_id": "doc-1",
        "collection": "fleet",
        "source": "broken.pdf",
        "error": "the parser gave up: no text layer",
        "attempts": 3,
        "failed_at": "2026-01-02T03:04:05Z",
    }
    retried: list[str] = []

    def dead_letter(route: Route) -> None:
        if route.request.url.split("?")[0].endswith("/retry"):
            retried.append(route.request.method)
            route.fulfill(json={"retried": 1})
        else:
            route.fulfill(json=[] if retried else [failed])

    page.route(re.compile(r"/v1/dead-letter"), dead_letter)
    open_admin(page, ui, "Dead letter")
    dead = panel(page, "Dead letter")
    row = dead.get_by_role("row").filter(has_text="broken.pdf")
    expect(row).to_contain_text("no text layer")
    expect(row).to_contain_text("3")
    expect(row.get_by_role("link", name="job-1")).to_have_attribute("href", "/ui/jobs/job-1")
    dead.get_by_role("button", name="Retry all").click()
    page.get_by_role("dialog").get_by_role("button", name="Retry all").click()
    expect(page.get_by_text("1 document sent to ingestion again.")).to_be_visible()
    expect(dead.get_by_text("No documents failed for good")).to_be_visible()
    assert retried == ["POST"]


def test_a_query_key_is_refused_the_admin_page(page: Page, ui: Ui) -> None:
    sign_in(page, ui.key(["query"]), "/ui/admin")
    response = page.goto("/ui/admin")
    assert response is not None and response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("admin")
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Ask")).to_be_visible()
    expect(navigation.get_by_role("link", name="Admin")).to_have_count(0)


def test_an_admin_key_limited_to_collections_sees_no_keys_or_audit(page: Page, ui: Ui) -> None:
    sign_in(page, ui.key(["admin"], collections=["fleet"]), "/ui/admin")
    page.goto("/ui/admin#keys")  # a tab it does not have: the first one instead
    expect(page.get_by_role("tab", name="Collections")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tab")).to_have_count(3)
    expect(page.get_by_role("tab", name="API keys")).to_have_count(0)
    expect(page.get_by_role("tab", name="Audit log")).to_have_count(0)
    expect(page.get_by_text("need an admin key that is not limited")).to_be_visible()
    collections = panel(page, "Collections")
    expect(collections.get_by_role("cell", name="fleet", exact=True)).to_be_visible()
    expect(collections.get_by_role("button", name="Create collection")).to_have_count(0)


def test_narrow_screens_scroll_tables_not_the_page(page: Page, ui: Ui) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    open_admin(page, ui, "Models")
    expect(panel(page, "Models").get_by_role("cell", name="vllm", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.get_by_role("tab", name="API keys").click()
    expect(panel(page, "API keys").get_by_role("table")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
