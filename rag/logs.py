"""Logging set-up for the processes we start (`rag serve`, `rag worker`), with secrets redacted.

Every handler gets `Redactor`: API keys (`rag_<id>_<secret>` keeps its public id), bearer
tokens, well-known vendor key shapes and every secret value the configuration holds
(`register_secret`) are replaced before a line is written, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO

from rag import tracing

MASK = "***"
_PATTERNS = [  # group 1 stays visible, the rest is masked
    re.compile(r"\b(rag_[0-9a-f]{12}_)[A-Za-z0-9_-]+"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\b(sk-(?:ant-)?)[A-Za-z0-9_-]{16,}"),  # OpenAI, Anthropic
    re.compile(r"\b(AIza)[A-Za-z0-9_-]{30,}"),  # Google
    re.compile(r"\b(xox[abprs]-)[A-Za-z0-9-]+"),  # Slack tokens
]
_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """A configured secret (vendor key, Qdrant key, signing secret): never written to a log."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Every configured secret and every key-shaped token masked. Spans are found on the
    original text and merged, so a secret that overlaps a token (a short registered value
    that prefixes a longer key) cannot leave the rest of either visible."""
    spans = [
        (m.start(), m.end())
        for value in tuple(_secrets)
        for m in re.finditer(re.escape(value), text)
    ]
    spans += [(m.end(1), m.end()) for pattern in _PATTERNS for m in pattern.finditer(text)]
    if not spans:
        return text
    out: list[str] = []
    cursor = 0
    for start, end in sorted(spans):
        if start > cursor or not out:
            out += [text[cursor:start], MASK]
        cursor = max(cursor, end)
    out.append(text[cursor:])
    return "".join(out)


class Redactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_context: ContextVar[dict[str, str] | None] = ContextVar("rag_log_context", default=None)


@contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Ids (request_id, job_id, ...) every log line written inside the block carries."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in values.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Puts the current ids on the record: `record.context` (" request_id=… job_id=…") for
    the text format, the ids themselves for JSON."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = dict(_context.get() or {})
        trace = tracing.trace_id()
        if trace:
            ids["trace_id"] = trace
        record.ids = ids
        record.context = "".join(f" {k}={v}" for k, v in ids.items())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "ids", {}),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(
    level: str = "INFO", fmt: str = "text", stream: IO[str] | None = None
) -> None:
    """Root logging for a process we start: level, format (text or json), ids, redaction;
    to `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        text = "%(asctime)s %(levelname)-7s %(name)s: %(message)s%(context)s"
        handler.setFormatter(logging.Formatter(text, datefmt="%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(ContextFilter())
    handler.addFilter(Redactor())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "sentence_transformers", "unstructured", "pdfminer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
