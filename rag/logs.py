"""Logging set-up for the processes we start (`rag serve`, `rag worker`), with secrets redacted.

Every handler gets `Redactor`: API keys (`rag_<id>_<secret>` keeps its public id), bearer
tokens, well-known vendor key shapes and every secret value the configuration holds
(`register_secret`) are replaced before a line is written, tracebacks included.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_PATTERNS = [
    (re.compile(r"\b(rag_[0-9a-f]{12}_)[A-Za-z0-9_-]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + MASK),
    (re.compile(r"\b(sk-(?:ant-)?)[A-Za-z0-9_-]{16,}"), r"\1" + MASK),  # OpenAI, Anthropic
    (re.compile(r"\b(AIza)[A-Za-z0-9_-]{30,}"), r"\1" + MASK),  # Google
    (re.compile(r"\b(xox[abprs]-)[A-Za-z0-9-]+"), r"\1" + MASK),  # Slack tokens
]
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """A configured secret (vendor key, Qdrant key, signing secret): never written to a log."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    for value in sorted(_secrets, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class Redactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redactor) for f in handler.filters):
            handler.addFilter(Redactor())
    for noisy in ("httpx", "sentence_transformers", "unstructured", "pdfminer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
