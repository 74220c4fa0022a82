"""PDF text: the text layer page by page (pdfminer through `unstructured`'s "fast" strategy), OCR
for the pages that have none, then one clean-up for both.

A page counts as having no text layer when it yields fewer than `_MIN_PAGE_CHARS` letters and
digits (a scanner's "Page 3" stamp is not a text layer). Such a page is rendered with poppler's
`pdftoppm` and read by `tesseract`, both as subprocesses: no extra Python package, a timeout that
really kills, and the parse child's memory cap applies to them too. The OCR text replaces the
page's text layer only when it has more letters and digits, so text pages are never touched.
Tesseract runs single-threaded: with OpenMP on two busy cores one page took 10 s instead of 2.

Ruled tables on text-layer pages become TABLE elements ("header: value; ..." rows) in place of
the loose text pdfminer makes of their cells: rag/formats/pdf_tables.py.

The clean-up: Unicode NFKC (ligatures "ﬁ" → "fi", full-width forms) except super- and subscripts
and fractions, which NFKC would flatten ("m²" → "m2"); words hyphenated across a line break joined
again; page numbers and headers or footers repeated on most pages dropped. Page numbers stay in
`Element.page`.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rag.config import OcrSettings, get_settings
from rag.errors import UnreadableDocument
from rag.formats.ocr import INSTALL_HINT, page_too_slow, stderr_line, tesseract
from rag.formats.pdf_tables import with_tables
from rag.models import Element, ElementKind

if TYPE_CHECKING:
    from unstructured.documents.elements import Element as RawElement

log = logging.getLogger(__name__)

ENCRYPTED = "encrypted PDF (password protected); remove the password and upload it again"
_MIN_PAGE_CHARS = 16
_MAX_PIXELS = 40_000_000  # a poster page is OCRed at a lower resolution, not at 1 GB of pixels
_HEADER_DEPTH = 2  # elements at each end of a page that may be a header or a footer
_PAGE_NUMBER = re.compile(
    r"(?:page|p\.|seite)?\s*[-–—]?\s*\d{1,4}\s*[-–—]?(?:\s*(?:of|/|von)\s*\d{1,4})?", re.I
)
_LINE_HYPHEN = re.compile(r"(?<!\w)([^\W\d_]+)[-\u00ad\u2010] ([^\W\d_]+)")
# "pre- and post-processing", "low- vs. high-dose": a hyphen whose word is still to come.
_SUSPENDED = frozenset(
    {
        "and",
        "or",
        "nor",
        "to",
        "but",
        "as",
        "vs",
        "versus",
        "than",
        "with",
        "und",
        "oder",
        "et",
        "ou",
    }
)
_KEEP_FORMS = ("<super>", "<sub>", "<fraction>")

Convert = Callable[[Sequence["RawElement"]], list[Element]]


def check_pdf(path: Path) -> str | None:
    """Raise for a password-protected PDF; return qpdf's complaint if the file is damaged."""
    import pikepdf

    try:
        pikepdf.open(path).close()
    except pikepdf.PasswordError as exc:
        raise UnreadableDocument(ENCRYPTED) from exc
    except Exception as exc:  # pdfminer may still read it; the reason is used if it does not
        lines = str(exc).removeprefix(f"{path}: ").strip().splitlines()
        return lines[0][:160] if lines else type(exc).__name__
    return None


def partition(path: Path, *, damage: str | None, convert: Convert) -> list[Element]:
    """The document's elements; `UnreadableDocument` saying why when there are none."""
    from unstructured.partition.pdf import partition_pdf

    # PDFs get no language detection anyway; naming one silences a warning.
    raw = partition_pdf(filename=str(path), strategy="fast", languages=["eng"])
    # Ruled tables replace their loose cell text; a page later OCRed loses them with its text.
    converted = convert(raw) if damage else with_tables(path, raw, convert)
    pages: dict[int, list[Element]] = {}
    for element in converted:
        pages.setdefault(element.page or 0, []).append(element)
    sizes = _page_sizes(path) if damage is None else []
    textless = [n for n in range(1, len(sizes) + 1) if _chars(pages.get(n, [])) < _MIN_PAGE_CHARS]
    why = "the PDF has no text layer"
    if textless:
        why = _ocr_pages(path, textless, sizes, pages, get_settings().ocr)
    elements = clean([pages[n] for n in sorted(pages)])
    if not elements and damage:
        raise UnreadableDocument(f"corrupt or invalid PDF file ({damage})")
    if not elements:
        raise UnreadableDocument(f"no text found ({why})")
    return elements


# -- OCR --------------------------------------------------------------------------------------


def _ocr_pages(
    path: Path,
    numbers: list[int],
    sizes: list[tuple[float, float]],
    pages: dict[int, list[Element]],
    settings: OcrSettings,
) -> str:
    """OCR `numbers` into `pages`; return why the document may have no text."""
    if not settings.enabled:
        return "scanned PDF? OCR is not enabled (ocr.enabled)"
    missing = [tool for tool in ("tesseract", "pdftoppm") if shutil.which(tool) is None]
    if missing:
        log.warning("%s not installed: %d PDF page(s) without text skipped", missing, len(numbers))
        return f"scanned PDF? OCR needs {' and '.join(missing)}, not installed: {INSTALL_HINT}"
    for number in numbers:
        width, height = sizes[number - 1]
        dpi = min(settings.dpi, int((_MAX_PIXELS / max(width * height / 72**2, 1.0)) ** 0.5))
        found = ocr_page(path, number, dpi=dpi, settings=settings)
        if _chars(found) > _chars(pages.get(number, [])):
            pages[number] = found
    return "no text layer, and OCR found no text"


