"""Documents in a real browser: a PDF chosen in the file input is uploaded and followed to
done, listed as indexed, its access list edited (a refused name keeps what was typed) and the
document deleted; a synthetic drop of a file and an unsupported one, followed to the job page;
a failed document listed with its error and retried; a folder keeps its paths; an archive is a
job of its own; an unsupported file alone is shown rejected with its reason; a key's
collections only; the pages at 360 px."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import FilePayload, Locator, Page, expect

from tests.e2e.ui.conftest import Ui, sign_in

pytestmark = [pytest.mark.slow]
MEMO = Path(__file__).parents[2] / "fixtures" / "formats" / "fake-memo.pdf"
NOTES = "# Notes\n\nThe wiki moved to the new server in May, after the spring review."
DROP = """(zone, files) => {
  const transfer = new DataTransfer();
  for (const f of files) transfer.items.add(new File([f.text], f.name));
  const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
  zone.dispatchEvent(new DragEvent("dragenter", init));
  zone.dispatchEvent(new DragEvent("drop", init));
}"""


def open_documents(page: Page, ui: Ui, collection: str) -> None:
    """A new collection, and the Documents page on it as an ingest+query key."""
    response = ui.admin.post("/v1/collections", json={"name": collection})
    assert response.status_code == 201, response.text
    sign_in(page, ui.key(["ingest", "query"]), "/ui/documents")
    page.get_by_label("Collection").select_option(collection)


def upload(page: Page, name: str) -> Locator:
    return (
        page.get_by_role("list", name="Uploaded files")
        .get_by_role("listitem")
        .filter(has_text=name)
    )


def document_row(page: Page, source: str) -> Locator:
    return page.get_by_role("row").filter(has_text=source)


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= innerWidth"))


def test_a_pdf_is_uploaded_indexed_shared_with_groups_and_deleted(page: Page, ui: Ui) -> None:
    open_documents(page, ui, "ui-docs-pdf")
    page.get_by_label("Choose files").set_input_files(MEMO)
    expect(upload(page, "fake-memo.pdf").locator(".badge")).to_have_text("done")
    row = document_row(page, "fake-memo.pdf")
    expect(row).to_contain_text("indexed")
    expect(row).to_contain_text("everyone")

    row.get_by_role("button", name="Edit access").click()
    dialog = page.get_by_role("dialog", name="Who may read")
    dialog.get_by_label("Groups").fill("hr, legal team")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.get_by_role("alert")).to_contain_text("invalid group name 'legal team'")
    expect(dialog.get_by_label("Groups")).to_have_value("hr, legal team")  # kept to correct
    dialog.get_by_label("Groups").fill("hr, legal")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("groups: hr, legal")
    [doc] = ui.admin.get("/v1/collections/ui-docs-pdf/documents").json()
    assert doc["allowed_groups"] == ["hr", "legal"] and doc["allowed_users"] == []

    row.get_by_role("button", name="Delete").click()
    confirm = page.get_by_role("dialog").filter(has_text="Delete fake-memo.pdf?")
    confirm.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    expect(page.get_by_text("No documents here.")).to_be_visible()
    assert ui.admin.get("/v1/collections/ui-docs-pdf/documents").json() == []


def test_a_drop_is_followed_to_the_job_page_with_its_rejected_file(page: Page, ui: Ui) -> None:
    open_documents(page, ui, "ui-docs-drop")
    zone = page.get_by_role("group", name="Drop files, folders or archives here")
    files = [{"name": "notes.md", "text": NOTES}, {"name": "setup.exe", "text": "MZ"}]
    zone.evaluate(DROP, files)
    expect(upload(page, "notes.md").locator(".badge")).to_have_text("done")
    rejected = upload(page, "setup.exe")
    expect(rejected.locator(".badge")).to_have_text("rejected")
    expect(rejected).to_contain_text("unsupported file type ('.exe')")
    expect(page.get_by_role("status").filter(has_text="2 files")).to_contain_text("1 rejected")
    expect(document_row(page, "notes.md")).to_contain_text("indexed")

    page.get_by_role("link", name=re.compile(r"^Job \w+: upload")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Job")
    expect(page.get_by_role("status").filter(has_text="finished")).to_have_text(
        "completed with errors: 1 of 1 finished"
    )
    expect(page.locator(".counts .done dd")).to_have_text("1")
    expect(page.locator(".counts .failed dd")).to_have_text("0")
    rejected_inputs = page.get_by_role("region", name="Rejected inputs")
    expect(rejected_inputs).to_contain_text("setup.exe: unsupported file type ('.exe')")
    expect(document_row(page, "notes.md")).to_contain_text("done")
    for finished in ("Cancel job", "Pause", "Resume", "Retry failed"):
        expect(page.get_by_role("button", name=finished)).to_be_hidden()


def test_the_job_page_lists_a_failed_document_and_retries_it(page: Page, ui: Ui) -> None:
    ui.admin.post("/v1/collections", json={"name": "ui-docs-broken"})
    broken = {"files": ("broken.pdf", b"%PDF-1.4 not really a PDF", "application/pdf")}
    response = ui.admin.post("/v1/collections/ui-docs-broken/documents", files=broken)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert ui.wait_for_job(job_id)["status"] == "failed"
    sign_in(page, ui.key(["ingest"], collections=["ui-docs-broken"]), f"/ui/jobs/{job_id}")
    summary = page.get_by_role("status").filter(has_text="finished")
    expect(summary).to_have_text("failed: 1 of 1 finished")
    failed = page.get_by_role("region", name="Failed documents")
    expect(failed).to_contain_text("broken.pdf: ")
    expect(failed).to_contain_text("(1 attempt)")
    expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()

    page.get_by_role("button", name="Retry failed").click()
    expect(page.get_by_text("The failed documents are queued again.")).to_be_visible()
    expect(summary).to_have_text("failed: 1 of 1 finished")
    expect(document_row(page, "broken.pdf")).to_contain_text("failed")


def test_a_folder_keeps_its_paths(page: Page, ui: Ui, tmp_path: Path) -> None:
    folder = tmp_path / "handbook"
    (folder / "hr").mkdir(parents=True)
    (folder / "hr" / "leave.md").write_text("# Leave\n\nLeave is 30 days a year.")
    open_documents(page, ui, "ui-docs-folder")
    page.get_by_label("Choose a folder").set_input_files(folder)
    expect(upload(page, "handbook/hr/leave.md").locator(".badge")).to_have_text("done")
    expect(document_row(page, "handbook/hr/leave.md")).to_contain_text("indexed")


def test_an_archive_is_a_job_of_its_own(page: Page, ui: Ui) -> None:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as archive:
        archive.writestr("guide/intro.md", "# Intro\n\nThe guide starts with the basics.")
    open_documents(page, ui, "ui-docs-zip")
    zipped = FilePayload(name="guide.zip", mimeType="application/zip", buffer=packed.getvalue())
    page.get_by_label("Choose files").set_input_files(zipped)
    item = upload(page, "guide.zip")
    expect(item.locator(".badge")).to_have_text("succeeded")
    expect(item).to_contain_text("1 of 1 finished")
    expect(item.get_by_role("link", name="Open the job")).to_be_visible()
    expect(document_row(page, "intro.md")).to_contain_text("indexed")
    [job] = ui.admin.get("/v1/jobs", params={"collection": "ui-docs-zip"}).json()
    assert job["origin"] == "archive guide.zip"


def test_an_unsupported_file_alone_is_rejected_with_its_reason(page: Page, ui: Ui) -> None:
    open_documents(page, ui, "ui-docs-exe")
    exe = FilePayload(name="tool.exe", mimeType="application/octet-stream", buffer=b"MZ\x90\x00")
    page.get_by_label("Choose files").set_input_files(exe)
    item = upload(page, "tool.exe")
    expect(item.locator(".badge")).to_have_text("rejected")
    expect(item).to_contain_text("unsupported file type ('.exe') for 'tool.exe'")
    expect(page.get_by_role("button", name="Send tool.exe again")).to_have_count(0)
    expect(page.get_by_text("No jobs in this collection yet.")).to_be_visible()


def test_a_key_sees_only_its_collections(page: Page, ui: Ui) -> None:
    ui.admin.post("/v1/collections", json={"name": "ui-docs-hidden"})
    sign_in(page, ui.key(["ingest", "query"], collections=["fleet"]), "/ui/documents")
    expect(page.get_by_label("Collection").locator("option")).to_have_text(["fleet"])
    expect(document_row(page, "fleet.md")).to_contain_text("indexed")
    expect(document_row(page, "salary.md")).to_contain_text("groups: hr")


def test_the_pages_fit_a_phone(page: Page, ui: Ui) -> None:
    """An ingest key without the query scope may not list collections: its picker holds the
    ones it is limited to."""
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, ui.key(["ingest"], collections=["fleet"]), "/ui/documents")
    expect(page.get_by_label("Collection", exact=True)).to_have_value("fleet")
    expect(document_row(page, "fleet.md")).to_contain_text("indexed")
    expect(page.get_by_role("link", name=re.compile(r"^Job "))).not_to_have_count(0)
    assert fits(page)
    page.get_by_role("link", name=re.compile(r"^Job ")).first.click()
    expect(page.get_by_role("status").filter(has_text="finished")).to_contain_text("succeeded")
    assert fits(page)


def paused_job(ui: Ui, collection: str) -> str:
    """A job of many notes, paused through the API before the worker could finish it."""
    ui.admin.post("/v1/collections", json={"name": collection})
    notes = [
        {"source": f"n{i}.md", "text": f"# Note {i}\n\nItem {i} is on shelf {i}."}
        for i in range(120)
    ]
    job = ui.admin.post(f"/v1/collections/{collection}/documents/text", json={"documents": notes})
    job_id = str(job.json()["id"])
    paused = ui.admin.post(f"/v1/jobs/{job_id}/pause")
    assert paused.status_code == 200, paused.text  # 409: it finished first (a much faster machine)
    return job_id


def test_a_paused_job_is_resumed_and_another_cancelled_from_its_page(page: Page, ui: Ui) -> None:
    resumed, cancelled = paused_job(ui, "jobs-resume"), paused_job(ui, "jobs-cancel")
    sign_in(page, ui.key(["ingest"]), f"/ui/jobs/{resumed}")
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#job-status")).to_contain_text("succeeded", timeout=120_000)
    expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()

    page.goto(f"/ui/jobs/{cancelled}")
    page.get_by_role("button", name="Cancel job").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
    expect(page.locator("#job-status")).to_contain_text("cancelled")
    assert ui.admin.get(f"/v1/jobs/{cancelled}").json()["status"] == "cancelled"
