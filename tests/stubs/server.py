"""A real HTTP server on 127.0.0.1 that a vendor's official SDK can be pointed at.

Each vendor module (openai_stub, anthropic_stub, gemini_stub) supplies a `Vendor`: which routes
exist, how a request is validated, and the exact JSON and Server-Sent-Event bytes the vendor
sends back. This module does the HTTP: HTTP/1.1 keep-alive, chunked streaming like the real
APIs, and the failure modes a test can ask for with `StubServer.reply(...)`:

    Reply("ok")                      the vendor's normal answer (the default)
    Reply("status", status=429, retry_after="7")   an error response in the vendor's shape
    Reply("hang")                    read the request, then say nothing (client timeout)
    Reply("malformed")               200 with a body that is not what the protocol promises
    Reply("stream_error", error_type="overloaded_error")   a stream that fails after one delta
    Reply("slow")                    a long stream, one delta every 50 ms (cancellation tests)

A request the vendor would reject (wrong model, missing fields, passages missing from the
prompt) gets the vendor's 400/404 and is recorded in `problems`, so a broken adapter fails.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

ReplyKind = Literal["ok", "status", "hang", "malformed", "stream_error", "slow"]
DEFAULT_ANSWER = "The fleet controller is written in Rust [1]."


@dataclass
class Reply:
    kind: ReplyKind = "ok"
    status: int = 200
    retry_after: str | None = None
    error_type: str | None = None
    message: str = "stub error"
    text: str | None = None
    """What this one reply says instead of the stub's `answer_text`."""


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    text: str = DEFAULT_ANSWER
    """What the stub answers this request (set when the reply is chosen)."""


@dataclass
class Route:
    """What a request asks for: `name` is the vendor's operation, `stream` if it wants SSE."""

    name: str
    stream: bool = False
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Rejection:
    status: int
    error_type: str
    message: str


class Vendor(Protocol):
    name: str

    def route(self, method: str, path: str, query: dict[str, str]) -> Route | None: ...

    def check(self, route: Route, request: Recorded, stub: StubServer) -> Rejection | None: ...

    def answer(self, route: Route, request: Recorded, stub: StubServer) -> Any:
        """The JSON body of a non-streaming answer (or of GET routes)."""
        ...

    def events(
        self, route: Route, request: Recorded, stub: StubServer, deltas: list[str]
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """Frames before the deltas, one frame per delta, and the frames after them."""
        ...

    def error_body(self, status: int, error_type: str | None, message: str) -> Any: ...

    def error_event(self, error_type: str, message: str) -> bytes: ...

    def malformed_event(self) -> bytes: ...


def split_deltas(text: str) -> list[str]:
    """Word-sized deltas the way models stream them: "The", " fleet", " controller"..."""
    words = text.split(" ")
    return [words[0], *(f" {w}" for w in words[1:])]


def count_words(text: str) -> int:
    return len(text.split())


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up mid-stream is what cancellation tests do; not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class StubServer:
    def __init__(self, vendor: Vendor, *, model: str) -> None:
        self.vendor = vendor
        self.model = model
        self.answer_text = DEFAULT_ANSWER
        self.required_in_prompt: list[str] = []
        self.requests: list[Recorded] = []
        self.problems: list[str] = []
        self.disconnected = threading.Event()
        self._replies: deque[Reply] = deque()
        self._release = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        self._replies.clear()
        self.requests.clear()
        self.problems.clear()
        self.disconnected.clear()
        self.answer_text = DEFAULT_ANSWER
        self.required_in_prompt = []

    def reply(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order; then normally again."""
        self._replies.extend(replies)

    def next_reply(self) -> Reply:
        return self._replies.popleft() if self._replies else Reply()

    def hang(self) -> None:
        self._release.wait(30)


def _handler_for(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        pass

    Handler.stub = stub
    return Handler


class _Handler(BaseHTTPRequestHandler):
    stub: StubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # Sending ------------------------------------------------------------------------------

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # Handling -----------------------------------------------------------------------------

    def _read(self) -> Recorded:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Recorded(self.command, split.path, query, headers, body)

    def _handle(self) -> None:
        stub, vendor = self.stub, self.stub.vendor
        request = self._read()
        stub.requests.append(request)
        route = vendor.route(request.method, request.path, request.query)
        if route is None:
            stub.problems.append(f"no route for {request.method} {request.path}")
            self._send_json(404, vendor.error_body(404, None, f"unknown path {request.path}"))
            return
        rejection = vendor.check(route, request, stub)
        if rejection is not None:
            stub.problems.append(rejection.message)
            body = vendor.error_body(rejection.status, rejection.error_type, rejection.message)
            self._send_json(rejection.status, body)
            return
        reply = stub.next_reply()
        request.text = reply.text if reply.text is not None else stub.answer_text
        if reply.kind == "status":
            headers = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            body = vendor.error_body(reply.status, reply.error_type, reply.message)
            self._send_json(reply.status, body, headers)
        elif reply.kind == "hang":
            stub.hang()
            self.close_connection = True
        elif not route.stream:
            if reply.kind == "malformed":
                self._send_json(200, b'{"id": "x", "choices": [{"index": 0, "mess')
            else:
                self._send_json(200, vendor.answer(route, request, stub))
        else:
            self._stream(route, request, reply)

    def _stream(self, route: Route, request: Recorded, reply: Reply) -> None:
        stub, vendor = self.stub, self.stub.vendor
        text = request.text
        if reply.kind == "slow":
            text = " ".join([text] * 40)
        deltas = split_deltas(text)
        before, frames, after = vendor.events(route, request, stub, deltas)
        self._start_stream()
        try:
            for frame in before:
                self._chunk(frame)
            for i, frame in enumerate(frames):
                self._chunk(frame)
                if reply.kind == "malformed" and i == 0:
                    self._chunk(vendor.malformed_event())
                    break
                if reply.kind == "stream_error" and i == 0:
                    error_type = reply.error_type or "overloaded_error"
                    self._chunk(vendor.error_event(error_type, reply.message))
                    break
                if reply.kind == "slow":
                    time.sleep(0.05)
            else:
                for frame in after:
                    self._chunk(frame)
            self._end_stream()
        except (BrokenPipeError, ConnectionResetError):
            stub.disconnected.set()
            self.close_connection = True
