"""The project's exception tree. Adapters translate third-party errors into these; only `api/`
turns them into HTTP responses.

    RagError
    ├── NotFoundError              unknown collection, document or job          (404)
    ├── ConflictError              e.g. a collection that already exists        (409)
    ├── ConfigError                the configuration is invalid: the service refuses to start
    ├── InvalidInput               a request we understand but cannot accept   (422)
    │   ├── UnknownModel           a model or policy the catalog does not have
    │   ├── PolicyUnsatisfiable    no configured model meets the request's policy
    │   ├── UnsupportedDocument    a file type we do not parse                 (415)
    │   ├── DocumentTooLarge       over the configured upload limit            (413)
    │   └── UnreadableDocument     empty, corrupt or encrypted file (per document)
    ├── BackendError               a dependency failed; `.retryable` says if worth retrying  (503)
    │   │                          and `.retry_after_s` how long the dependency asked us to wait
    │   ├── BackendUnavailable     broker, store, database or model unreachable (retryable)
    │   │   ├── BackendTimeout     it did not answer in time (retryable)
    │   │   └── AllModelsFailed    every model of a fallback chain failed (`.attempts`)
    │   └── BackendRateLimited     a model provider said 429 (retryable, after `.retry_after_s`)
    ├── Unauthenticated            no API key, or not a valid one               (401)
    ├── Forbidden                  the key lacks the scope this needs           (403)
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


class ConfigError(RagError):
    """Settings or the model catalog are wrong; the message names the bad entry."""

    code = "config_error"


class InvalidInput(RagError):
    code = "invalid_input"


class UnknownModel(InvalidInput):
    code = "unknown_model"


class PolicyUnsatisfiable(InvalidInput):
    code = "policy_unsatisfiable"


class UnsupportedDocument(InvalidInput):
    code = "unsupported_media_type"


class DocumentTooLarge(InvalidInput):
    code = "payload_too_large"


class UnreadableDocument(InvalidInput):
    """The file is empty, corrupt, encrypted or yields no text. Never worth retrying."""

    code = "unreadable_document"


class BackendError(RagError):
    code = "backend_error"

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.backend = backend
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class BackendUnavailable(BackendError):
    code = "backend_unavailable"

    def __init__(self, message: str, *, backend: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, backend=backend, retryable=True, retry_after_s=retry_after_s)


class BackendTimeout(BackendUnavailable):
    code = "backend_timeout"


class AllModelsFailed(BackendUnavailable):
    """Every model a request could use failed; `attempts` is (model, error) in the order tried."""

    code = "all_models_failed"

    def __init__(self, message: str, *, attempts: list[tuple[str, str]]) -> None:
        super().__init__(message, backend="generator")
        self.attempts = attempts


class BackendRateLimited(BackendError):
    """A provider's own rate limit (not ours, which is `RateLimited`): another model may answer."""

    code = "backend_rate_limited"

    def __init__(self, message: str, *, backend: str, retry_after_s: float | None = None) -> None:
        super().__init__(message, backend=backend, retryable=True, retry_after_s=retry_after_s)


class Unauthenticated(RagError):
    code = "unauthenticated"


class Forbidden(RagError):
    code = "forbidden"


class RateLimited(RagError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class GenerationError(RagError):
    code = "generation_error"
