"""Tesseract OCR of one image, shared by PDF pages without a text layer (rag.formats.pdf) and
image files (rag.formats.image). Tesseract runs as a subprocess, single-threaded: with its
OpenMP threads on two busy cores a page took 10 s instead of 2."""

from __future__ import annotations

import os
import subprocess

from rag.config import OcrSettings
from rag.errors import BackendError, UnreadableDocument
from rag.models import Element, ElementKind

INSTALL_HINT = "run `make setup`, or apt-get install tesseract-ocr tesseract-ocr-eng poppler-utils"
_MIN_CONFIDENCE = 40.0  # tesseract's mean word confidence below which a paragraph is noise


def page_too_slow(page: int, limit_s: float) -> str:
    limit = f"{limit_s:g} s (the per-page limit, ocr.page_timeout_s)"
    return f"OCR of page {page} took longer than {limit}"


def tesseract(image: bytes, page: int, *, dpi: int | None, settings: OcrSettings) -> list[Element]:
    """The text of an encoded image (PNG, PPM, JPEG, TIFF): one TEXT element per paragraph,
    on `page`. `dpi`: the image's resolution when known (tesseract guesses otherwise)."""
    limit = settings.page_timeout_s
    command = ["tesseract", "-", "-", "-l", settings.languages]
    if dpi:
        command += ["--dpi", str(dpi)]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        tsv = subprocess.run(
            [*command, "tsv"], input=image, capture_output=True, timeout=limit, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise UnreadableDocument(page_too_slow(page, limit)) from exc
    if tsv.returncode != 0:
        detail = stderr_line(tsv.stderr)
        if "language" in detail.lower():  # an install problem, not the document's
            raise BackendError(
                f"tesseract cannot load the OCR languages {settings.languages!r} ({detail}); "
                "install tesseract-ocr-<lang>",
                backend="ocr",
            )
        raise UnreadableDocument(f"OCR of page {page} failed ({detail})")
    return _paragraphs(tsv.stdout.decode("utf-8", "replace"), page)


def _paragraphs(tsv: str, page: int) -> list[Element]:
    """Tesseract's TSV (one row per word, numbered by block, paragraph and line) as paragraphs."""
    words: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for row in tsv.splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
            continue
        words.setdefault((cells[2], cells[3]), []).append((float(cells[10]), cells[11].strip()))
    elements = []
    for paragraph in words.values():
        if sum(conf for conf, _ in paragraph) / len(paragraph) < _MIN_CONFIDENCE:
            continue
        text = " ".join(word for _, word in paragraph)
        elements.append(Element(kind=ElementKind.TEXT, text=text, page=page))
    return elements


def stderr_line(data: bytes) -> str:
    lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:160] if lines else "no details"
