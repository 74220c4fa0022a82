"""The web UI in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium;
Playwright's own download needs the internet) against the real app under uvicorn, whose
answering model is an OpenAI-protocol stub (so answers are known and what reached the model
can be inspected)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from api.main import create_app
from tests.conftest import make_settings
from tests.e2e.conftest import admin_key, key_headers, model_stubs, reset_stubs
from tests.e2e.serve import serving
from tests.e2e.test_api_models import FLEET, KEY_ENV, write_catalog
from tests.stubs.server import StubServer

CHROMIUM = os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium")
ANSWER = "The fleet controller is written in Rust for memory safety [1]."
expect.set_options(timeout=30_000)


@dataclass
class Ui:
    """The served app: its URL, an admin's HTTP client for setting up, and key minting."""

    app: FastAPI
    url: str
    admin: httpx.Client

    def key(self, scopes: list[str], **options: Any) -> str:
        """A new API key (`ApiKeys.create` options), as its secret."""
        name = f"ui-{len(self.app.state.runtime.keys.list())}"
        return key_headers(self.app, name, scopes, **options)["Authorization"].split()[1]

    def wait_for_job(self, job_id: str, timeout_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while (job := self.admin.get(f"/v1/jobs/{job_id}").json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        return dict(job)

    def add_texts(self, collection: str, documents: list[dict[str, Any]]) -> None:
        """A collection (made if new) holding these text documents, indexed."""
        self.admin.post("/v1/collections", json={"name": collection})
        response = self.admin.post(
            f"/v1/collections/{collection}/documents/text", json={"documents": documents}
        )
        assert response.status_code == 202, response.text
        assert self.wait_for_job(response.json()["id"])["status"] == "succeeded"


@pytest.fixture(scope="module")
def ui_stubs() -> Iterator[dict[str, StubServer]]:
    with model_stubs() as found:
        yield found


@pytest.fixture
def gpt(ui_stubs: dict[str, StubServer]) -> StubServer:
    """The answering model, reset: it answers ANSWER unless a test sets `answer_text`."""
    return reset_stubs(ui_stubs, ANSWER)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, ui_stubs: dict[str, StubServer]) -> Iterator[Ui]:
    """A served app per module (every app's in-process worker takes the session's one Celery
    queue: two alive at once would take each other's tasks), with collection 'fleet' (a public
    document and one for group hr only) indexed."""
    data_dir = tmp_path_factory.mktemp("ui")
    catalog = write_catalog(data_dir / "models.toml", ui_stubs)
    os.environ[KEY_ENV] = "sk-test"
    settings = make_settings(
        data_dir,
        generator={"catalog_file": catalog, "breaker_failures": 100},
        auth={"key_cache_s": 0},
    )
    try:
        app = create_app(settings)
        with serving(app) as url:
            headers = {"Authorization": f"Bearer {admin_key(app, 'ui-admin')}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as admin:
                found = Ui(app, url, admin)
                found.add_texts(
                    "fleet",
                    [
                        {"source": "fleet.md", "text": f"# Fleet controller\n\n{FLEET}"},
                        {
                            "source": "salary.md",
                            "text": "# Salaries\n\nThe salary review happens in March.",
                            "allowed_groups": ["hr"],
                        },
                    ],
                )
                yield found
    finally:
        os.environ.pop(KEY_ENV, None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: `make setup` installs chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, ui: Ui) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test."""
    made = browser.new_context(base_url=ui.url, viewport={"width": 1280, "height": 900})
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A page whose script errors, CSP refusals included, fail the test."""
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))

    def console(message: ConsoleMessage) -> None:
        # A CSP refusal (an inline style or script) is one; an HTTP error the test asked for
        # is logged as "Failed to load resource", and is the page's to show, not an error.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    opened.on("console", console)
    yield opened
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page: Page, key: str, path: str = "/ui/") -> None:
    """Sign in through the form, landing on `path`."""
    page.goto(f"/ui/login?next={path}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{path}*")