def ocr_page(path: Path, number: int, *, dpi: int, settings: OcrSettings) -> list[Element]:
    """Page `number` (from 1) rendered at `dpi` and OCRed: one TEXT element per paragraph."""
    limit = settings.page_timeout_s
    render = ["pdftoppm", "-r", str(dpi), "-gray", "-f", str(number), "-l", str(number), str(path)]
    try:
        image = subprocess.run(render, capture_output=True, timeout=limit, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UnreadableDocument(page_too_slow(number, limit)) from exc
    if image.returncode != 0 or not image.stdout:
        log.warning("page %d not rendered for OCR: %s", number, stderr_line(image.stderr))
        return []
    return tesseract(image.stdout, number, dpi=dpi, settings=settings)


def _page_sizes(path: Path) -> list[tuple[float, float]]:
    """Each page's (width, height) in points; empty if the file will not open."""
    import pikepdf

    try:
        with pikepdf.open(path) as pdf:
            boxes = [page.mediabox for page in pdf.pages]
            return [(abs(float(b[2] - b[0])), abs(float(b[3] - b[1]))) for b in boxes]
    except Exception:
        return []


def _chars(elements: Sequence[Element]) -> int:
    return sum(c.isalnum() for e in elements for c in e.text)


# -- clean-up ---------------------------------------------------------------------------------


def clean(pages: Sequence[Sequence[Element]]) -> list[Element]:
    """Pages' elements as one list: normalised, de-hyphenated, without repeated page furniture."""
    pages = [[_normalise(e) for e in page] for page in pages]
    furniture = _furniture(pages)
    elements: list[Element] = []
    for page in pages:
        last = len(page) - 1
        for i, element in enumerate(page):
            edge = i < _HEADER_DEPTH or i > last - _HEADER_DEPTH
            if edge and (_key(element.text) in furniture or _is_page_number(element.text)):
                continue
            previous = elements[-1] if elements else None
            if previous is not None and _continues(previous, element):
                text = dehyphenate(f"{previous.text} {element.text}")
                elements[-1] = previous.model_copy(update={"text": text})
                continue
            if element.kind is not ElementKind.TABLE:
                element = element.model_copy(update={"text": dehyphenate(element.text)})
            elements.append(element)
    return elements


def _normalise(element: Element) -> Element:
    text = "".join(
        c
        if unicodedata.decomposition(c).startswith(_KEEP_FORMS)
        else unicodedata.normalize("NFKC", c)
        for c in element.text
    )
    return element if text == element.text else element.model_copy(update={"text": text})


def _key(text: str) -> str:
    """Lines that differ only in numbers ("Report 2025, page 3") are the same furniture."""
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def _is_page_number(text: str) -> bool:
    return len(text) <= 24 and _PAGE_NUMBER.fullmatch(text.strip()) is not None


def _furniture(pages: Sequence[Sequence[Element]]) -> frozenset[str]:
    """Texts at the top or bottom of more than half of the pages (at least three)."""
    if len(pages) < 3:
        return frozenset()
    counts: Counter[str] = Counter()
    for page in pages:
        edges = [*page[:_HEADER_DEPTH], *page[-_HEADER_DEPTH:]]
        counts.update({_key(e.text) for e in edges if len(e.text) <= 200})
    return frozenset(key for key, n in counts.items() if n >= 3 and n > len(pages) / 2)


def _continues(previous: Element, element: Element) -> bool:
    """`element` goes on with a word `previous` broke with a hyphen at the end of a line."""
    kinds = {previous.kind, element.kind}
    return (
        ElementKind.TABLE not in kinds
        and re.search(r"[^\W\d_]{2}[-\u00ad\u2010]$", previous.text) is not None
        and element.text[:1].islower()
    )


def dehyphenate(text: str) -> str:
    """Join "implementa- tion" (a line break pdfminer turned into a space); keep "well-known",
    "e-mail", "state-of-the-art" and "pre- and post-processing"."""
    return _LINE_HYPHEN.sub(lambda m: _rejoin(text, m), text)


def _rejoin(text: str, match: re.Match[str]) -> str:
    left, right = match.group(1), match.group(2)
    compound = match.start() > 0 and text[match.start() - 1] in "-\u2010"
    if not (left[-1].islower() and right[0].islower()) or right in _SUSPENDED:
        return match.group(0)
    if compound or len(left) == 1:
        return f"{left}-{right}"
    if _zipf(left + right) >= 2.0:
        return left + right
    if _zipf(left) >= 1.0 and _zipf(right) >= 1.0:
        return f"{left}-{right}"
    return left + right  # a long word broken between syllables


@lru_cache(maxsize=4096)
def _zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return float(zipf_frequency(word, "en"))
