"""Citation attribution done by our code, not by the model.

A small model invents answers and cites passages at random, so its [n] markers are not trusted.
Instead every sentence of its answer is checked against the retrieved passages, kept only when a
passage supports it, and cited to the passages that do. Support mixes two signals because each
fails alone: word overlap catches short extractive answers ("Rust", "15 minutes") that embeddings
score poorly, and embedding similarity catches paraphrases that share few words. Numbers and
names are checked strictly, since those are what a model gets wrong while sounding right.
Everything here is deterministic for a given embedder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from rag.embedding import Embedder
from rag.models import Citation, ScoredChunk

UNSUPPORTED_REASON = "the model's answer is not supported by the retrieved passages"
ABSTAINED_REASON = "the model found no answer in the retrieved passages"
EMPTY_REASON = "the model produced no answer"
NO_PASSAGES_REASON = "no passages were retrieved"

LEXICAL_WEIGHT = 0.6
"""Share of word overlap in the support score; the rest is embedding cosine."""

CITE_MARGIN = 0.05
"""Other passages scoring within this of the best one are cited too."""

MISSING_KEY_TERM_PENALTY = 0.5
"""Support is multiplied by this for each number or name the passage does not contain."""

OFF_TOPIC_FLOOR = 0.3
"""Word overlap counts this much when the matching sentence shares no word with the question."""

WINDOW = 1
"""Sentences either side of a passage sentence where the answer's names and numbers may be."""

SNIPPET_CHARS = 300

_STOPWORD_LIST = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each either
    else etc few for from further had has have having he her here hers herself him himself his
    how i if in into is it its itself just let like may me might more most must my myself no nor
    not now of off on once only or other ought our ours ourselves out over own per same shall
    she should so some such than that the their theirs them themselves then there these they
    this those through thus to too under until up upon us very via was we were what when where
    which while who whom whose why will with within without would yes yet you your yours
    yourself yourselves according answer based passage passages question
"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())
# How a question is asked, not what it is about: "how long", "how often" rarely recur in the
# passage that answers them.
_QUESTION_FRAME = frozenset(
    {"how", "many", "much", "long", "often", "far", "old", "kind", "type", "name", "called"}
)

