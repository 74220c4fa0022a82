"""Log lines never carry a secret: API keys, bearer tokens, vendor keys, configured secrets,
in messages, arguments and tracebacks alike."""

from __future__ import annotations

import io
import logging

from rag.logs import Redactor, redact, register_secret

RAG_KEY = "rag_0123456789ab_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA"
VENDOR = {
    "openai": "sk-proj-abcdefghijklmnopqrstuvwx",
    "anthropic": "sk-ant-api03-abcdefghijklmnopqrstuvwx",
    "gemini": "AIzaSyA-abcdefghijklmnopqrstuvwxyz012345",
    "slack": "xoxb-1234567890-0987654321-abcdefghijkl",
}


def _logged(*args: object, exc: BaseException | None = None) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(Redactor())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        if exc is None:
            logger.warning(*args)  # type: ignore[arg-type]
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(*args)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(handler)
    return out.getvalue()


def test_api_keys_keep_their_public_id_only() -> None:
    line = _logged("request with %s", RAG_KEY)
    assert "rag_0123456789ab_***" in line and "Zm9v" not in line


def test_bearer_tokens_and_vendor_keys() -> None:
    line = _logged("headers: Authorization: Bearer abc.def.ghi %s", list(VENDOR.values()))
    assert "abc.def.ghi" not in line
    for value in VENDOR.values():
        assert value[-12:] not in line


def test_configured_secrets_in_tracebacks() -> None:
    register_secret("hunter2-signing-secret")
    line = _logged("failed", exc=RuntimeError("bad signature with hunter2-signing-secret"))
    assert "RuntimeError" in line and "hunter2" not in line


def test_ordinary_text_is_untouched() -> None:
    text = "job 3f2a done: 12 chunks from handbook/hr/leave.md in 1.2 s"
    assert redact(text) == text


def test_a_secret_overlapping_a_token_masks_both() -> None:
    register_secret("xoxb-1")
    line = _logged("token %s", VENDOR["slack"])
    assert "abcdefghijkl" not in line and "234567890" not in line
