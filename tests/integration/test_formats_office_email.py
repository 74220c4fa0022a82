"""Legacy and open office formats (LibreOffice) and e-mail (.eml, .msg) through `parse_file`, and
e-mails expanded at intake (`expand_emails`): real files from public parsing projects
(tests/fixtures/README.md); corrupt copies and nested messages are made here."""

from __future__ import annotations

import io
import json
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from rag.collections import IncomingFile
from rag.errors import BackendError, UnreadableDocument
from rag.formats import office
from rag.formats.email import Attachment, read_message
from rag.parsing import parse_file
from rag.sources.emails import expand_emails, safe_name
from rag.staging import stage

FIXTURES = Path(__file__).parents[1] / "fixtures" / "formats"
PLANTED = json.loads((FIXTURES / "planted.json").read_text())
OURS = {".doc", ".rtf", ".odt", ".ppt", ".odp", ".eml", ".msg"}
MINE = [p for p in PLANTED if Path(p["file"]).suffix in OURS]
OFFICE = [p for p in MINE if Path(p["file"]).suffix not in (".eml", ".msg")]
MB = 2**20

needs_libreoffice = pytest.mark.skipif(
    not any(office.shutil.which(c) for c in office._CANDIDATES),
    reason="LibreOffice is not installed (make setup)",
)


def staged(
    path: Path,
    tmp: Path,
    *,
    metadata: dict[str, Any] | None = None,
    access: list[str] | None = None,
) -> IncomingFile:
    with path.open("rb") as f:
        return stage(
            f, path.name, tmp / "staging", max_bytes=50 * MB, metadata=metadata, access=access
        )


def as_staged(data: bytes, name: str, tmp: Path) -> IncomingFile:
    return stage(io.BytesIO(data), name, tmp / "staging", max_bytes=50 * MB)


# -- office formats ----------------------------------------------------------------------------


@needs_libreoffice
@pytest.mark.parametrize("entry", MINE, ids=[p["file"] for p in MINE])
def test_planted_strings_are_found(entry: dict[str, object], tmp_path: Path) -> None:
    # Parsed from a staged copy (a uuid, no extension), as the workers see it.
    incoming = staged(FIXTURES / str(entry["file"]), tmp_path)
    elements = parse_file(incoming.path, filename=incoming.filename)
    text = "\n".join(e.text for e in elements)
    for planted in entry["strings"]:  # type: ignore[attr-defined]
        assert planted in text


@needs_libreoffice
@pytest.mark.parametrize("entry", OFFICE, ids=[p["file"] for p in OFFICE])
def test_a_truncated_copy_fails_alone_with_libreoffices_reason(
    entry: dict[str, object], tmp_path: Path
) -> None:
    source = FIXTURES / str(entry["file"])
    broken = tmp_path / source.name
    broken.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(UnreadableDocument) as caught:
        parse_file(broken)
    assert caught.value.message == (
        "corrupt or invalid file (LibreOffice: source file could not be loaded)"
    )
    # The next file still converts: nothing of the failed conversion is left behind.
    assert parse_file(FIXTURES / "fake-doc.rtf")


@needs_libreoffice
def test_a_presentation_named_doc_says_what_it_is(tmp_path: Path) -> None:
    lying = tmp_path / "slides.doc"
    lying.write_bytes((FIXTURES / "SlideTest2.odp").read_bytes())
    with pytest.raises(UnreadableDocument, match="cannot read it as a text document"):
        parse_file(lying)


