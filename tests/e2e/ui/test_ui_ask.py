"""Ask in a real browser: sign in, a streamed answer whose citation opens the source with the
passage highlighted (a PDF's page rendered from the stored file), 👍 stored, a follow-up asked
with its conversation, a clear abstention, a key's collections only, a revoked key's session
ended, and the page at 360 px and in dark mode."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from rag.db.tables import AnswerFeedbackRow
from tests.e2e.ui.conftest import Ui, sign_in
from tests.stubs.server import StubServer

pytestmark = [pytest.mark.slow]
FIXTURES = Path(__file__).parents[2] / "fixtures" / "formats"
QUESTION = "What language is the fleet controller written in?"


def ask(page: Page, question: str, collection: str = "fleet") -> None:
    page.get_by_label("Collection").select_option(collection)
    page.get_by_label("Question").fill(question)
    page.get_by_label("Question").press("Enter")


def test_a_streamed_answer_cites_and_opens_the_highlighted_passage(
    page: Page, ui: Ui, gpt: StubServer
) -> None:
    sign_in(page, ui.key(["query"]), "/ui/ask")
    ask(page, QUESTION)
    answer = page.locator(".turn .answer").last
    expect(answer).to_contain_text("written in Rust for memory safety")
    expect(answer).to_have_attribute("aria-busy", "false")
    assert [r for r in gpt.requests if r.method == "POST"][0].body["stream"] is True
    chip = page.get_by_role("button", name="[1] fleet")
    expect(chip).to_be_visible()
    expect(page.locator(".turn .meta")).to_contain_text(f"Model: {gpt.model}")

    chip.click()
    source = page.get_by_role("complementary", name="[1] fleet")
    expect(source).to_be_visible()
    expect(source.locator("mark")).to_contain_text("written in Rust for memory safety")
    expect(source).to_contain_text("reconciles desired state")  # the whole document's text

    page.get_by_role("button", name="Good answer").click()
    expect(page.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    with ui.app.state.runtime.db.session() as session:
        values = session.scalars(select(AnswerFeedbackRow.value)).all()
    assert 1 in values


def test_a_follow_up_is_asked_with_the_conversation(page: Page, ui: Ui, gpt: StubServer) -> None:
    sign_in(page, ui.key(["query"]), "/ui/ask")
    ask(page, QUESTION)
    expect(page.locator(".turn .chips").first).to_contain_text("[1]")
    gpt.requests.clear()
    ask(page, "And how often does it reconcile?")
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator(".turn .answer").last).to_have_attribute("aria-busy", "false")
    [request] = [r for r in gpt.requests if r.method == "POST"]
    prompt = request.body["messages"][-1]["content"]
    assert "written in?" in prompt and "how often does it reconcile" in prompt

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".turn")).to_have_count(0)


def test_an_unsupported_answer_is_not_shown_and_the_page_says_so(
    page: Page, ui: Ui, gpt: StubServer
) -> None:
    gpt.answer_text = "The fleet controller is written in COBOL on mainframes [1]."
    sign_in(page, ui.key(["query"]), "/ui/ask")
    ask(page, QUESTION)
    answer = page.locator(".turn .answer").last
    expect(answer).to_have_class("answer abstain")
    expect(answer).not_to_contain_text("COBOL")
    expect(page.locator(".turn .chips button")).to_have_count(0)


def test_a_pdf_citation_shows_its_page_with_the_passage_marked(
    page: Page, ui: Ui, gpt: StubServer
) -> None:
    ui.admin.post("/v1/collections", json={"name": "memos"})
    with (FIXTURES / "fake-memo.pdf").open("rb") as pdf:
        files = [("files", ("fake-memo.pdf", pdf, "application/pdf"))]
        job = ui.admin.post("/v1/collections/memos/documents", files=files).json()
    assert ui.wait_for_job(job["id"])["status"] == "succeeded"
    gpt.answer_text = "There were 200 laptops delivered on January 23, 2023 [1]."
    sign_in(page, ui.key(["query"]), "/ui/ask")
    ask(page, "How many laptops were delivered?", "memos")
    chip = page.locator(".turn .chips button").first
    expect(chip).to_contain_text("p. 1")
    chip.click()
    image = page.get_by_role("img", name="Page 1 of")
    expect(image).to_be_visible()
    deadline = time.monotonic() + 30  # wait_for_function evaluates a string: our CSP forbids it
    while page.evaluate("document.getElementById('source-page').naturalWidth") < 300:
        assert time.monotonic() < deadline, "the page image did not load"
        page.wait_for_timeout(100)
    expect(page.locator("#source-text mark")).to_contain_text("200 laptops")

    # The page route: a page that is not there, a file that is not a PDF.
    src = str(image.get_attribute("src"))
    assert ui.admin.get(src).headers["content-type"] == "image/png"
    missing = ui.admin.get(src.replace("/pages/1", "/pages/9")).json()["error"]
    assert missing["message"] == "page 9 not found: the document has 1"
    fleet = ui.admin.get("/v1/collections/fleet/documents").json()
    markdown = next(d["id"] for d in fleet if d["source"] == "fleet.md")
    refused = ui.admin.get(f"/v1/collections/fleet/documents/{markdown}/pages/1")
    assert refused.status_code == 422 and "not a PDF" in refused.json()["error"]["message"]


def test_a_key_sees_its_collections_only(page: Page, ui: Ui, gpt: StubServer) -> None:
    ui.admin.post("/v1/collections", json={"name": "other"})
    sign_in(page, ui.key(["query"], collections=["fleet"]), "/ui/ask")
    options = page.get_by_label("Collection").locator("option")
    expect(options).to_have_text(["fleet"])
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    expect(page.get_by_role("link", name="Documents")).to_have_count(0)


def test_a_revoked_keys_session_ends(page: Page, ui: Ui, gpt: StubServer) -> None:
    key = ui.key(["query"])
    sign_in(page, key, "/ui/ask")
    expect(page.get_by_label("Collection").locator("option").first).to_be_attached()
    ui.admin.delete(f"/v1/keys/{key.split('_')[1]}")
    ask(page, QUESTION)
    page.wait_for_url("**/ui/login?next=**")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_signing_out_and_a_bad_key(page: Page, ui: Ui) -> None:
    page.goto("/ui/ask")
    page.wait_for_url("**/ui/login?next=**")
    page.get_by_label("API key").fill("rag_000000000000_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    sign_in(page, ui.key(["query"]), "/ui/ask")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.goto("/ui/ask")
    page.wait_for_url("**/ui/login?next=**")


def test_narrow_screens_keyboard_and_dark_mode(page: Page, ui: Ui, gpt: StubServer) -> None:
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, ui.key(["query"]), "/ui/ask")
    page.get_by_label("Question").focus()
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    expect(page.locator(".turn .chips button")).to_have_count(1)
    page.keyboard.press("Shift+Tab")  # focus moves through the page in order
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    page.get_by_role("button", name="Switch between light and dark").click()
    theme = page.evaluate("document.documentElement.dataset.theme")
    assert theme in ("dark", "light")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.get_by_role("button", name="Switch between light and dark").click()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != background
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") != theme  # kept


def test_other_collections_are_searched_with_the_selected_one(
    page: Page, ui: Ui, gpt: StubServer
) -> None:
    warehouse = "The new warehouse opens in Lyon in April."
    ui.add_texts("sites", [{"source": "warehouse.md", "text": f"# Warehouse\n\n{warehouse}"}])
    gpt.answer_text = "The new warehouse opens in Lyon in April [1]."
    sign_in(page, ui.key(["query"]), "/ui/ask")
    page.get_by_label("Collection").select_option("fleet")
    page.get_by_text("Also search other collections").click()
    page.get_by_role("checkbox", name="sites").check()
    expect(page.get_by_role("checkbox", name="fleet")).to_have_count(0)  # it is the selected one
    ask(page, "Where does the new warehouse open?")
    chip = page.get_by_role("button", name="[1] warehouse · sites")
    chip.click()
    expect(page.locator("#source-text mark")).to_have_text(warehouse)
    [request] = [r for r in gpt.requests if r.method == "POST"]
    assert warehouse in request.body["messages"][-1]["content"]
