"""Our own Presidio recognisers, where Presidio's own are too narrow or reach the network.

- Cards: any 13-19 digit number (spaces or dashes between groups) that passes the Luhn check;
  Presidio's pattern misses Mastercard's 2-series.
- IBANs: any country's shape, accepted only when the ISO 7064 mod-97 checksum is 1.
- Emails: a plain pattern. Presidio's checks the domain with `tldextract`, which fetches the
  public suffix list over the network on first use: not in a self-hosted service.
- API keys and secrets: the shapes the answer guard redacts (`rag.guard.secrets`).
Phones, US SSNs and UK NINOs are Presidio's; PERSON and LOCATION come from spaCy's NER.
"""

from __future__ import annotations

import re

from presidio_analyzer import LocalRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from rag.guard.secrets import SECRET_PATTERNS


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


def iban_valid(text: str) -> bool:
    """ISO 13616: country, check digits, then a BBAN; valid when the number mod 97 is 1."""
    iban = re.sub(r"[\s-]", "", text).upper()
    if not _IBAN_SHAPE.fullmatch(iban):
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


class _ChecksumRecognizer(LocalRecognizer):
    """A pattern then a checksum. A candidate that fails is shortened group by group from the
    end (`... 7654 32 and 1234` runs on past the number), so no regex needs to know where a
    number stops."""

    ENTITY = ""
    CANDIDATE = re.compile("")
    SCORE = 0.9

    def __init__(self) -> None:
        super().__init__(supported_entities=[self.ENTITY], name=type(self).__name__)

    def load(self) -> None:
        pass

    def valid(self, candidate: str) -> bool:
        raise NotImplementedError

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        found: list[RecognizerResult] = []
        for match in self.CANDIDATE.finditer(text):
            candidate = match[0]
            while candidate:
                if self.valid(candidate):
                    start = match.start()
                    found.append(
                        RecognizerResult(self.ENTITY, start, start + len(candidate), self.SCORE)
                    )
                    break
                candidate = _SHORTER.sub("", candidate)
        return found


_SHORTER = re.compile(r"(?:[ -]+[A-Za-z0-9]+|[A-Za-z0-9])\Z")


class CardRecognizer(_ChecksumRecognizer):
    """13-19 digits, in groups or not, passing the Luhn check."""

    ENTITY = "CREDIT_CARD"
    CANDIDATE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,22}(?!\w)")

    def valid(self, candidate: str) -> bool:
        digits = re.sub(r"[ -]", "", candidate)
        return 13 <= len(digits) <= 19 and luhn_valid(digits)


class IbanRecognizer(_ChecksumRecognizer):
    """Any country's IBAN, printed in groups of four or not, with a valid checksum."""

    ENTITY = "IBAN_CODE"
    CANDIDATE = re.compile(r"(?<![\w-])[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]){11,34}(?![a-z0-9])")

    def valid(self, candidate: str) -> bool:
        return iban_valid(candidate)


class EmailRecognizer(PatternRecognizer):
    def __init__(self) -> None:
        super().__init__(
            supported_entity="EMAIL_ADDRESS",
            patterns=[
                Pattern(
                    "email",
                    r"\b[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
                    0.9,
                )
            ],
            name="EmailRecognizer",
        )


class ApiKeyRecognizer(PatternRecognizer):
    def __init__(self) -> None:
        super().__init__(
            supported_entity="API_KEY",
            patterns=[Pattern(kind, p.pattern, 0.9) for kind, p in SECRET_PATTERNS.items()],
            name="ApiKeyRecognizer",
            # Not Presidio's MULTILINE: a private key block runs to its END line, not the first
            # line's end.
            global_regex_flags=re.DOTALL | re.IGNORECASE,
        )
