"""A PDF page as a PNG, with a passage's words highlighted where they appear on it: what a
citation points at, shown as the page looked (the web UI's source view)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pdfplumber

from rag.errors import NotFoundError, UnreadableDocument

_WORD = re.compile(r"\w+")
RUN = 3  # a page word is highlighted inside a run of this many of the passage's words in order
MAX_DPI = 200
HIGHLIGHT = (255, 214, 0, 96)


def _norm(text: str) -> str:
    return "".join(_WORD.findall(text.lower()))


def render_page(path: Path, number: int, passage: str = "", dpi: int = 110) -> bytes:
    """Page `number` (from 1) of the PDF at `path`, at `dpi`, the words of `passage` marked."""
    try:
        pdf = pdfplumber.open(path)
    except Exception as exc:  # pdfminer raises several unrelated types for a broken file
        raise UnreadableDocument(f"cannot open the PDF: {exc}") from exc
    with pdf:
        if not 1 <= number <= len(pdf.pages):
            raise NotFoundError(f"page {number} not found: the document has {len(pdf.pages)}")
        page = pdf.pages[number - 1]
        image = page.to_image(resolution=min(max(dpi, 36), MAX_DPI))
        if boxes := _boxes(page, passage):
            image.draw_rects(boxes, fill=HIGHLIGHT, stroke=HIGHLIGHT, stroke_width=0)
        out = io.BytesIO()
        image.annotated.save(out, format="PNG", optimize=True)
        return out.getvalue()


def _boxes(page: pdfplumber.page.Page, passage: str) -> list[tuple[float, float, float, float]]:
    """The page's words that belong to a run of RUN consecutive passage words (so a common
    word alone is never marked); hyphenated or split words match on their letters."""
    wanted = [w for w in map(_norm, passage.split()) if w]
    if len(wanted) < RUN:
        return []
    runs = {tuple(wanted[i : i + RUN]) for i in range(len(wanted) - RUN + 1)}
    words = [w for w in page.extract_words() if _norm(w["text"])]
    texts = [_norm(w["text"]) for w in words]
    marked: set[int] = set()
    for i in range(len(texts) - RUN + 1):
        if tuple(texts[i : i + RUN]) in runs:
            marked.update(range(i, i + RUN))
    return [(words[i]["x0"], words[i]["top"], words[i]["x1"], words[i]["bottom"]) for i in marked]
