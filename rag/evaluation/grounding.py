"""Verification measured on labelled (claim, passage) pairs: how often each verifier keeps a
claim its passage supports, contradicts, or says nothing about.

The data is a folder in the SciFact-claims layout (see ../shared/data/scifact-claims/README.md):

    claims.jsonl     {"claim_id", "claim", "doc_id", "label": SUPPORT|CONTRADICT|NEI}
    abstracts.jsonl  {"doc_id", "title", "sentences": [...]}

Pairs are split into two halves by document (a stable hash of `doc_id`), so claims about one
abstract never sit on both sides: the deterministic model is fitted on the *fit* half and every
figure is reported on the *held-out* half. A pair is *kept* when `check` keeps the claim, given
as the answer with the abstract as the only passage and no question.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field, ValidationError

from rag.embedding import Embedder
from rag.errors import InvalidInput
from rag.evaluation.report import write_report
from rag.evaluation.stats import LatencyStats, latency_stats
from rag.models import Chunk, ScoredChunk
from rag.verification import Verifier
from rag.verification.check import check
from rag.verification.claims import Claim
from rag.verification.evidence import BoolArray, FloatArray, gather
from rag.verification.features import featurize
from rag.verification.fit import LABELS, kept
from rag.verification.model import VerifierModel
from rag.verification.rules import OK

if TYPE_CHECKING:
    from rag.factory import Runtime

Half = Literal["fit", "held_out"]
Progress = Callable[[int, int], None]


class ClaimPair(BaseModel):
    claim_id: int | str
    claim: str = Field(min_length=1)
    doc_id: str
    label: Literal["SUPPORT", "CONTRADICT", "NEI"]


class Abstract(BaseModel):
    doc_id: str
    title: str = ""
    sentences: list[str] = Field(min_length=1)

    @property
    def text(self) -> str:
        return " ".join(s.strip() for s in self.sentences)


class ClaimsDataset(BaseModel):
    name: str
    pairs: list[ClaimPair]
    abstracts: dict[str, Abstract]


def _jsonl(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise InvalidInput(
            f"{path} is missing: a claims dataset has claims.jsonl and abstracts.jsonl"
        )
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path.name} line {number}: {exc.msg}") from None
    return rows


def load_claims(directory: Path) -> ClaimsDataset:
    try:
        abstracts = [Abstract.model_validate(r) for r in _jsonl(directory / "abstracts.jsonl")]
        pairs = [ClaimPair.model_validate(r) for r in _jsonl(directory / "claims.jsonl")]
    except ValidationError as exc:
        raise InvalidInput(f"{directory.name}: {str(exc).splitlines()[-1].strip()}") from None
    by_id = {a.doc_id: a for a in abstracts}
    unknown = sorted({p.doc_id for p in pairs} - by_id.keys())
    if unknown:
        raise InvalidInput(f"claims name abstracts that abstracts.jsonl lacks: {unknown[:5]}")
    if not pairs:
        raise InvalidInput(f"{directory} holds no claims")
    return ClaimsDataset(name=directory.name, pairs=pairs, abstracts=by_id)


def half_of(doc_id: str) -> Half:
    """A stable split by document: the first byte of sha256(doc_id), even → fit."""
    return "fit" if hashlib.sha256(doc_id.encode()).digest()[0] % 2 == 0 else "held_out"


def split(pairs: Sequence[ClaimPair], half: Half) -> list[ClaimPair]:
    return [p for p in pairs if half_of(p.doc_id) == half]


def abstract_chunk(abstract: Abstract) -> Chunk:
    """The abstract as an ingested chunk would be: its title as heading and section."""
    return Chunk(
        id=abstract.doc_id,
        document_id=abstract.doc_id,
        collection="claims",
        index=0,
        text=abstract.text,
        title=abstract.title,
        section=abstract.title or None,
        source=abstract.doc_id,
    )


class Passages:
    """Each abstract as a hit with its embedding, made once (as retrieval would return it)."""

    def __init__(self, dataset: ClaimsDataset, embedder: Embedder, pairs: Sequence[ClaimPair]):
        ids = sorted({p.doc_id for p in pairs})
        chunks = [abstract_chunk(dataset.abstracts[d]) for d in ids]
        vectors = embedder.embed_documents([c.embedding_text() for c in chunks])
        self.hits = {
            c.document_id: ScoredChunk(chunk=c, score=1.0, vector=v)
            for c, v in zip(chunks, vectors, strict=True)
        }


def feature_rows(
    pairs: Sequence[ClaimPair], passages: Passages, embedder: Embedder
) -> tuple[FloatArray, npt.NDArray[np.int_]]:
    """One feature row per pair, the claim whole against its abstract, and the rules' say."""
    vectors = np.asarray(embedder.embed_documents([p.claim for p in pairs]))
    rows = [
        featurize([Claim(p.claim, context=p.claim)], gather([passages.hits[p.doc_id]]), v[None])
        for p, v in zip(pairs, vectors, strict=True)
    ]
    values = np.asarray([r.values[0] for r in rows]).reshape(len(pairs), -1)
    return values, np.asarray([r.rules[0, 0] for r in rows], dtype=np.int_)


