"""Answer evaluation: run question/answer sets through the full query path and score them.

A dataset is JSONL, one question per line:

    {"question": "...", "answer": "reference text" | ["or", "several"], "documents": ["a.md"]}
    {"question": "...", "answerable": false}

`answer` is the reference (omit it, or set `"answerable": false`, for a question the documents
do not answer); `documents` optionally names the sources that support it, which is what
citation precision is judged by. Scores, per generator:

- exact match and token F1 of the answer against the best-matching reference (SQuAD-style
  normalisation: case, punctuation, articles), on answerable questions;
- citation precision: cited passages from a supporting document, over all cited passages;
- abstention: how often the service says "not in the documents" on unanswerable questions
  (it should) and on answerable ones (it should not);
- latency, tokens and cost per answer.

With `oracle`, no model runs: each reference answer is verified as if a model had written it,
against the passages retrieved for its question. That measures verification itself: how often
a correct answer is kept, overall and where retrieval found its evidence (the item's
`evidence` sentences, or else its reference: at least `EVIDENCE_FOUND` of their content words in
the retrieved passages). A question the documents do not answer gets, as its "answer", the
retrieved sentence that shares most of its words (`beside_the_point`): what a model quoting the
passages writes, grounded but not an answer, which verification should reject.
"""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from rag.errors import InvalidInput
from rag.evaluation.report import write_report
from rag.evaluation.stats import LatencyStats, latency_stats
from rag.evaluation.wrong import CONTRADICT, NEI, Perturbed, names_in, perturb
from rag.models import Answer, ScoredChunk
from rag.verification.text import content_terms, question_content_terms, split_sentences

if TYPE_CHECKING:
    from rag.answering import Answerer
    from rag.generation.router import RouteRequest
    from rag.scoreboard import EvalFigures


WRONG_KINDS = ("number", "name", "other")
EVIDENCE_FOUND = 0.6
"""Share of the evidence's content words the passages must hold for it to count as retrieved."""


