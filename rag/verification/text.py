"""Words, sentences and markers: the text handling verification and the extractive share.

A *term* is a word reduced to what should match across paraphrases: lowercased, stemmed
(Porter: "regulates", "regulation" → "regul"), stopwords dropped. Identifiers that mix letters
and digits keep their digits and lose their hyphens, so "GATA-3", "Gata3" and "GATA3" are one
term, and so are "A-769662" and "A769662"; a number keeps its value ("1,117" → "1117").
A term's *weight* is how rare the word is in English (8 − its Zipf frequency from `wordfreq`,
at least 1): "patients" weighs 3, "methylation" 5, a gene name never seen in English 8, so a
claim's rare words count most when we ask how much of it a passage holds.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

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
STOPWORDS = frozenset(_STOPWORD_LIST.split())
# How a question is asked, not what it is about: "how long", "how often" rarely recur in the
# passage that answers them.
QUESTION_FRAME = frozenset(
    {"how", "many", "much", "long", "often", "far", "old", "kind", "type", "name", "called"}
)

# A number (with thousands separators or decimals), or a word, possibly hyphenated.
WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W_]+(?:[-'’][^\W_]+)*", re.UNICODE)
_MARKERS = re.compile(r"\s*\[\s*\d+(?:\s*[,;-]\s*\d+)*\s*\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
# A sentence ends at . ! ? followed by space, except after common abbreviations and initials.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "v",
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "fig",
        "eq",
        "approx",
        "inc",
        "ltd",
        "jr",
        "sr",
        "al",
    ]
)
_MIN_WEIGHT, _RARE = 1.0, 8.0


def words(text: str) -> Iterator[str]:
    """The words of `text` as written: hyphenated words split into their parts unless they
    mix letters and digits (an identifier: "IL-6", "COVID-19" stay whole)."""
    for match in WORD.finditer(text):
        word = match.group()
        if "-" in word and not (any(c.isdigit() for c in word) and any(c.isalpha() for c in word)):
            yield from (part for part in word.split("-") if part)
        else:
            yield word


@lru_cache(maxsize=65536)
def normalize_term(word: str) -> str:
    """A word as a term: see the module docstring. Cached: the same words recur."""
    word = word.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if any(c.isdigit() for c in word):
        return word.replace("-", "").replace(",", "").replace("'", "")
    return _stemmer().stem(word)


def warm_up() -> None:
    """Load the stemmer and the word-frequency lists now (about 2 s), not on the first answer."""
    term_weight(normalize_term("warming"))


@lru_cache(maxsize=1)
def _stemmer() -> _Stemmer:
    from nltk.stem.porter import PorterStemmer

    stemmer: _Stemmer = PorterStemmer()
    return stemmer


class _Stemmer(Protocol):  # the part of nltk's untyped PorterStemmer we use
    def stem(self, word: str) -> str: ...


@lru_cache(maxsize=65536)
def term_weight(word: str) -> float:
    """How much a word counts: rarer in English weighs more (see the module docstring)."""
    from wordfreq import zipf_frequency

    return max(_MIN_WEIGHT, _RARE - float(zipf_frequency(word.lower(), "en")))


def is_stopword(word: str) -> bool:
    return word.lower() in STOPWORDS


def weighted_terms(text: str) -> dict[str, float]:
    """The content terms of `text` with their weights, in order of first appearance."""
    found: dict[str, float] = {}
    for word in words(text):
        if not is_stopword(word):
            found.setdefault(normalize_term(word), term_weight(word))
    return found


def content_terms(text: str) -> list[str]:
    """Content terms of `text` (stopwords dropped), in order, without repeats."""
    return list(weighted_terms(text))


def question_content_terms(question: str) -> set[str]:
    """The terms that say what a question is about (not how it is asked)."""
    return {
        normalize_term(w)
        for w in words(question)
        if w.lower() not in STOPWORDS and w.lower() not in QUESTION_FRAME
    }


def key_terms(text: str) -> set[str]:
    """Numbers, identifiers and mid-sentence capitalised words: what a model most often gets
    wrong while sounding right."""
    keys: set[str] = set()
    for index, word in enumerate(words(text)):
        if is_stopword(word):
            continue
        has_digit = any(c.isdigit() for c in word)
        if has_digit or (index > 0 and word[0].isupper()) or word[1:].lower() != word[1:]:
            keys.add(normalize_term(word))
    return keys


def model_markers(text: str, passages: int) -> tuple[list[int], list[int]]:
    """The [n] markers a model wrote: those naming a passage it was sent (1..passages), and
    those naming none (invented; they are never turned into citations)."""
    found = cited_markers(text)
    valid = sorted(n for n in found if 1 <= n <= passages)
    return valid, sorted(found - set(valid))


def cited_markers(text: str) -> set[int]:
    return {int(n) for m in _MARKERS.finditer(text) for n in re.findall(r"\d+", m.group())}


def strip_markers(text: str) -> str:
    return _MARKERS.sub("", text)


def split_sentences(text: str) -> list[str]:
    """Lines, then sentence ends; abbreviations, initials and decimals do not end a sentence."""
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
