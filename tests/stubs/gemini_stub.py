"""The Gemini Developer API as `generativelanguage.googleapis.com` speaks it:
`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse` (a `data:` event
per `GenerateContentResponse`, no terminator) and `GET /v1beta/models/{model}`; newer SDKs use
`/v1/` instead of `/v1beta/`, so both are served. Errors are
`{"error": {"code", "message", "status", "details"}}`; a 429 says when to retry in a
`google.rpc.RetryInfo` detail."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.stubs.server import Recorded, Rejection, Route, StubServer, count_words

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_PATH = re.compile(r"^/v1(?:beta)?/models/([^/:]+)(?::(generateContent|streamGenerateContent))?$")


def _frame(payload: Any) -> bytes:
    return f"data: {json.dumps(payload)}\r\n\r\n".encode()


def _texts(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    return "\n".join(str(p.get("text", "")) for p in parts or [] if isinstance(p, dict))


class GeminiVendor:
    name = "gemini"

    def route(self, method: str, path: str, query: dict[str, str]) -> Route | None:
        match = _PATH.match(path)
        if match is None:
            return None
        model, action = match.groups()
        if method == "GET" and action is None:
            return Route("model", params={"model": model})
        if method == "POST" and action == "generateContent":
            return Route("generate", params={"model": model})
        if method == "POST" and action == "streamGenerateContent":
            return Route("generate", stream=True, params={"model": model, **query})
        return None

    def check(self, route: Route, request: Recorded, stub: StubServer) -> Rejection | None:
        if not request.headers.get("x-goog-api-key"):
            return Rejection(401, "UNAUTHENTICATED", "API key not valid")
        if route.params["model"] != stub.model:
            return Rejection(404, "NOT_FOUND", f"models/{route.params['model']} is not found")
        if route.name == "model":
            return None
        if route.stream and route.params.get("alt") != "sse":
            return Rejection(400, "INVALID_ARGUMENT", "this stub streams only with alt=sse")
        body = request.body
        if not isinstance(body, dict):
            return Rejection(400, "INVALID_ARGUMENT", "body is not a JSON object")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return Rejection(400, "INVALID_ARGUMENT", "contents is not specified")
        if any(c.get("role", "user") not in {"user", "model"} for c in contents):
            return Rejection(400, "INVALID_ARGUMENT", "content role must be user or model")
        config = body.get("generationConfig") or {}
        limit = config.get("maxOutputTokens")
        if not isinstance(limit, int) or limit < 1:
            return Rejection(400, "INVALID_ARGUMENT", "generationConfig.maxOutputTokens expected")
        if not 0 <= config.get("temperature", 1) <= 2:
            return Rejection(400, "INVALID_ARGUMENT", "temperature must be within [0, 2]")
        system = _texts(body.get("systemInstruction"))
        prompt = "\n".join([system, *(_texts(c) for c in contents)])
        missing = [s for s in stub.required_in_prompt if s not in prompt]
        if missing:
            return Rejection(400, "INVALID_ARGUMENT", f"prompt lacks {missing}")
        body["_prompt_words"] = count_words(prompt)
        return None

    def _response(
        self, request: Recorded, stub: StubServer, text: str, finish: str | None, used: int
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
        if finish:
            candidate["finishReason"] = finish
        prompt = int(request.body["_prompt_words"])
        return {
            "candidates": [candidate | {"index": 0}],
            "usageMetadata": {
                "promptTokenCount": prompt,
                "candidatesTokenCount": used,
                "totalTokenCount": prompt + used,
            },
            "modelVersion": stub.model,
            "responseId": "stub-response",
        }

    def answer(self, route: Route, request: Recorded, stub: StubServer) -> Any:
        if route.name == "model":
            return {
                "name": f"models/{stub.model}",
                "version": "001",
                "displayName": "Stub",
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 8192,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
        text = request.text
        return self._response(request, stub, text, "STOP", count_words(text))

    def events(
        self, route: Route, request: Recorded, stub: StubServer, deltas: list[str]
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        frames = [
            _frame(
                self._response(request, stub, d, "STOP" if i == len(deltas) - 1 else None, i + 1)
            )
            for i, d in enumerate(deltas)
        ]
        return [], frames[:-1], frames[-1:]

    def error_body(self, status: int, error_type: str | None, message: str) -> Any:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": error_type or STATUSES.get(status, "UNKNOWN"),
        }
        if status == 429:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
            ]
        return {"error": error}

    def error_event(self, error_type: str, message: str) -> bytes:
        return _frame(self.error_body(503, error_type, message))

    def malformed_event(self) -> bytes:
        return b'data: {"candidates": [{"content": {"par\r\n\r\n'
