"""Document names (rag.staging): what `check_source` refuses, that `safe_source` and `stage` apply
it, and that a text document's source follows the upload rule (api.schemas.TextDocument)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.schemas import TextDocument
from rag.errors import InvalidInput
from rag.staging import check_source, safe_source, stage

BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]


def code_id(code: int) -> str:
    return f"U+{code:04X}"


@pytest.mark.parametrize("code", BIDI, ids=code_id)
def test_bidirectional_controls_are_refused_by_name(code: int) -> None:
    with pytest.raises(InvalidInput, match=f"U\\+{code:04X} is a bidirectional text control"):
        check_source(f"invoice{chr(code)}fdp.pdf")


@pytest.mark.parametrize("code", [0x00, 0x1F, 0x7F, 0x80, 0x85, 0x9F], ids=code_id)
def test_control_characters_c0_and_c1_are_refused_by_name(code: int) -> None:
    with pytest.raises(InvalidInput, match=f"U\\+{code:04X} is a control character"):
        check_source(f"docs/a{chr(code)}b.md")


def test_ordinary_names_pass() -> None:
    for name in ["handbook/hr/leave.md", "Übersicht – 2024.pdf", "日本語.txt", "a" * 252 + ".md"]:
        check_source(name)
    with pytest.raises(InvalidInput, match="file name too long"):
        check_source("a" * 253 + ".md")


def test_safe_source_normalises_then_checks() -> None:
    assert safe_source("C:\\Users\\me\\/./notes.md") == "Users/me/notes.md"
    assert safe_source("/etc/notes.md") == "etc/notes.md"
    with pytest.raises(InvalidInput, match="invalid file name"):
        safe_source("../../x.md")
    with pytest.raises(InvalidInput, match="U\\+202E"):
        safe_source("invoice\u202efdp.pdf")


def test_stage_refuses_a_bad_name_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="U\\+0085"):
        stage(io.BytesIO(b"x"), "a\x85.md", tmp_path / "staging", max_bytes=10)
    assert not (tmp_path / "staging").exists()


def test_text_document_sources_follow_the_upload_rule() -> None:
    assert TextDocument(source="/etc/notes.md", text="t").source == "etc/notes.md"
    url = "https://wiki.example.com/billing?page=2"  # kept as given: citations link to it
    assert TextDocument(source=url, text="t").source == url
    for bad in ["../../x", "a/../../x.md", "", "invoice\u202efdp.md", url + "\u202e"]:
        with pytest.raises(ValidationError, match="invalid file name"):
            TextDocument(source=bad, text="t")
