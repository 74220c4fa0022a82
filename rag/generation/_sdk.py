"""What the API adapters share: settings, the pinned id, and one lazily built SDK client."""

from __future__ import annotations

import threading
from typing import Any, Generic, TypeVar

from rag.errors import BackendError

ClientT = TypeVar("ClientT")


class SdkAdapter(Generic[ClientT]):
    """Subclasses build their SDK client in `_connect` (called once, under a lock)."""

    key_required = True

    def __init__(
        self,
        model: str,
        *,
        backend: str,
        base_url: Any,
        api_key: str | None,
        model_id: str | None,
        max_tokens: int,
        temperature: Any,
        timeout_s: float,
    ) -> None:
        self.model = model
        self.backend = backend
        self.base_url = base_url
        self._api_key = api_key
        self._model_id = model_id
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout_s = timeout_s
        self._client: ClientT | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id or self.model

    def client(self) -> ClientT:
        with self._lock:
            if self._client is None:
                if self.key_required and not self._api_key:
                    raise BackendError(
                        f"no API key configured for {self.backend}", backend=self.backend
                    )
                self._client = self._connect()
            return self._client

    def _connect(self) -> ClientT:
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()  # type: ignore[attr-defined]
                self._client = None