_WORD = re.compile(r"\d[\d,]*(?:\.\d+)?|[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
_MARKERS = re.compile(r"\s*\[\s*\d+(?:\s*[,;-]\s*\d+)*\s*\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# A sentence ends at . ! ? followed by space, except after common abbreviations and initials.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_ABBREVIATION_LIST = "e.g i.e etc vs mr mrs ms dr prof fig eq approx inc ltd jr sr"
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split())

_ABSTENTION = re.compile(
    r"""
    \b(?:i|we)\s+(?:do\s+not|don['’]t|cannot|can['’]t|could\s+not|couldn['’]t)\s+
        (?:know|say|tell|find|answer|determine)
    | \b(?:cannot|can['’]t|unable\s+to|not\s+able\s+to|impossible\s+to)\s+(?:be\s+)?
        (?:answer|determine|find|tell|say)
    | \bnot\s+(?:mentioned|stated|specified|provided|given|included|covered|found|contained|
        available|present|discussed|answered)\s+in\s+the\s+
        (?:passages?|context|text|documents?|sources?|information)
    | \b(?:passages?|context|text|documents?|sources?)\s+(?:do(?:es)?\s+not|do(?:es)?n['’]t)\s+
        (?:say|mention|contain|specify|state|provide|include|cover|answer|discuss|tell)
    | \b(?:passages?|context|text|documents?|sources?)\s+(?:contains?|provides?|gives?|has|have)\s+
        no\s+(?:information|mention|answer|details?)
    | \bthere\s+(?:is|was)\s+no\s+(?:information|mention|answer)\b
    | \bno\s+(?:information|mention|answer)\s+(?:is|was)\s+(?:given|provided|found|available)
    | ^\s*(?:unknown|n/?a|none|no\s+answer)\W*$
    """,
    re.IGNORECASE | re.VERBOSE,
)


@dataclass
class Grounding:
    """The checked answer: only supported sentences, cited to the passages that support them."""

    answer: str
    answerable: bool
    citations: list[Citation] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass
class _Evidence:
    """A retrieved passage split into sentences, with the words of each sentence.

    Words are matched sentence by sentence, not against the whole passage, so that an answer
    cannot be stitched together from words that occur apart ("15 days" from "every 15 minutes"
    and, later, "fourteen days"). Only names and numbers may come from a neighbouring sentence.
    """

    hit: ScoredChunk
    text: str
    sentences: list[str]
    offsets: list[int]
    sentence_terms: list[set[str]]
    windows: list[set[str]]


def normalize_term(word: str) -> str:
    """Lowercase, drop thousands separators and crude inflections so near-forms match.

    "complete", "completed" and "completes" all become "complet"; collisions this creates
    between unrelated words are rare within a handful of passages and the embedding score
    still has to agree.
    """
    word = word.lower().replace("’", "'").replace(",", "")
    if word[:1].isdigit():
        return word
    if word.endswith("'s"):
        word = word[:-2]
    for suffix, replacement, keep in (
        ("ies", "y", 3),
        ("ing", "", 4),
        ("ed", "", 4),
        ("es", "", 4),
        ("s", "", 3),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + replacement
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def content_terms(text: str) -> list[str]:
    """Normalised words that carry meaning (stopwords dropped), in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text):
        word = match.group()
        if word.lower() in _STOPWORDS:
            continue
        seen.setdefault(normalize_term(word), None)
    return list(seen)


def question_content_terms(question: str) -> set[str]:
    return {
        normalize_term(w.group())
        for w in _WORD.finditer(question)
        if w.group().lower() not in _STOPWORDS | _QUESTION_FRAME
    }


def key_terms(sentence: str) -> set[str]:
    """Numbers and mid-sentence capitalised words: the facts a model most often gets wrong."""
    keys: set[str] = set()
    for index, match in enumerate(_WORD.finditer(sentence)):
        word = match.group()
        if word.lower() in _STOPWORDS:
            continue
        if word[0].isdigit() or (index > 0 and word[0].isupper()):
            keys.add(normalize_term(word))
    return keys


def model_markers(text: str, passages: int) -> tuple[list[int], list[int]]:
    """The [n] markers a model wrote: those naming a passage it was sent (1..passages), and
    those naming none (invented; they are never turned into citations)."""
    found = {int(n) for m in _MARKERS.finditer(text) for n in re.findall(r"\d+", m.group())}
    valid = sorted(n for n in found if 1 <= n <= passages)
    return valid, sorted(found - set(valid))


def strip_markers(text: str) -> str:
    return _MARKERS.sub("", text)


def split_sentences(text: str) -> list[str]:
    """Lines, then sentence ends; abbreviations and decimals do not end a sentence."""
    sentences: list[str] = []
    for raw_line in text.splitlines():
        line = _BULLET.sub("", raw_line).strip()
        if not line:
            continue
        start = 0
        for match in _SENTENCE_END.finditer(line):
            candidate = line[start : match.start()]
            last_word = candidate.rsplit(maxsplit=1)[-1].rstrip(".").lower() if candidate else ""
            if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word):
                continue
            if candidate.strip():
                sentences.append(candidate.strip())
            start = match.end()
        if line[start:].strip():
            sentences.append(line[start:].strip())
    return sentences


def is_abstention(sentence: str) -> bool:
    return bool(_ABSTENTION.search(sentence))


def _evidence(hit: ScoredChunk) -> _Evidence:
    chunk = hit.chunk
    sentences: list[str] = []
    offsets: list[int] = []
    cursor = 0
    for sentence in split_sentences(chunk.text) or [chunk.text]:
        found = chunk.text.find(sentence, cursor)
        offsets.append(max(found, 0))
        cursor = max(found, cursor)
        sentences.append(sentence)
    # Title and section belong to every sentence: a chunk often names its subject only there.
    heading = set(content_terms(f"{chunk.title} {chunk.section or ''}"))
    sentence_terms = [heading | set(content_terms(s)) for s in sentences]
    windows = [
        heading.union(*sentence_terms[max(i - WINDOW, 0) : i + WINDOW + 1])
        for i in range(len(sentences))
    ]
    return _Evidence(hit, chunk.text, sentences, offsets, sentence_terms, windows)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _snippet(evidence: _Evidence, best_sentence: int) -> str:
    """About SNIPPET_CHARS of the passage, centred on the sentence that matched best."""
    text = evidence.text
    if len(text) <= SNIPPET_CHARS:
        return text.strip()
    start = evidence.offsets[best_sentence]
    end = start + len(evidence.sentences[best_sentence])
    if end - start >= SNIPPET_CHARS:
        return text[start : start + SNIPPET_CHARS].rstrip() + "…"
    pad = (SNIPPET_CHARS - (end - start)) // 2
    lo = max(0, start - pad)
    hi = min(len(text), lo + SNIPPET_CHARS)
    lo = max(0, hi - SNIPPET_CHARS)
    # Cut on word boundaries so the snippet does not start or end mid-word.
    if lo > 0:
        space = text.find(" ", lo, start + 1)
        lo = space + 1 if space != -1 else lo
    if hi < len(text):
        space = text.rfind(" ", end, hi)
        hi = space if space != -1 else hi
    return ("…" if lo > 0 else "") + text[lo:hi].strip() + ("…" if hi < len(text) else "")


@dataclass
class _Support:
    score: float
    sentence_index: int


@dataclass
class _Claim:
    """What one answer sentence must be matched on."""

    novel: list[str]
    keys: set[str]
    vector: list[float]


def _coverage(terms: Collection[str], found: set[str]) -> float:
    return sum(term in found for term in terms) / len(terms) if terms else 1.0


def _score(
    claim: _Claim,
    question_terms: set[str],
    evidence: _Evidence,
    passage_vectors: list[list[float]],
) -> _Support:
    """Support of one answer sentence by one passage, in [0, 1], and where in it.

    Lexical support is the share of the sentence's new words (those not taken from the question)
    found in one sentence of the passage, discounted (down to OFF_TOPIC_FLOOR) when that sentence
    is not about the question: "Paris is the capital" is not supported by a sentence that mentions
    Paris but no capital. Each number or name missing around that sentence halves the score.
    """
    best = _Support(-1.0, 0)
    for i, vector in enumerate(passage_vectors):
        found = evidence.sentence_terms[i]
        lexical = _coverage(claim.novel, found) if claim.novel else 0.0
        if question_terms:
            lexical *= OFF_TOPIC_FLOOR + (1 - OFF_TOPIC_FLOOR) * _coverage(question_terms, found)
        semantic = max(_cosine(claim.vector, vector), 0.0)
        missing = sum(key not in evidence.windows[i] for key in claim.keys)
        score = (LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * semantic) * (
            MISSING_KEY_TERM_PENALTY**missing
        )
        if score > best.score:
            best = _Support(score, i)
    return best


def attribute(
    answer_text: str,
    hits: list[ScoredChunk],
    embedder: Embedder,
    *,
    threshold: float,
    question: str | None = None,
) -> Grounding:
    """Keep the sentences of `answer_text` that `hits` support and cite them, renumbered 1..k.

    `hits` are in the order they were shown to the model ([1] is hits[0]); a model's own [n]
    marker adds that passage to the citations only if it supports the sentence too. Pass the
    `question` whenever there is one: words the answer merely repeats from it then prove
    nothing ("The controller is written in Python" is not supported by a passage that shares
    only "controller" and "written" with it), and a sentence that supports the answer's words
    must also be about the question ("The security team" is not an answer to "who approves
    restores?" because a passage mentions a security team elsewhere).
    """
    text = answer_text.strip()
    if not text:
        return Grounding(answer="", answerable=False, reason=EMPTY_REASON)

    raw_sentences = split_sentences(text)
    claims: list[tuple[str, set[int]]] = []
    abstained = False
    for raw in raw_sentences:
        cited = {int(n) for m in _MARKERS.finditer(raw) for n in re.findall(r"\d+", m.group())}
        sentence = strip_markers(raw).strip()
        if not re.search(r"\w", sentence):
            continue
        if is_abstention(sentence):
            abstained = True
            continue
        claims.append((sentence, cited))

    if not claims:
        reason = ABSTAINED_REASON if abstained else EMPTY_REASON
        return Grounding(answer="", answerable=False, reason=reason)
    if not hits:
        return Grounding(
            answer="",
            answerable=False,
            unsupported=[s for s, _ in claims],
            reason=NO_PASSAGES_REASON,
        )

    evidence = [_evidence(hit) for hit in hits]
    question_terms = question_content_terms(question) if question else set()
    # The answer is embedded alone: with the question prepended, any sentence about the
    # question's topic looked like support for any answer.
    passage_sentences = [s for e in evidence for s in e.sentences]
    vectors = embedder.embed_documents([*(s for s, _ in claims), *passage_sentences])
    passage_vectors: list[list[list[float]]] = []
    cursor = len(claims)
    for e in evidence:
        passage_vectors.append(vectors[cursor : cursor + len(e.sentences)])
        cursor += len(e.sentences)

    kept: list[str] = []
    unsupported: list[str] = []
    # passage index -> its best support among the kept sentences, in order of first use
    used: dict[int, _Support] = {}
    for (sentence, cited), vector in zip(claims, vectors[: len(claims)], strict=True):
        terms = content_terms(sentence)
        # Words repeated from the question prove nothing; an answer made only of them is
        # judged on all its words.
        novel = [t for t in terms if t not in question_terms] or terms
        claim = _Claim(novel, key_terms(sentence), vector)
        supports = [
            _score(claim, question_terms, e, pv)
            for e, pv in zip(evidence, passage_vectors, strict=True)
        ]
        best = max(range(len(supports)), key=lambda i: (supports[i].score, -i))
        if supports[best].score < threshold:
            unsupported.append(sentence)
            continue
        kept.append(sentence)
        chosen = [
            i
            for i, support in enumerate(supports)
            if support.score >= threshold
            and (support.score >= supports[best].score - CITE_MARGIN or i + 1 in cited)
        ]
        for i in sorted(chosen, key=lambda i: (i != best, -supports[i].score, i)):
            previous = used.get(i)
            if previous is None or supports[i].score > previous.score:
                used[i] = supports[i]

    if not kept:
        reason = ABSTAINED_REASON if abstained else UNSUPPORTED_REASON
        return Grounding(answer="", answerable=False, unsupported=unsupported, reason=reason)

    citations = [
        Citation(
            marker=marker,
            chunk_id=evidence[i].hit.chunk.id,
            document_id=evidence[i].hit.chunk.document_id,
            source=evidence[i].hit.chunk.source,
            title=evidence[i].hit.chunk.title,
            section=evidence[i].hit.chunk.section,
            page=evidence[i].hit.chunk.page,
            snippet=_snippet(evidence[i], support.sentence_index),
            score=round(support.score, 4),
        )
        for marker, (i, support) in enumerate(used.items(), start=1)
    ]
    return Grounding(
        answer=" ".join(kept), answerable=True, citations=citations, unsupported=unsupported
    )