class QAItem(BaseModel):
    question: str = Field(min_length=1)
    answer: list[str] = Field(default_factory=list, description="Reference answers.")
    answerable: bool | None = None
    documents: list[str] = Field(default_factory=list, description="Supporting sources.")
    evidence: list[str] = Field(
        default_factory=list, description="The sentences of the documents that hold the answer."
    )

    @field_validator("answer", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else ([] if value is None else value)

    @property
    def expects_answer(self) -> bool:
        return self.answerable if self.answerable is not None else bool(self.answer)


class AnswerRecord(BaseModel):
    question: str
    expected_answerable: bool
    answer: str
    answerable: bool
    model: str | None
    route_model: str | None = Field(default=None, description="Catalog name of the model.")
    exact_match: float | None
    f1: float | None
    cited_sources: list[str]
    citation_precision: float | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    evidence_retrieved: bool | None = Field(
        default=None, description="Whether the passages held the answer's evidence (oracle)."
    )
    claims: dict[str, int] = Field(
        default_factory=dict, description="The answer's claims by verification label."
    )
    wrong_kept: dict[str, bool] = Field(
        default_factory=dict,
        description="Oracle: whether each wrong answer made from the reference (number, name, "
        "other) was kept.",
    )


class AnswerReport(BaseModel):
    dataset: str
    generator: str
    questions: int
    metrics: dict[str, float | None]
    latency: LatencyStats
    records: list[AnswerRecord]


def load_qa(path: Path) -> list[QAItem]:
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(QAItem.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            first = str(exc).splitlines()[0 if isinstance(exc, json.JSONDecodeError) else -1]
            raise InvalidInput(f"{path.name} line {number}: {first.strip()}") from exc
    if not items:
        raise InvalidInput(f"{path} holds no questions")
    return items


# SQuAD-style normalisation --------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
_MARKERS = re.compile(r"\[\d+\]")


def normalize(text: str) -> str:
    text = _MARKERS.sub(" ", text).lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    return float(any(normalize(prediction) == normalize(ref) for ref in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    def f1(pred: list[str], ref: list[str]) -> float:
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref or not common:
            return float(pred == ref)
        precision, recall = common / len(pred), common / len(ref)
        return 2 * precision * recall / (precision + recall)

    tokens = normalize(prediction).split()
    return max((f1(tokens, normalize(ref).split()) for ref in references), default=0.0)


# Running ------------------------------------------------------------------------------------


def evaluate_answers(
    answerer: Answerer,
    collection: str,
    items: Sequence[QAItem],
    *,
    dataset: str,
    model: str | None = None,
    policy: str | None = None,
    oracle: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> AnswerReport:
    """Ask every question through `answerer` (routed to `model` or `policy` when given; the
    default policy otherwise) and score the answers. With `oracle`, verify each reference
    answer instead of asking a model (for a question without one: `beside_the_point`)."""
    from rag.generation.router import RouteRequest

    route = RouteRequest(model=model, policy=policy) if model or policy else None
    if oracle:
        items = [item for item in items if item.answer or not item.expects_answer]
    names = names_in([a for item in items for a in item.answer])
    records = []
    for done, item in enumerate(items, start=1):
        started = time.perf_counter()
        if oracle:
            answer, extra = _oracle(answerer, collection, item, items, names, route, seed=done)
        else:
            answer, extra = answerer.answer(collection, item.question, route=route), {}
        latency = (time.perf_counter() - started) * 1000
        records.append(_record(item, answer, latency).model_copy(update=extra))
        if progress:
            progress(done, len(items))
    generator = model or (f"policy {policy}" if policy else answerer.generator.model_id)
    return AnswerReport(
        dataset=dataset,
        generator=f"oracle ({generator})" if oracle else generator,
        questions=len(records),
        metrics=summarize(records),
        latency=latency_stats([r.latency_ms for r in records]),
        records=records,
    )


def _oracle(
    answerer: Answerer,
    collection: str,
    item: QAItem,
    items: Sequence[QAItem],
    names: Sequence[str],
    route: RouteRequest | None,
    *,
    seed: int,
) -> tuple[Answer, dict[str, Any]]:
    """The reference answer (for an unanswerable question: `beside_the_point`) verified against
    the passages retrieved for the question, with what the record adds: whether they held the
    evidence, and which wrong answers made from the reference survived."""
    passages = answerer.passages(collection, item.question)
    if not item.expects_answer:
        quote = beside_the_point(item.question, passages)
        return answerer.verify(item.question, quote, passages, route=route), {}
    answer = answerer.verify(item.question, item.answer[0], passages, route=route)
    wrong = wrong_answers(item, items, passages, names, seed=seed)
    return answer, {
        "evidence_retrieved": evidence_found(item, passages),
        "wrong_kept": {
            kind: made.inserted in answerer.verify(item.question, made.text, passages).answer
            for kind, made in wrong.items()
        },
    }


def wrong_answers(
    item: QAItem,
    items: Sequence[QAItem],
    passages: Sequence[ScoredChunk],
    names: Sequence[str],
    seed: int,
) -> dict[str, Perturbed]:
    """Wrong answers made from the reference, which verification should drop: one number
    changed, one name swapped for a name the passages lack, and the reference answer of the
    next question about other documents. Each is *kept* when the changed part (`inserted`)
    survives into the checked answer."""
    text = " ".join(p.chunk.text for p in passages)
    made = {
        ("number" if wrong.label == CONTRADICT else "name"): wrong
        for wrong in perturb(item.answer[0], text, names, seed)
    }
    at = items.index(item)
    others = [*items[at + 1 :], *items[:at]]
    other = next(
        (o for o in others if o.answer and not set(o.documents) & set(item.documents)), None
    )
    if other is not None:
        answer = other.answer[0]
        made["other"] = Perturbed(answer, NEI, split_sentences(answer)[0])
    return made


def beside_the_point(question: str, passages: Sequence[ScoredChunk]) -> str:
    """The passages' sentence that shares most of the question's content words."""
    asked = question_content_terms(question)
    sentences = [s for p in passages for s in split_sentences(p.chunk.text)]
    return max(sentences, key=lambda s: len(asked & set(content_terms(s))), default="")


def evidence_found(item: QAItem, passages: Sequence[ScoredChunk]) -> bool:
    """The passages hold at least EVIDENCE_FOUND of the evidence's (else the reference's)
    content words."""
    wanted = set(content_terms(" ".join(item.evidence or item.answer)))
    held = set(content_terms(" ".join(p.chunk.text for p in passages)))
    return bool(wanted) and len(wanted & held) / len(wanted) >= EVIDENCE_FOUND


def _record(item: QAItem, answer: Answer, latency_ms: float) -> AnswerRecord:
    sources = [c.source for c in answer.citations]
    scored = item.expects_answer and bool(item.answer)
    precision = None
    if item.documents and sources:
        supporting = set(item.documents)
        precision = sum(s in supporting for s in sources) / len(sources)
    text = answer.answer if answer.answerable else ""
    return AnswerRecord(
        question=item.question,
        expected_answerable=item.expects_answer,
        answer=answer.answer,
        answerable=answer.answerable,
        model=answer.model,
        route_model=answer.route.model if answer.route else None,
        exact_match=exact_match(text, item.answer) if scored else None,
        f1=token_f1(text, item.answer) if scored else None,
        cited_sources=sources,
        citation_precision=precision,
        latency_ms=round(latency_ms, 1),
        prompt_tokens=answer.usage.get("prompt_tokens", 0),
        completion_tokens=answer.usage.get("completion_tokens", 0),
        cost_usd=answer.route.cost_usd if answer.route else 0.0,
        claims=dict(Counter(c.label.value for c in answer.verification.claims))
        if answer.verification
        else {},
    )


def scoreboard_figures(report: AnswerReport) -> list[EvalFigures]:
    """The run's figures per catalog model that answered (a policy's run may use several),
    for the scoreboard (`rag eval answers --record`). Oracle and extractive-only records (no
    catalog model) are left out."""
    from rag.scoreboard import EvalFigures

    if report.generator.startswith("oracle"):
        return []
    by_model: dict[tuple[str, str], list[AnswerRecord]] = {}
    for r in report.records:
        if r.route_model:
            by_model.setdefault((r.route_model, r.model or ""), []).append(r)
    figures = []
    for (name, version), records in by_model.items():
        f1 = [r.f1 for r in records if r.expected_answerable and r.f1 is not None]
        precision = [r.citation_precision for r in records if r.citation_precision is not None]
        abstained = [float(not r.answerable) for r in records if not r.expected_answerable]
        figures.append(
            EvalFigures(
                model=name,
                version=version,
                questions=len(records),
                f1=_mean(f1),
                f1_n=len(f1),
                citation_precision=_mean(precision),
                citation_precision_n=len(precision),
                abstention=_mean(abstained),
                abstention_n=len(abstained),
                latency_ms=sum(r.latency_ms for r in records) / len(records),
                cost_usd=sum(r.cost_usd for r in records) / len(records),
            )
        )
    return [f for f in figures if f.quality is not None]


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def summarize(records: Sequence[AnswerRecord]) -> dict[str, float | None]:
    """Means; a metric with nothing to measure (no unanswerable questions, say) is None."""
    answerable = [r for r in records if r.expected_answerable]
    unanswerable = [r for r in records if not r.expected_answerable]
    return {
        "exact_match": _mean([r.exact_match for r in answerable]),
        "f1": _mean([r.f1 for r in answerable]),
        "citation_precision": _mean([r.citation_precision for r in records]),
        "answered_without_citation": _mean(
            [float(not r.cited_sources) for r in records if r.answerable]
        ),
        "abstention_on_unanswerable": _mean([float(not r.answerable) for r in unanswerable]),
        "false_abstention": _mean([float(not r.answerable) for r in answerable]),
        "kept_when_evidence_retrieved": _mean(
            [float(r.answerable) for r in answerable if r.evidence_retrieved]
        ),
        "evidence_retrieved": _mean(
            [float(r.evidence_retrieved) for r in answerable if r.evidence_retrieved is not None]
        ),
        **{
            f"wrong_kept_{kind}": _mean(
                [float(r.wrong_kept[kind]) for r in records if kind in r.wrong_kept]
            )
            for kind in WRONG_KINDS
        },
        "prompt_tokens": _mean([float(r.prompt_tokens) for r in records]),
        "completion_tokens": _mean([float(r.completion_tokens) for r in records]),
        "cost_usd": _mean([r.cost_usd for r in records]),
    }


# Output -------------------------------------------------------------------------------------


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def summary_rows(reports: Sequence[AnswerReport]) -> tuple[list[str], list[list[str]]]:
    header = [
        "generator",
        "EM",
        "F1",
        "citation precision",
        "abstains when unanswerable",
        "false abstention",
        "evidence retrieved",
        "kept where retrieved",
        "wrong kept (number/name/other)",
        "p50 ms",
        "tokens in/out",
        "cost $",
    ]
    rows = []
    for r in reports:
        m = r.metrics
        tokens = f"{_cell(m['prompt_tokens'], 0)}/{_cell(m['completion_tokens'], 0)}"
        rows.append(
            [
                r.generator,
                _cell(m["exact_match"]),
                _cell(m["f1"]),
                _cell(m["citation_precision"]),
                _cell(m["abstention_on_unanswerable"]),
                _cell(m["false_abstention"]),
                _cell(m["evidence_retrieved"]),
                _cell(m["kept_when_evidence_retrieved"]),
                "/".join(_cell(m[f"wrong_kept_{kind}"], 2) for kind in WRONG_KINDS),
                f"{r.latency.p50_ms:.0f}",
                tokens,
                _cell(m["cost_usd"], 5),
            ]
        )
    return header, rows


class AnswerReports(BaseModel):
    """One report per model or policy compared, on the same questions."""

    reports: list[AnswerReport]


def write_answer_report(reports: Sequence[AnswerReport], out_dir: Path) -> tuple[Path, Path]:
    header, rows = summary_rows(reports)
    return write_report(
        AnswerReports(reports=list(reports)),
        out_dir,
        title=f"Answer evaluation: {reports[0].dataset}",
        lines=[f"{reports[0].questions} questions"],
        header=header,
        rows=rows,
    )
