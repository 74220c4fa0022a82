"""Screenshots of the web UI's main screens for docs/ui.md, taken from the real thing: `rag serve`
on embedded defaults (the packaged llama.cpp model answers) in a scratch folder, the sample
documents ingested, Debian's Chromium driven by Playwright.

    .venv/bin/python scripts/ui_screenshots.py            # writes docs/ui/*.png
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.e2e.serve import serve_env, start_server, stop_server  # noqa: E402

OUT = ROOT / "docs" / "ui"
QUESTION = "How quickly must a severity 1 incident be acknowledged?"
CHROMIUM = os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium")


def ingest(url: str, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        client.post("/v1/collections", json={"name": "demo"}).raise_for_status()
        samples = sorted((ROOT / "samples" / "docs").iterdir())
        files = [("files", (p.name, p.read_bytes())) for p in samples]
        job = client.post("/v1/collections/demo/documents", files=files).json()
        while (state := client.get(f"/v1/jobs/{job['id']}").json())["status"] in (
            "queued",
            "running",
        ):
            time.sleep(0.5)
        return str(state["id"])


def shoot(page: Page, name: str) -> None:
    page.screenshot(path=OUT / f"{name}.png", full_page=False)
    print(f"docs/ui/{name}.png")


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged models only
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rag-ui-") as scratch:
        env = serve_env(Path(scratch))
        proc, url, key = start_server(env, timeout_s=300), env["RAG_API_URL"], env["RAG_API_KEY"]
        try:
            job_id = ingest(url, key)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                context = browser.new_context(
                    base_url=url, viewport={"width": 1280, "height": 800}, color_scheme="light"
                )
                page = context.new_page()
                page.goto("/ui/login")
                shoot(page, "sign-in")
                page.get_by_label("API key").fill(key)
                page.get_by_role("button", name="Sign in").click()
                page.goto("/ui/ask?collection=demo")
                page.get_by_label("Question").fill(QUESTION)
                page.get_by_label("Question").press("Enter")
                answer = page.locator(".turn .answer").last
                expect(answer).to_have_attribute("aria-busy", "false", timeout=300_000)
                if (chip := page.locator(".turn .chips button").first).count():
                    chip.click()
                    page.wait_for_timeout(500)
                shoot(page, "ask")
                page.goto(f"/ui/jobs/{job_id}")
                page.wait_for_timeout(1500)
                shoot(page, "job")
                page.goto("/ui/documents")
                page.wait_for_timeout(1500)
                shoot(page, "documents")
                for tab in ("keys", "models", "audit"):
                    page.goto(f"/ui/admin#{tab}")
                    page.wait_for_timeout(1000)
                    shoot(page, f"admin-{tab}")
                page.emulate_media(color_scheme="dark")
                page.set_viewport_size({"width": 360, "height": 740})
                page.goto("/ui/ask?collection=demo")
                page.get_by_label("Question").fill(QUESTION)
                page.wait_for_timeout(500)
                shoot(page, "ask-mobile-dark")
                browser.close()
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
