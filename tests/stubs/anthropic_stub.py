"""Anthropic's Messages API as `api.anthropic.com` speaks it: `POST /v1/messages` (whole, or as
`message_start`, `content_block_start`, `ping`, `content_block_delta`..., `content_block_stop`,
`message_delta`, `message_stop` events) and `GET /v1/models/{id}`."""

from __future__ import annotations

import json
from typing import Any

from tests.stubs.server import Recorded, Rejection, Route, StubServer, count_words

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _event(name: str, payload: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if isinstance(b, dict))


class AnthropicVendor:
    name = "anthropic"

    def route(self, method: str, path: str, query: dict[str, str]) -> Route | None:
        if method == "POST" and path == "/v1/messages":
            return Route("messages")
        if method == "GET" and path.startswith("/v1/models/"):
            return Route("model", params={"id": path.rsplit("/", 1)[1]})
        return None

    def check(self, route: Route, request: Recorded, stub: StubServer) -> Rejection | None:
        bearer = request.headers.get("authorization", "").startswith("Bearer ")
        if not (request.headers.get("x-api-key") or bearer):
            return Rejection(401, "authentication_error", "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            return Rejection(400, "invalid_request_error", "anthropic-version header is required")
        if route.name == "model":
            if route.params["id"] != stub.model:
                return Rejection(404, "not_found_error", f"model: {route.params['id']}")
            return None
        body = request.body
        if not isinstance(body, dict):
            return Rejection(400, "invalid_request_error", "body is not a JSON object")
        route.stream = bool(body.get("stream"))
        if body.get("model") != stub.model:
            return Rejection(404, "not_found_error", f"model: {body.get('model')}")
        if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
            return Rejection(400, "invalid_request_error", "max_tokens: Field required")
        if not 0 <= body.get("temperature", 1) <= 1:
            return Rejection(400, "invalid_request_error", "temperature: must be within [0, 1]")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or messages[0].get("role") != "user":
            return Rejection(400, "invalid_request_error", "messages: first message must be user")
        if any(m.get("role") not in {"user", "assistant"} for m in messages):
            return Rejection(400, "invalid_request_error", "messages: roles are user|assistant")
        system = body.get("system", "")
        if not isinstance(system, str | list):
            return Rejection(400, "invalid_request_error", "system: must be text or blocks")
        prompt = "\n".join([_text_of(system), *(_text_of(m.get("content", "")) for m in messages)])
        missing = [s for s in stub.required_in_prompt if s not in prompt]
        if missing:
            return Rejection(400, "invalid_request_error", f"prompt lacks {missing}")
        body["_prompt_words"] = count_words(prompt)
        return None

    def _message(self, request: Recorded, stub: StubServer) -> dict[str, Any]:
        return {
            "id": "msg_stub",
            "type": "message",
            "role": "assistant",
            "model": stub.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": int(request.body["_prompt_words"]), "output_tokens": 1},
        }

    def answer(self, route: Route, request: Recorded, stub: StubServer) -> Any:
        if route.name == "model":
            return {
                "type": "model",
                "id": stub.model,
                "display_name": "Stub",
                "created_at": "2024-10-22T00:00:00Z",
            }
        message = self._message(request, stub)
        message["content"] = [{"type": "text", "text": request.text}]
        message["stop_reason"] = "end_turn"
        message["usage"]["output_tokens"] = count_words(request.text)
        return message

    def events(
        self, route: Route, request: Recorded, stub: StubServer, deltas: list[str]
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        before = [
            _event(
                "message_start", {"type": "message_start", "message": self._message(request, stub)}
            ),
            _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            _event("ping", {"type": "ping"}),
        ]
        frames = [
            _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": d},
                },
            )
            for d in deltas
        ]
        after = [
            _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": len(deltas)},
                },
            ),
            _event("message_stop", {"type": "message_stop"}),
        ]
        return before, frames, after

    def error_body(self, status: int, error_type: str | None, message: str) -> Any:
        kind = error_type or ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def error_event(self, error_type: str, message: str) -> bytes:
        return _event("error", self.error_body(200, error_type, message))

    def malformed_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