class KeptRates(BaseModel):
    """Share of pairs kept, per gold label (SUPPORT should be high, the others low)."""

    SUPPORT: float
    CONTRADICT: float
    NEI: float
    pairs: dict[str, int]


def kept_rates(labels: Sequence[str], keep: Sequence[bool] | BoolArray) -> KeptRates:
    y, k = np.asarray(labels), np.asarray(keep, dtype=bool)
    rates = {
        label: round(float(k[y == label].mean()), 3) if (y == label).any() else 0.0
        for label in LABELS
    }
    return KeptRates(**rates, pairs={label: int((y == label).sum()) for label in LABELS})


class SweepPoint(BaseModel):
    support_threshold: float
    kept: KeptRates


def sweep(
    model: VerifierModel, rows: FloatArray, rules: npt.NDArray[np.int_], labels: Sequence[str]
) -> list[SweepPoint]:
    """Kept rates as the support threshold moves (contradiction threshold as fitted)."""
    support, contradiction = model.probabilities(rows)
    support = support * (rules == OK)
    points = []
    for threshold in sorted({*np.round(np.linspace(0.1, 0.9, 17), 3), model.support_threshold}):
        keep = kept(support, contradiction, float(threshold), model.contradiction_threshold)
        points.append(SweepPoint(support_threshold=float(threshold), kept=kept_rates(labels, keep)))
    return points


class VerifierResult(BaseModel):
    verifier: str
    half: Half
    kept: KeptRates
    latency: LatencyStats = Field(description="Per claim: splitting, embedding and judging.")
    fallbacks: int = Field(default=0, description="Pairs where the verifier fell back.")


def run_verifier(
    verifier: Verifier,
    pairs: Sequence[ClaimPair],
    passages: Passages,
    half: Half,
    progress: Progress | None = None,
) -> VerifierResult:
    keep: list[bool] = []
    latencies: list[float] = []
    fallbacks = 0
    name = verifier.name
    for done, pair in enumerate(pairs, start=1):
        started = time.perf_counter()
        result = check(pair.claim, [passages.hits[pair.doc_id]], verifier)
        latencies.append((time.perf_counter() - started) * 1000)
        keep.append(result.answerable)
        fallbacks += result.fallback is not None
        if result.fallback is None:
            name = result.verifier
        if progress:
            progress(done, len(pairs))
    return VerifierResult(
        verifier=name,
        half=half,
        kept=kept_rates([p.label for p in pairs], keep),
        latency=latency_stats(latencies),
        fallbacks=fallbacks,
    )


class EndToEndResult(BaseModel):
    """The claim as the question (top_k passages retrieved from every abstract) and as the
    answer: what a user sees. Split by whether the claim's own abstract was retrieved."""

    verifier: str
    half: Half
    top_k: int
    documents: int
    kept: KeptRates
    kept_when_retrieved: KeptRates
    kept_when_missed: KeptRates
    latency: LatencyStats = Field(description="Verification per claim (retrieval excluded).")


