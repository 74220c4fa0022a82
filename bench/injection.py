"""Injection screening (rag.guard.injection): how much injected text it flags, and how much clean
scientific text it flags by mistake.

Injected: tests/fixtures/injection/injected.jsonl, document text with one injection embedded per
row; `split` says which rows the patterns were fitted on (fit) and which were held out (test).
Clean: every SciFact abstract (/work/shared/data/scifact/corpus.jsonl, or --corpus), whole and
split into sentences; abstracts with an even index were looked at while fitting, odd ones not.

    .venv/bin/python bench/injection.py [--corpus PATH] [--show 10]

Figures are printed, never asserted. Targets (issue 22): >= 95% of injected passages flagged,
<= 2% of clean passages flagged.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import _common as c

c.prepare_env()  # puts the project on the path

from rag.guard.injection import screen  # noqa: E402

INJECTED = c.ROOT / "tests" / "fixtures" / "injection" / "injected.jsonl"
CORPUS = Path("/work/shared/data/scifact/corpus.jsonl")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def rate(hits: int, total: int) -> str:
    return f"{hits}/{total} = {100 * hits / max(total, 1):.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--show", type=int, default=10, help="print this many misses per kind")
    args = parser.parse_args()

    rows = [json.loads(line) for line in INJECTED.read_text(encoding="utf-8").splitlines()]
    print(f"injected passages ({len({r['family'] for r in rows})} families, {len(rows)} rows)")
    for split in ("fit", "test"):
        part = [r for r in rows if r["split"] == split]
        missed = [r for r in part if not screen(r["text"], "flag").flagged]
        print(f"  {split:4}  flagged {rate(len(part) - len(missed), len(part))}")
        for r in missed[: args.show]:
            print(f"        missed #{r['id']} {r['family']}: {r['text'][:100]!r}")

    abstracts = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines()]
    print(f"clean SciFact abstracts ({len(abstracts)})")
    for parity, name in ((0, "even (fit)"), (1, "odd (test)")):
        part = [a for i, a in enumerate(abstracts) if i % 2 == parity]
        whole = [f"{a['title']}. {a['text']}" for a in part]
        sentences = [s for text in whole for s in _SENTENCE.split(text) if s.strip()]
        flagged_whole = [(t, screen(t, "flag")) for t in whole]
        flagged_whole = [(t, f) for t, f in flagged_whole if f.flagged]
        flagged_sentences = sum(screen(s, "flag").flagged for s in sentences)
        patterns = Counter(p for _, f in flagged_whole for p in f.patterns)
        print(
            f"  {name:10}  abstracts flagged {rate(len(flagged_whole), len(whole))}"
            f"  sentences flagged {rate(flagged_sentences, len(sentences))}"
            f"  by pattern {dict(patterns)}"
        )
        for text, finding in flagged_whole[: args.show]:
            print(f"        false alarm {finding.patterns}: {text[:100]!r}")


if __name__ == "__main__":
    main()
