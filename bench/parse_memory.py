"""Peak memory of one large PDF through the worker's steps (parse → chunk → embed), parsed in the
worker process versus in an `IsolatedParser` child, with RSS sampled from /proc every 50 ms.

    .venv/bin/python bench/parse_memory.py [--pages 500]

Each mode runs in a fresh Python process (this script again, with --mode), so neither inherits
the other's heap. The PDF is written with pikepdf (already a dependency): text only, Helvetica.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import _common as c

c.prepare_env()  # before any rag import

VOCABULARY = (
    "the a of and to in robot warehouse order shipment policy incident battery sensor fleet route "
    "customer report quarter revenue engineer review safety audit latency network storage picking "
    "aisle conveyor forecast supplier contract maintenance firmware dashboard escalation"
)


def make_pdf(path: Path, pages: int) -> None:
    """A text PDF: per page a heading and five paragraphs of made-up (seeded) sentences."""
    import pikepdf
    from pikepdf import Array, Dictionary, Name

    rng, words = random.Random(0), VOCABULARY.split()
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        Dictionary(
            Type=Name.Font,
            Subtype=Name.Type1,
            BaseFont=Name.Helvetica,
            Encoding=Name.WinAnsiEncoding,
        )
    )
    for n in range(1, pages + 1):
        ops = ["BT", "/F1 16 Tf", "56 700 Td", "14 TL", f"(Section {n}: operations review) Tj"]
        ops += ["/F1 10 Tf", "T*"]
        for _ in range(5):
            sentences = (
                " ".join(rng.choices(words, k=rng.randint(8, 18))).capitalize() + "."
                for _ in range(6)
            )
            ops += [f"({line}) '" for line in textwrap.wrap(" ".join(sentences), 100)] + ["T*"]
        ops.append("ET")
        contents = pikepdf.Stream(pdf, "\n".join(ops).encode("latin-1"))
        page = Dictionary(Type=Name.Page, MediaBox=Array([0, 0, 595, 842]), Contents=contents)
        page.Resources = Dictionary(Font=Dictionary(F1=font))
        pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)


def rss_mb(pid: int) -> float:
    """Resident set size from /proc/<pid>/status, 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            kb = next(line.split()[1] for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0
    return int(kb) / 1024


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4, after "(comm)"
            found.append(int(entry))
    return found


class PeakRss:
    """Samples this process's RSS and its children's (summed) every 50 ms while in the block."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.parent = self.child = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            self.parent = max(self.parent, rss_mb(me))
            self.child = max(self.child, sum(rss_mb(pid) for pid in children_of(me)))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_mode(mode: str, pdf: Path, data_dir: Path) -> dict[str, Any]:
    """Parse, chunk and embed `pdf` as `Ingestor._index` does (without writing to the store)."""
    from rag.factory import build_runtime
    from rag.ingestion import EMBED_SLICE

    settings = c.bench_settings(data_dir)
    settings.worker.parse_isolated = mode == "isolated"
    rt = build_runtime(settings)
    rt.embedder.embed_documents(["warm-up"])  # the model is in memory before we measure
    result: dict[str, Any] = {"mode": mode, "cold_mb": rss_mb(os.getpid())}
    # A worker that has already indexed a document: parser imports done (here or in the child).
    sample = c.SAMPLES / "annual-report-2025.pdf"
    rt.chunker.chunk(
        rt.parser(sample, sample.name), document_id="w", collection="w", source="w", title=""
    )
    result["baseline_mb"] = rss_mb(os.getpid())
    sw = c.Stopwatch()
    with PeakRss() as parsing, sw("parse"):
        elements = rt.parser(pdf, pdf.name)
    result["parsed_mb"] = rss_mb(os.getpid())
    with PeakRss() as indexing:
        with sw("chunk"):
            chunks = rt.chunker.chunk(
                elements, document_id="d0", collection="bench", source=pdf.name, title=""
            )
        texts = [chunk.embedding_text() for chunk in chunks]
        with sw("embed"):
            for start in range(0, len(texts), EMBED_SLICE):
                rt.embedder.embed_documents(texts[start : start + EMBED_SLICE])
            [rt.sparse.encode_document(text) for text in texts]
    result |= {f"{stage}_s": seconds for stage, seconds in sw.totals.items()}
    result |= {
        "pages": max(e.page or 0 for e in elements),
        "elements": len(elements),
        "chunks": len(chunks),
        "parse_peak_mb": parsing.parent,
        "peak_parent_mb": max(parsing.parent, indexing.parent),
        "peak_child_mb": max(parsing.child, indexing.child),
        "after_mb": rss_mb(os.getpid()),  # what the worker keeps holding for its next document
    }
    rt.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--mode", choices=("in-process", "isolated"), help=argparse.SUPPRESS)
    parser.add_argument("--pdf", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # one measured run, in this fresh process; the last stdout line is the result
        with c.scratch_dir("rag-bench-parse") as data_dir:
            print(json.dumps(run_mode(args.mode, args.pdf, data_dir)))
        return

    started = time.perf_counter()
    with c.scratch_dir("rag-bench-parse") as folder:
        pdf = folder / f"report-{args.pages}-pages.pdf"
        make_pdf(pdf, args.pages)
        print(f"{pdf.name}: {pdf.stat().st_size / 1e6:.1f} MB; each mode in a fresh process")
        runs = []
        for mode in ("in-process", "isolated"):
            cmd = [sys.executable, __file__, "--mode", mode, "--pdf", str(pdf)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(f"  {mode} done", flush=True)

    c.header(f"{args.pages}-page PDF: parse → chunk → embed, peak RSS sampled every 50 ms")
    print("worker RSS: cold = embedder loaded; warm = after one small PDF (parser imports done);")
    print("peak = while parsing, chunking and embedding the big PDF; after = once it is done\n")
    print(
        f"{'mode':11s} {'pages':>5s} {'chunks':>6s} {'parse':>7s} {'chunk':>6s} {'embed':>6s}"
        f" {'worker: cold':>12s} {'warm':>7s} {'peak':>7s} {'after':>7s} {'child peak':>10s}"
    )
    for r in runs:
        print(
            f"{r['mode']:11s} {r['pages']:5d} {r['chunks']:6d} {r['parse_s']:6.1f}s"
            f" {r['chunk_s']:5.1f}s {r['embed_s']:5.1f}s {r['cold_mb']:9.0f} MB"
            f" {r['baseline_mb']:4.0f} MB {r['peak_parent_mb']:4.0f} MB {r['after_mb']:4.0f} MB"
            f" {r['peak_child_mb']:7.0f} MB"
        )
    for r in runs:
        print(
            f"  {r['mode']:10s}: worker RSS warm {r['baseline_mb']:.0f}, peak while parsing"
            f" {r['parse_peak_mb']:.0f}, after parsing {r['parsed_mb']:.0f}, peak while chunking"
            f" and embedding {r['peak_parent_mb']:.0f} MB"
        )
    inproc, isolated = runs
    print(
        f"\nworker peak RSS, isolated / in-process = "
        f"{isolated['peak_parent_mb'] / inproc['peak_parent_mb']:.2f}"
        f" ({isolated['peak_parent_mb']:.0f} vs {inproc['peak_parent_mb']:.0f} MB);"
        f" held after the document: {isolated['after_mb']:.0f} vs {inproc['after_mb']:.0f} MB"
    )
    print(
        f"parse time, isolated / in-process = {isolated['parse_s'] / inproc['parse_s']:.2f}"
        f" (both warm: the child was already running; the machine is shared, so timings are noisy)"
    )
    print(f"\ntotal run time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