def run_end_to_end(
    runtime: Runtime,
    dataset: ClaimsDataset,
    pairs: Sequence[ClaimPair],
    verifier: Verifier,
    half: Half,
    *,
    top_k: int = 5,
    progress: Callable[[str, int, int], None] | None = None,
) -> EndToEndResult:
    from rag.evaluation.beir import CorpusDoc
    from rag.evaluation.corpus import fresh_collection
    from rag.evaluation.retrieval import ingest_corpus
    from rag.retrieval import SearchOptions

    report = progress or (lambda stage, done, total: None)
    collection = "eval-grounding"
    fresh_collection(runtime, collection, f"verification evaluation on {dataset.name}")
    corpus = [
        CorpusDoc(id=a.doc_id, title=a.title, text=a.text) for a in dataset.abstracts.values()
    ]
    ingest_corpus(runtime, corpus, collection, 256, report)
    floor = runtime.settings.retrieval.min_similarity
    keep: list[bool] = []
    found: list[bool] = []
    latencies: list[float] = []
    for done, pair in enumerate(pairs, start=1):
        hits = runtime.retriever.retrieve(collection, pair.claim, SearchOptions(top_k=top_k))
        hits = [h for h in hits if (h.similarity or 0.0) >= floor]
        started = time.perf_counter()
        keep.append(check(pair.claim, hits, verifier).answerable)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append(any(h.chunk.document_id == pair.doc_id for h in hits))
        report("verify", done, len(pairs))
    runtime.catalog.delete_collection(collection)
    labels = [p.label for p in pairs]

    def rates(where: bool) -> KeptRates:
        chosen = [i for i, f in enumerate(found) if f == where]
        return kept_rates([labels[i] for i in chosen], [keep[i] for i in chosen])

    return EndToEndResult(
        verifier=verifier.name,
        half=half,
        top_k=top_k,
        documents=len(corpus),
        kept=kept_rates(labels, keep),
        kept_when_retrieved=rates(True),
        kept_when_missed=rates(False),
        latency=latency_stats(latencies),
    )


class GroundingReport(BaseModel):
    dataset: str
    model: VerifierModel = Field(description="The deterministic verifier's model as used.")
    results: list[VerifierResult]
    sweep: list[SweepPoint] = Field(description="Deterministic, held-out half.")
    end_to_end: list[EndToEndResult] = Field(default_factory=list)


def summary_rows(report: GroundingReport) -> tuple[list[str], list[list[str]]]:
    header = ["verifier", "half", "pairs", "SUPPORT kept", "CONTRADICT kept", "NEI kept"]
    header += ["p50 ms", "p95 ms", "fallbacks"]
    rows = []
    for r in report.results:
        rows.append(
            [
                r.verifier,
                r.half,
                str(sum(r.kept.pairs.values())),
                f"{r.kept.SUPPORT:.3f}",
                f"{r.kept.CONTRADICT:.3f}",
                f"{r.kept.NEI:.3f}",
                f"{r.latency.p50_ms:.1f}",
                f"{r.latency.p95_ms:.1f}",
                str(r.fallbacks),
            ]
        )
    for e in report.end_to_end:
        for label, kept_ in (
            ("end-to-end", e.kept),
            ("  retrieved", e.kept_when_retrieved),
            ("  missed", e.kept_when_missed),
        ):
            rows.append(
                [
                    f"{e.verifier} {label}",
                    e.half,
                    str(sum(kept_.pairs.values())),
                    f"{kept_.SUPPORT:.3f}",
                    f"{kept_.CONTRADICT:.3f}",
                    f"{kept_.NEI:.3f}",
                    f"{e.latency.p50_ms:.1f}",
                    f"{e.latency.p95_ms:.1f}",
                    "",
                ]
            )
    return header, rows


def sweep_lines(report: GroundingReport) -> list[str]:
    lines = [
        "Threshold sweep (deterministic, held-out; support threshold → kept SUPPORT / "
        "CONTRADICT / NEI):"
    ]
    for point in report.sweep:
        k = point.kept
        mark = " (fitted)" if point.support_threshold == report.model.support_threshold else ""
        lines.append(
            f"  {point.support_threshold:.3f}: {k.SUPPORT:.3f} / {k.CONTRADICT:.3f} / "
            f"{k.NEI:.3f}{mark}"
        )
    return lines


def write_grounding_report(report: GroundingReport, out_dir: Path) -> tuple[Path, Path]:
    header, rows = summary_rows(report)
    return write_report(
        report,
        out_dir,
        title=f"Verification: {report.dataset}",
        lines=sweep_lines(report),
        header=header,
        rows=rows,
    )
