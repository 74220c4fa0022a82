"""OCR cost: seconds per scanned page, and a scanned PDF's whole parse in an `IsolatedParser` child
(as the worker parses), next to the same pages as a text PDF parsed the same way.

    .venv/bin/python bench/ocr.py [--pages 20] [--dpi 300]

The PDFs are made at run time by tests/fixtures/pdf/make_pdfs.py: ~330 words of prose a page,
scanned at 200 dpi as 1-bit images. Each parse gets a warm child (its imports paid by a first
one-page parse), so the figures are the parse, not the start-up. Also prints word accuracy of the
OCR text against the words drawn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import _common as c

c.prepare_env()  # before any rag import
sys.path.insert(0, str(c.ROOT / "tests" / "fixtures" / "pdf"))

import make_pdfs  # noqa: E402


def parse_in_child(path: Path, warm_up: Path) -> tuple[float, list[str]]:
    from rag.config import get_settings
    from rag.parse_pool import IsolatedParser

    worker = get_settings().worker
    parser = IsolatedParser(timeout_s=worker.parse_timeout_s, max_memory_mb=worker.parse_memory_mb)
    try:
        parser(warm_up, "warm-up.pdf")
        start = time.perf_counter()
        elements = parser(path, path.name)
        return time.perf_counter() - start, [e.text for e in elements]
    finally:
        parser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--dpi", type=int, default=None, help="ocr.dpi (default: the setting's)")
    args = ap.parse_args()
    if args.dpi:
        os.environ["RAG_OCR__DPI"] = str(args.dpi)

    from rag.config import get_settings
    from rag.formats.pdf import ocr_page

    settings = get_settings()
    pages = make_pdfs.report_pages(args.pages)
    with c.scratch_dir("ocr") as tmp:
        scanned, text = tmp / "scanned.pdf", tmp / "text.pdf"
        scanned.write_bytes(make_pdfs.scanned_pdf(pages))
        text.write_bytes(make_pdfs.text_pdf(pages))
        warm_up = tmp / "warm-up.pdf"
        warm_up.write_bytes(make_pdfs.text_pdf(pages[:1]))
        mb = scanned.stat().st_size / 1e6
        print(
            f"{args.pages} pages, ~{len(' '.join(pages[0]).split())} words each; "
            f"scanned PDF {mb:.2f} MB; ocr.dpi={settings.ocr.dpi}; {os.cpu_count()} cores"
        )

        # Per page, in this process: render (pdftoppm) + tesseract, single-threaded.
        per_page = []
        for number in range(1, min(args.pages, 5) + 1):
            start = time.perf_counter()
            ocr_page(scanned, number, dpi=settings.ocr.dpi, settings=settings.ocr)
            per_page.append(time.perf_counter() - start)
        print(
            f"OCR per page (render + tesseract, {len(per_page)} pages): "
            f"median {statistics.median(per_page):.2f} s, max {max(per_page):.2f} s"
        )

        text_s, text_out = parse_in_child(text, warm_up)
        scan_s, scan_out = parse_in_child(scanned, warm_up)
        limit = settings.worker.parse_timeout_s
        print(f"text PDF   parse in child: {text_s:6.2f} s ({text_s / args.pages:.2f} s/page)")
        print(
            f"scanned PDF parse in child: {scan_s:6.2f} s ({scan_s / args.pages:.2f} s/page), "
            f"{scan_s / limit:.0%} of worker.parse_timeout_s={limit:.0f} s"
        )

        drawn = " ".join(" ".join(p) for p in pages).split()
        read = " ".join(scan_out).split()
        layer = " ".join(text_out).split()
        print(
            f"words: drawn {len(drawn)}, text layer {len(layer)}, OCR {len(read)}; "
            f"OCR words also drawn: {_overlap(read, drawn):.1%}"
        )


def _overlap(found: list[str], expected: list[str]) -> float:
    from collections import Counter

    common = Counter(found) & Counter(expected)
    return sum(common.values()) / max(len(expected), 1)


if __name__ == "__main__":
    main()