@needs_libreoffice
def test_concurrent_conversions_use_their_own_profiles(tmp_path: Path) -> None:
    results: dict[str, list[str]] = {}

    def run(name: str) -> None:
        results[name] = [e.text for e in parse_file(FIXTURES / name)]

    threads = [threading.Thread(target=run, args=(n,)) for n in ("simple.doc", "SlideTest2.odp")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "Parrots" in results["simple.doc"]
    assert any("ODF Toolkit" in t for t in results["SlideTest2.odp"])


@needs_libreoffice
def test_a_conversion_over_its_time_limit_is_killed_with_its_process_group(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    with pytest.raises(UnreadableDocument, match="did not finish converting"):
        office.convert(FIXTURES / "simple.doc", workdir, "docx", timeout_s=0.2)
    running = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(workdir).encode() in cmdline.read_bytes():
                running.append(cmdline.parent.name)
        except OSError:
            continue
    assert running == []


def test_without_libreoffice_the_error_names_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office, "_CANDIDATES", ("no-such-soffice",))
    with pytest.raises(BackendError, match="make setup") as caught:
        parse_file(FIXTURES / "simple.doc")
    assert not caught.value.retryable


# -- e-mail ------------------------------------------------------------------------------------


def test_eml_headers_and_plain_body(tmp_path: Path) -> None:
    incoming = staged(FIXTURES / "fake-email-attachment.eml", tmp_path)
    message = read_message(incoming.path)
    assert message.headers() == {
        "from": "Mallori Harrell <mallori@unstructured.io>",
        "to": ["Mallori Harrell <mallori@unstructured.io>"],
        "date": "2022-12-23T12:08:48-06:00",
        "subject": "Fake email with attachment",
    }
    text = [e.text for e in parse_file(incoming.path, filename=incoming.filename)]
    assert "Lots of whitespace" in text
    assert not any("fake attachment" in t for t in text)  # the attachment is its own document


def test_msg_headers_and_body(tmp_path: Path) -> None:
    incoming = staged(FIXTURES / "fake-email-with-cc-and-bcc.msg", tmp_path)
    headers = read_message(incoming.path).headers()
    assert headers == {
        "from": "John <johnjennings702@gmail.com>",
        "to": ["John Jennings <john-ctr@unstructured.io>"],
        "cc": ["steve@unstructured.io"],
        "date": "2024-07-29T20:38:11+00:00",
        "subject": "Fake email with cc and bcc recipients",
    }
    text = [e.text for e in parse_file(incoming.path, filename=incoming.filename)]
    assert "This is a test email. Please ignore." in text


def test_an_html_only_body_is_read_as_html(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"], msg["From"] = "Quarterly note", "a@example.org"
    msg.set_content("<h1>Results</h1><p>Revenue grew by <b>12 percent</b>.</p>", subtype="html")
    path = tmp_path / "note.eml"
    path.write_bytes(msg.as_bytes())
    assert [e.text for e in parse_file(path)] == ["Results", "Revenue grew by 12 percent."]


def test_a_message_with_no_body_keeps_its_subject(tmp_path: Path) -> None:
    msg = EmailMessage()
    msg["Subject"] = "Scans attached"
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    path = tmp_path / "scans.eml"
    path.write_bytes(msg.as_bytes())
    assert [e.text for e in parse_file(path)] == ["Scans attached"]


def test_a_truncated_msg_fails_alone_with_a_reason(tmp_path: Path) -> None:
    source = FIXTURES / "fake-email-attachment.msg"
    broken = tmp_path / source.name
    broken.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(UnreadableDocument, match=r"corrupt or invalid Outlook \.msg file"):
        parse_file(broken)


# -- expansion at intake -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fake-email-attachment.eml", "fake-email-attachment.msg"])
def test_attachments_become_documents_linked_to_their_message(name: str, tmp_path: Path) -> None:
    message = staged(
        FIXTURES / name, tmp_path, metadata={"team": "hr", "subject": "mine"}, access=["g:hr"]
    )
    result = expand_emails([message], tmp_path / "staging", max_bytes=50 * MB)
    assert result.rejected == []
    assert [f.filename for f in result.files] == [name, f"{name}/attachments/fake-attachment.txt"]
    assert message.title == "Fake email with attachment"
    assert message.metadata["subject"] == "mine"  # what the caller gave wins
    assert message.metadata["from"].endswith("<mallori@unstructured.io>")
    attachment = result.files[1]
    assert attachment.metadata == {
        "team": "hr",
        "subject": "mine",
        "attached_to": name,
        "email_subject": "Fake email with attachment",
        "email_from": message.metadata["from"],
        "email_date": message.metadata["date"],
    }
    assert attachment.access == ["g:hr"]
    assert attachment.path.read_text().startswith("Hey this is a fake attachment!")


def _with_attachments(subject: str, *parts: tuple[bytes | EmailMessage, str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = subject, "sender@example.org", "team@example.org"
    msg.set_content(f"Body of {subject}.")
    for content, filename in parts:
        if isinstance(content, EmailMessage):
            msg.add_attachment(content, filename=filename)
        else:
            msg.add_attachment(
                content, maintype="application", subtype="octet-stream", filename=filename
            )
    return msg


def test_nested_messages_are_expanded_one_level_deep(tmp_path: Path) -> None:
    raw = (FIXTURES / "fake-email-attachment.eml").read_bytes()
    inner = message_from_bytes(raw, policy=policy.default)
    assert isinstance(inner, EmailMessage)
    middle = _with_attachments("middle", (inner, "inner.eml"), (b"notes", "notes.txt"))
    outer = _with_attachments("outer", (middle, "middle.eml"), (b"MZ", "setup.exe"))
    incoming = as_staged(outer.as_bytes(), "outer.eml", tmp_path)
    result = expand_emails([incoming], tmp_path / "staging", max_bytes=50 * MB)
    sources = [f.filename for f in result.files]
    assert sources == [
        "outer.eml",
        "outer.eml/attachments/middle.eml",
        "outer.eml/attachments/middle.eml/attachments/inner.eml",
        "outer.eml/attachments/middle.eml/attachments/notes.txt",
    ]
    by_source = {f.filename: f for f in result.files}
    innermost = by_source["outer.eml/attachments/middle.eml/attachments/inner.eml"]
    assert innermost.title == "Fake email with attachment"  # its headers are still read
    assert innermost.metadata["attached_to"] == "outer.eml/attachments/middle.eml"
    reasons = {r.name: r.reason for r in result.rejected}
    assert "unsupported file type ('.exe')" in reasons["outer.eml/attachments/setup.exe"]
    assert (
        "not expanded"
        in reasons["outer.eml/attachments/middle.eml/attachments/inner.eml/attachments"]
    )
    # The staged middle message parses as a message of its own.
    middle_file = by_source["outer.eml/attachments/middle.eml"]
    assert [e.text for e in parse_file(middle_file.path, filename="middle.eml")] == [
        "Body of middle."
    ]


def test_attachment_limits_reject_alone(tmp_path: Path) -> None:
    msg = _with_attachments(
        "many", (b"a" * 10, "a.txt"), (b"b" * 2000, "big.txt"), (b"c", "c.txt"), (b"d", "d.txt")
    )
    incoming = as_staged(msg.as_bytes(), "many.eml", tmp_path)
    result = expand_emails([incoming], tmp_path / "staging", max_bytes=1000, max_attachments=3)
    assert [f.filename for f in result.files] == [
        "many.eml",
        "many.eml/attachments/a.txt",
        "many.eml/attachments/c.txt",
    ]
    assert [(r.name, r.reason) for r in result.rejected] == [
        ("many.eml/attachments/big.txt", "larger than the 1000 bytes per-file limit"),
        ("many.eml/attachments", "more than 3 attachments: the other 1 were not indexed"),
    ]


def test_attachment_names_are_made_safe(tmp_path: Path) -> None:
    assert safe_name(Attachment("../../etc/x.pdf", "application/pdf", b""), 1) == "x.pdf"
    assert safe_name(Attachment("C:\\Users\\me\\r.docx", "", b""), 1) == "r.docx"
    assert safe_name(Attachment(".hidden.txt", "text/plain", b""), 1) == "hidden.txt"
    assert safe_name(Attachment("a\u202egpj.txt", "text/plain", b""), 1) == "agpj.txt"
    assert safe_name(Attachment("", "application/pdf", b""), 4) == "attachment-4.pdf"
    msg = _with_attachments("twins", (b"one", "same.txt"), (b"two", "same.txt"))
    incoming = as_staged(msg.as_bytes(), "twins.eml", tmp_path)
    result = expand_emails([incoming], tmp_path / "staging", max_bytes=MB)
    assert [f.filename for f in result.files][1:] == [
        "twins.eml/attachments/same.txt",
        "twins.eml/attachments/same-2.txt",
    ]


def test_an_unreadable_message_is_left_to_fail_at_parse_time(tmp_path: Path) -> None:
    source = FIXTURES / "fake-email-attachment.msg"
    incoming = as_staged(source.read_bytes()[:5000], "broken.msg", tmp_path)
    result = expand_emails([incoming], tmp_path / "staging", max_bytes=MB)
    assert result.files == [incoming]
    assert result.rejected == []


# -- Outlook .msg (python-oxmsg) ---------------------------------------------------------------


def test_an_ole2_file_that_is_not_an_outlook_item_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "letter"  # a Word document staged without its extension
    path.write_bytes((FIXTURES / "simple.doc").read_bytes())
    with pytest.raises(UnreadableDocument, match=r"corrupt or invalid Outlook \.msg file"):
        read_message(path)


def test_an_image_the_body_shows_is_not_an_attachment(tmp_path: Path) -> None:
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = "Signed", "a@example.com", "b@example.com"
    mail.set_content("Plain body.")
    mail.add_alternative('<p>HTML body <img src="cid:logo"></p>', subtype="html")
    mail.get_payload()[1].add_related(b"\x89PNG", "image", "png", cid="<logo>")
    mail.add_attachment(b"\x89PNG scan", maintype="image", subtype="png", filename="scan.png")
    message = read_message(as_staged(mail.as_bytes(), "signed.eml", tmp_path).path)
    assert [a.name for a in message.attachments] == ["scan.png"]
