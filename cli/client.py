"""A small HTTP client for the REST API that turns error bodies into one readable line."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

RATE_LIMIT_RETRIES = 5


class ApiError(Exception):
    pass


def error_line(response: httpx.Response) -> str:
    """An error body `{"error": {"code", "message"}}` as one line: "message (404 not_found)"."""
    try:
        error = response.json()["error"]
        return f"{error['message']} ({response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


class Client:
    def __init__(self, base_url: str, timeout_s: float = 120.0, api_key: str | None = None):
        self.base_url = base_url.rstrip("/")
        key = api_key or os.environ.get("RAG_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else None
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call; a 429 is waited out (its Retry-After, a few times) before it is an error."""
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                raise ApiError(self._unreachable(exc)) from exc
            if response.status_code != 429 or attempt == RATE_LIMIT_RETRIES:
                break
            time.sleep(min(float(response.headers.get("Retry-After", "1")), 60.0))
            for _, (_, handle) in kwargs.get("files") or []:
                if hasattr(handle, "seek"):
                    handle.seek(0)
        if response.status_code >= 400:
            self._raise(response)
        return response.json() if response.content else None

    def _unreachable(self, exc: Exception) -> str:
        return (
            f"cannot reach the service at {self.base_url} ({exc}). Start it with `rag serve` "
            "(or `make demo`), or point --api-url / RAG_API_URL at it."
        )

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        message = error_line(response)
        if response.status_code == 401:
            message += "; set RAG_API_KEY to a key from `rag keys create`"
        raise ApiError(message)

    def events(self, path: str, body: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """POST and read Server-Sent Events: (event name, decoded data) as they arrive."""
        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise(response)
                event = "message"
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        yield event, json.loads(line[5:])
        except httpx.TransportError as exc:
            raise ApiError(self._unreachable(exc)) from exc

    def ensure_collection(self, name: str) -> bool:
        """Create the collection if it does not exist; True if it was created."""
        try:
            self.request("GET", f"/v1/collections/{name}")
            return False
        except ApiError as exc:
            if "not_found" not in str(exc):
                raise
        self.request("POST", "/v1/collections", json={"name": name})
        return True

    def upload(
        self,
        collection: str,
        files: list[tuple[str, Path]],
        form: dict[str, str],
        *,
        job_id: str | None = None,
    ) -> Any:
        """Upload (source id, path) pairs with form fields (metadata, allowed_groups...); into
        `job_id` if given, else a new job."""
        handles = [path.open("rb") for _, path in files]
        try:
            parts = [("files", (name, h)) for (name, _), h in zip(files, handles, strict=True)]
            params = {"job_id": job_id} if job_id else None
            return self.request(
                "POST",
                f"/v1/collections/{collection}/documents",
                files=parts,
                data=form or None,
                params=params,
            )
        finally:
            for handle in handles:
                handle.close()

    def upload_archive(self, collection: str, path: Path, form: dict[str, str]) -> Any:
        with path.open("rb") as handle:
            data = {"collection": collection, **form}
            return self.request(
                "POST", "/v1/jobs/archive", files=[("archive", (path.name, handle))], data=data
            )
