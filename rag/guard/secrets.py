"""Secret-shaped strings never leave in an answer, streamed or final.

A model can repeat a key it read in a document, or one a passage coaxed out of it; we cannot know
which keys are real, so anything shaped like one is replaced with `REDACTED`. Only the kind is
recorded (on the answer and in metrics), never the value.

Streams: a key may arrive split over deltas ("sk-pr" + "oj-abc…"). `StreamRedactor` holds back
the trailing word when it could be the start of a key, and an open `-----BEGIN` block until it
closes, so what it emits never contains a secret or a piece of one; `flush()` releases the rest
at the end of the stream. The cost is a delay of one word when a word looks like a key's prefix.
"""

from __future__ import annotations

import re

from rag.models import Answer, CheckedClaim

REDACTED = "[redacted secret]"

# Left boundary: a key is not the middle of a longer token.
_L = r"(?<![A-Za-z0-9_\-])"
_R = r"(?![A-Za-z0-9_\-])"

# The shapes of secrets, by kind: what answers never show (here) and what a closed model is never
# sent (rag.privacy.recognizers masks the same shapes).
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "private_key": re.compile(
        r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----.*?"
        r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|$)",
        re.DOTALL,
    ),
    "rag_api_key": re.compile(rf"{_L}rag_[0-9a-f]{{8,16}}_[A-Za-z0-9_\-]{{20,}}"),
    "anthropic_key": re.compile(rf"{_L}sk-ant-[A-Za-z0-9_\-]{{20,}}"),
    "openai_key": re.compile(rf"{_L}sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{{20,}}{_R}"),
    "aws_access_key": re.compile(rf"{_L}(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{{16}}{_R}"),
    "github_token": re.compile(
        rf"{_L}(?:gh[pousr]_[A-Za-z0-9]{{30,}}|github_pat_[A-Za-z0-9_]{{22,}})"
    ),
    "gitlab_token": re.compile(rf"{_L}glpat-[A-Za-z0-9_\-]{{20}}"),
    "stripe_key": re.compile(rf"{_L}(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{{16,}}"),
    "huggingface_token": re.compile(rf"{_L}hf_[A-Za-z0-9]{{30,}}"),
    "slack_token": re.compile(rf"{_L}xox[abposr]-[A-Za-z0-9\-]{{10,}}"),
    "google_api_key": re.compile(rf"{_L}AIza[0-9A-Za-z_\-]{{35}}"),
    "jwt": re.compile(
        rf"{_L}eyJ[A-Za-z0-9_\-]{{8,}}\.eyJ[A-Za-z0-9_\-]{{8,}}\.[A-Za-z0-9_\-]{{8,}}"
    ),
}

# How each kind starts: a trailing word that could still become one of them is held back.
_STARTS = (
    "rag_",
    "sk-",
    "AKIA",
    "ASIA",
    "ABIA",
    "ACCA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    *(f"{kind}_{mode}_" for kind in ("sk", "rk", "pk") for mode in ("live", "test")),
    "hf_",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "xoxo-",
    "xoxs-",
    "xoxr-",
    "AIza",
    "eyJ",
    "-----BEGIN",
)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-.]")
_FOOTER = r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
# A block header being written, or a private key block whose footer has not arrived yet.
_OPEN_BLOCK = re.compile(
    r"-----BEGIN[A-Z0-9 ]{0,40}-{0,4}$|"
    rf"-----BEGIN[A-Z0-9 ]{{0,40}}PRIVATE KEY(?: BLOCK)?-----(?:(?!{_FOOTER}).)*$",
    re.DOTALL,
)
_MAX_HELD = 8192  # a block this long without its END line is redacted as it stands


def redact(text: str) -> tuple[str, list[str]]:
    """`text` with every secret-shaped string replaced, and the kinds found (in order, once)."""
    kinds: list[str] = []
    for kind, pattern in SECRET_PATTERNS.items():
        text, n = pattern.subn(REDACTED, text)
        if n:
            kinds.append(kind)
    return text, kinds


def _could_start(word: str) -> bool:
    """Whether `word` (no whitespace) ends with something that is or may become a key."""
    for i in range(len(word)):
        if i and _TOKEN_CHARS.match(word[i - 1]):
            continue  # a key starts a token
        tail = word[i:]
        if any(s.startswith(tail) or tail.startswith(s) for s in _STARTS):
            return True
    return False


class StreamRedactor:
    """Redacts a text that arrives in pieces; see the module docstring."""

    def __init__(self) -> None:
        self._held = ""
        self.kinds: list[str] = []

    def feed(self, delta: str) -> str:
        """The part of everything fed so far that is safe to show now, not yet returned."""
        text = self._held + delta
        cut = self._safe_end(text)
        out, kinds = redact(text[:cut])
        self._held = text[cut:]
        self._note(kinds)
        return out

    def flush(self) -> str:
        out, kinds = redact(self._held)
        self._held = ""
        self._note(kinds)
        return out

    def _note(self, kinds: list[str]) -> None:
        self.kinds.extend(k for k in kinds if k not in self.kinds)

    def _safe_end(self, text: str) -> int:
        block = _OPEN_BLOCK.search(text)
        if block and len(text) - block.start() <= _MAX_HELD:
            return block.start()
        end = len(text)
        while end and not text[end - 1].isspace():
            end -= 1
        return end if _could_start(text[end:]) else len(text)


def redact_answer(answer: Answer) -> Answer:
    """The answer with secrets redacted wherever text of the model or a passage is shown: the
    answer, its cited form, citation snippets, claims and their evidence. `redacted` names the
    kinds found."""
    kinds: list[str] = []

    def clean(text: str) -> str:
        out, found = redact(text)
        kinds.extend(k for k in found if k not in kinds)
        return out

    def claim(c: CheckedClaim) -> CheckedClaim:
        evidence = [e.model_copy(update={"text": clean(e.text)}) for e in c.evidence]
        return c.model_copy(update={"text": clean(c.text), "evidence": evidence})

    update: dict[str, object] = {
        "answer": clean(answer.answer),
        "cited_answer": clean(answer.cited_answer),
        "citations": [c.model_copy(update={"snippet": clean(c.snippet)}) for c in answer.citations],
        "unsupported": [claim(c) for c in answer.unsupported],
    }
    if answer.verification is not None:
        claims = [claim(c) for c in answer.verification.claims]
        update["verification"] = answer.verification.model_copy(update={"claims": claims})
    if not kinds:
        return answer
    update["redacted"] = [*answer.redacted, *(k for k in kinds if k not in answer.redacted)]
    return answer.model_copy(update=update)
