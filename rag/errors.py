"""The project's exception tree. Adapters translate third-party errors into these; only `api/`
turns them into HTTP responses.

    RagError
    ├── NotFoundError              unknown collection, document or job          (404)
    ├── ConflictError              e.g. a collection that already exists        (409)
    ├── InvalidInput               a request we understand but cannot accept   (422)
    │   ├── UnsupportedDocument    a file type we do not parse                 (415)
    │   ├── DocumentTooLarge       over the configured upload limit            (413)
    │   └── UnreadableDocument     empty, corrupt or encrypted file (per document)
    ├── BackendError               a dependency failed; `.retryable` says if worth retrying  (503)
    │   └── BackendUnavailable     broker, store, database or model unreachable (retryable)
    ├── RateLimited                back off for `retry_after_s`                 (429)
    └── GenerationError            the model failed to produce an answer        (502)
"""

from __future__ import annotations


class RagError(Exception):
    """Root of every error the domain raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(RagError):
    code = "not_found"


class ConflictError(RagError):
    code = "conflict"


class InvalidInput(RagError):
    code = "invalid_input"


class UnsupportedDocument(InvalidInput):
    code = "unsupported_media_type"


class DocumentTooLarge(InvalidInput):
    code = "payload_too_large"


class UnreadableDocument(InvalidInput):
    """The file is empty, corrupt, encrypted or yields no text. Never worth retrying."""

    code = "unreadable_document"


class BackendError(RagError):
    code = "backend_error"

    def __init__(self, message: str, *, backend: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.backend = backend
        self.retryable = retryable


class BackendUnavailable(BackendError):
    code = "backend_unavailable"

    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message, backend=backend, retryable=True)


class RateLimited(RagError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class GenerationError(RagError):
    code = "generation_error"
