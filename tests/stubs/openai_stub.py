"""OpenAI's REST API as `api.openai.com/v1` speaks it: chat completions, legacy completions and
the model list; streams are `data: {chunk}` events ending in `data: [DONE]`."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.stubs.server import Recorded, Rejection, Route, StubServer, count_words

ROLES = {"system", "developer", "user", "assistant", "tool"}
ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def _frame(payload: Any) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


class OpenAIVendor:
    name = "openai"

    def route(self, method: str, path: str, query: dict[str, str]) -> Route | None:
        if method == "GET" and path == "/v1/models":
            return Route("models")
        if method == "POST" and path == "/v1/chat/completions":
            return Route("chat")
        if method == "POST" and path == "/v1/completions":
            return Route("completions")
        return None

    def check(self, route: Route, request: Recorded, stub: StubServer) -> Rejection | None:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return Rejection(401, "invalid_request_error", "missing bearer token")
        if route.name == "models":
            return None
        body = request.body
        if not isinstance(body, dict):
            return Rejection(400, "invalid_request_error", "body is not a JSON object")
        route.stream = bool(body.get("stream"))
        if body.get("model") != stub.model:
            message = f"The model `{body.get('model')}` does not exist"
            return Rejection(404, "invalid_request_error", message)
        if "stream_options" in body and not route.stream:
            return Rejection(400, "invalid_request_error", "stream_options needs stream=true")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if not isinstance(limit, int) or limit < 1:
            return Rejection(400, "invalid_request_error", "max_tokens must be a positive int")
        if not 0 <= body.get("temperature", 1) <= 2:
            return Rejection(400, "invalid_request_error", "temperature must be within [0, 2]")
        if route.name == "chat":
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                return Rejection(400, "invalid_request_error", "messages must be a non-empty list")
            for m in messages:
                if m.get("role") not in ROLES or not isinstance(m.get("content"), str | list):
                    return Rejection(400, "invalid_request_error", f"invalid message {m!r}")
            prompt = "\n".join(str(m["content"]) for m in messages)
        else:
            if not isinstance(body.get("prompt"), str):
                return Rejection(400, "invalid_request_error", "prompt must be a string")
            prompt = body["prompt"]
            stop = body.get("stop")
            if isinstance(stop, list) and len(stop) > 4:
                return Rejection(400, "invalid_request_error", "stop: at most 4 sequences")
        missing = [s for s in stub.required_in_prompt if s not in prompt]
        if missing:
            return Rejection(400, "invalid_request_error", f"prompt lacks {missing}")
        request.body["_prompt_words"] = count_words(prompt)
        return None

    def _usage(self, request: Recorded, completion: int) -> dict[str, int]:
        prompt = int(request.body["_prompt_words"])
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _head(self, route: Route, stub: StubServer) -> dict[str, Any]:
        kind = "chat.completion" if route.name == "chat" else "text_completion"
        return {
            "id": "chatcmpl-stub" if route.name == "chat" else "cmpl-stub",
            "object": kind + (".chunk" if route.stream and route.name == "chat" else ""),
            "created": int(time.time()),
            "model": stub.model,
            "system_fingerprint": "fp_stub",
        }

    def answer(self, route: Route, request: Recorded, stub: StubServer) -> Any:
        if route.name == "models":
            model = {"id": stub.model, "object": "model", "created": 0, "owned_by": "stub"}
            return {"object": "list", "data": [model]}
        text = request.text
        if route.name == "chat":
            message = {"role": "assistant", "content": text, "refusal": None}
            choice: dict[str, Any] = {"index": 0, "message": message}
        else:
            choice = {"index": 0, "text": text}
        choice |= {"logprobs": None, "finish_reason": "stop"}
        usage = self._usage(request, count_words(text))
        return self._head(route, stub) | {"choices": [choice], "usage": usage}

    def events(
        self, route: Route, request: Recorded, stub: StubServer, deltas: list[str]
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        head = self._head(route, stub)
        include_usage = bool((request.body.get("stream_options") or {}).get("include_usage"))
        extra: dict[str, Any] = {"usage": None} if include_usage else {}

        def choice(content: str | None, finish: str | None, first: bool = False) -> Any:
            if route.name == "chat":
                delta: dict[str, Any] = {"role": "assistant"} if first else {}
                if content is not None:
                    delta["content"] = content
                body: dict[str, Any] = {"index": 0, "delta": delta}
            else:
                body = {"index": 0, "text": content or ""}
            return body | {"logprobs": None, "finish_reason": finish}

        before = []
        if route.name == "chat":
            before.append(_frame(head | {"choices": [choice("", None, first=True)]} | extra))
        frames = [_frame(head | {"choices": [choice(d, None)]} | extra) for d in deltas]
        after = [_frame(head | {"choices": [choice(None, "stop")]} | extra)]
        if include_usage:
            usage = self._usage(request, len(deltas))
            after.append(_frame(head | {"choices": [], "usage": usage}))
        after.append(b"data: [DONE]\n\n")
        return before, frames, after

    def error_body(self, status: int, error_type: str | None, message: str) -> Any:
        kind, code = ERROR_TYPES.get(status, ("server_error", None))
        return {
            "error": {"message": message, "type": error_type or kind, "param": None, "code": code}
        }

    def error_event(self, error_type: str, message: str) -> bytes:
        return _frame(
            {"error": {"message": message, "type": error_type, "param": None, "code": None}}
        )

    def malformed_event(self) -> bytes:
        return b'data: {"id": "chatcmpl-stub", "choices": [{"index": 0, "del\n\n'
