"""A fake Slack on 127.0.0.1 that the real `slack_sdk.WebClient` and `slack_bolt.App` talk to.

`SlackStub` is a real HTTP server speaking the Web API wire format: `POST /api/<method>` with a
form, JSON or multipart body and `Authorization: Bearer <token>`, answered the way Slack answers
(HTTP 200 `{"ok": false, "error": ...}` for errors, HTTP 429 + `Retry-After` when rate limited).
It also serves `response_url`s and a Socket Mode websocket (`apps.connections.open` hands out
its `ws://` URL), so a Bolt app in Socket Mode can be driven end to end:

    with SlackStub() as stub:
        client = WebClient(token=stub.bot_token, base_url=stub.api_url)
        ...  # run the bot, then:
        stub.socket_send({"envelope_id": "e1", "type": "events_api", "payload": event_callback(
            app_mention("<@UBOT> hi")), "accepts_response_payload": False})
        stub.wait_for_ack("e1")
        [post] = stub.wait_for("chat.postMessage")
        assert not stub.problems

Block Kit limits Slack enforces (50 blocks, 3000-character section text, 40000-character
`text`) are enforced here too and recorded in `problems`. The functions at the bottom build
the payloads Slack sends to an app (events, slash commands, button clicks) and sign them.
"""

from __future__ import annotations

import contextlib
import email
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlencode, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

TEAM_ID, APP_ID, BOT_USER, BOT_ID = "T0STUB", "A0STUB", "UBOT", "BBOT"
VERIFICATION_TOKEN = "Jhj5dZrVaK7ZwHHjRyZWjbDl"  # the deprecated token field, as in Slack's docs
TRIGGER_ID = "13345224609.738474920.8088930838d88f008e0"
MALFORMED = {"no_text", "msg_too_long", "invalid_blocks", "invalid_blocks_format"}
JSON_FIELDS = {"blocks", "attachments", "metadata", "user_auth_blocks", "unfurls", "view"}
Json = dict[str, Any]
Reply = tuple[int, Any, dict[str, str]]  # HTTP status, body (JSON or text), extra headers


@dataclass
class SlackCall:
    method: str  # "chat.postMessage", or "response_url:<name>"
    args: Json  # the decoded body and query (`blocks` etc. already parsed from JSON)
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    status: int = 200
    response: Any = None  # what the stub answered


class SlackStub:
    def __init__(self, bot_token: str = "xoxb-test", app_token: str = "xapp-test") -> None:
        self.bot_token, self.app_token = bot_token, app_token
        self.messages: dict[str, Json] = {}  # ts -> the message as it is now, with channel
        self.problems: list[str] = []  # requests real Slack would have rejected
        self._calls: list[SlackCall] = []
        self._acks: list[Json] = []
        self._sockets: list[ServerConnection] = []
        self._tickets: set[str] = set()
        self._reactions: set[tuple[str, str, str]] = set()
        self._injected: dict[str, deque[Reply]] = {}
        self._seq = 0
        self._cond = threading.Condition()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._http.daemon_threads = True
        self._ws: Server = serve(self._socket_session, "127.0.0.1", 0)
        self._threads = [
            threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True),
            threading.Thread(target=self._ws.serve_forever, daemon=True),
        ]

    # -- lifecycle and addresses --------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/api/"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}/socket"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/response/{name}"

    def start(self) -> SlackStub:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        for ws in list(self._sockets):
            ws.close()
        if self._threads[0].is_alive():  # shutdown() waits for serve_forever() to return
            self._ws.shutdown()
            self._http.shutdown()
        self._ws.socket.close()
        self._http.server_close()

    def __enter__(self) -> SlackStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recordings --------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[SlackCall]:
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def wait_for(
        self,
        method: str,
        predicate: Callable[[SlackCall], bool] = lambda call: True,
        timeout: float = 30.0,
        count: int = 1,
    ) -> list[SlackCall]:
        """Block until `count` calls of `method` matching `predicate(call)` arrived."""

        def matching() -> list[SlackCall]:
            return [c for c in self._calls if c.method == method and predicate(c)]

        with self._cond:
            if self._cond.wait_for(lambda: len(matching()) >= count, timeout):
                return matching()
            got = "".join(f"\n  {c.method} {c.status} {str(c.args)[:200]}" for c in self._calls)
        raise AssertionError(f"wanted {count} {method} call(s) in {timeout}s; got:{got or ' none'}")

    def reset(self) -> None:
        with self._cond:
            self._calls.clear()
            self._acks.clear()
            self.problems.clear()
            self.messages.clear()
            self._injected.clear()
            self._reactions.clear()

    # -- failure injection -------------------------------------------------------------------
    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get Slack's HTTP 429 with `Retry-After`."""
        reply = (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
        with self._cond:
            self._injected.setdefault(method, deque()).extend([reply] * times)

    def fail(self, method: str, error: str = "channel_not_found", times: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 200 `{"ok": false, "error": error}`."""
        reply: Reply = (200, {"ok": False, "error": error}, {})
        with self._cond:
            self._injected.setdefault(method, deque()).extend([reply] * times)

    # -- Socket Mode -------------------------------------------------------------------------
    def socket_send(self, envelope: Json, timeout: float = 10.0) -> None:
        """Send an envelope (or a `{"type": "disconnect", ...}`) to the newest connected client."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._sockets, timeout):
                raise AssertionError(f"no Socket Mode client connected to {self.socket_url}")
            ws = self._sockets[-1]
        ws.send(json.dumps(envelope))

    def socket_acks(self, timeout: float = 0.0) -> list[Json]:
        """Every ack received so far, after waiting up to `timeout` for the first one."""
        with self._cond:
            self._cond.wait_for(lambda: self._acks, timeout)
            return list(self._acks)

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> Json:
        def find() -> Json | None:
            return next((a for a in self._acks if a.get("envelope_id") == envelope_id), None)

        with self._cond:
            if self._cond.wait_for(lambda: find() is not None, timeout):
                return find() or {}
            raise AssertionError(f"no ack for {envelope_id} in {timeout}s; acks: {self._acks}")

    def _socket_session(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "").query)
        if query.get("ticket", [""])[0] not in self._tickets:
            self.problems.append("Socket Mode URL not from apps.connections.open: " + str(query))
            ws.close(1008, "invalid ticket")
            return
        debug = {"host": "applink-stub", "build_number": 10, "approximate_connection_time": 18060}
        hello = {"type": "hello", "num_connections": len(self._sockets) + 1, "debug_info": debug}
        ws.send(json.dumps(hello | {"connection_info": {"app_id": APP_ID}}))
        with self._cond:
            self._sockets.append(ws)
            self._cond.notify_all()
        try:
            for raw in ws:
                frame = json.loads(raw)
                with self._cond:
                    self._acks.append(frame)
                    self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._sockets.remove(ws)

    # -- the Web API -------------------------------------------------------------------------
    def handle(self, method: str, args: Json, headers: dict[str, str]) -> Reply:
        """Answer one request: (HTTP status, body, extra headers). Called by the HTTP handler."""
        call = SlackCall(method, args, headers)
        status, body, extra = self._answer(call)
        call.status, call.response = status, body
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        return status, body, extra

    def _answer(self, call: SlackCall) -> Reply:
        method, args = call.method, call.args
        if method.startswith("response_url:"):
            error = _message_error(args, require_text=False)
            if error:
                self.problems.append(f"{method}: {error[0]} {error[1]}")
                return 400, error[0], {}  # response_url answers in plain text
            return 200, "ok", {}
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        auth = call.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            code = "not_authed" if not token else "invalid_auth"
            if token in (self.bot_token, self.app_token):
                code = "not_allowed_token_type"
            return 200, {"ok": False, "error": code}, {}
        with self._cond:
            injected = self._injected.get(method)
            if injected:
                return injected.popleft()
            body: Json = handler(args)
        if body.get("error") in MALFORMED:
            self.problems.append(f"{method}: {body['error']} {body.get('errors', '')}".strip())
        return 200, body, {}

    def _api_auth_test(self, args: Json) -> Json:
        team = {"url": "https://stub.slack.com/", "team": "Stub Team", "team_id": TEAM_ID}
        bot = {"user": "ragbot", "user_id": BOT_USER, "bot_id": BOT_ID}
        return {"ok": True} | team | bot | {"is_enterprise_install": False}

    def _api_apps_connections_open(self, args: Json) -> Json:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {"ok": True, "url": f"{self.socket_url}?ticket={ticket}&app_id={APP_ID}"}

    def _api_chat_postMessage(self, args: Json) -> Json:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if error := _message_error(args):
            return _error(*error)
        self._seq += 1
        ts = f"{int(time.time())}.{self._seq * 100:06d}"
        message = {"type": "message", "text": args.get("text", ""), "user": BOT_USER}
        message |= {"bot_id": BOT_ID, "app_id": APP_ID, "team": TEAM_ID, "ts": ts}
        message |= {k: args[k] for k in ("blocks", "thread_ts", "metadata") if k in args}
        self.messages[ts] = {"channel": args["channel"], **message}
        return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}

    def _api_chat_update(self, args: Json) -> Json:
        message = self.messages.get(args.get("ts", ""))
        if message is None or message["channel"] != args.get("channel"):
            return {"ok": False, "error": "message_not_found"}
        if error := _message_error(args):
            return _error(*error)
        message |= {k: args[k] for k in ("text", "blocks", "metadata") if k in args}
        message["edited"] = {"user": BOT_USER, "ts": f"{time.time():.6f}"}
        shown = {k: v for k, v in message.items() if k != "channel"}
        reply = {"ok": True, "channel": message["channel"], "ts": message["ts"]}
        return reply | {"text": message["text"], "message": shown}

    def _api_chat_postEphemeral(self, args: Json) -> Json:
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if error := _message_error(args):
            return _error(*error)
        return {"ok": True, "message_ts": f"{time.time():.6f}"}

    def _api_reactions_add(self, args: Json) -> Json:
        key = (args.get("channel", ""), args.get("timestamp", ""), args.get("name", ""))
        if not all(key):
            return {"ok": False, "error": "no_item_specified" if key[2] else "invalid_name"}
        if key in self._reactions:
            return {"ok": False, "error": "already_reacted"}
        self._reactions.add(key)
        return {"ok": True}


def _error(code: str, details: list[str]) -> Json:
    """Slack's error shape; block errors also list the JSON pointers that failed."""
    listed = {
        "errors": details,
        "response_metadata": {"messages": [f"[ERROR] {d}" for d in details]},
    }
    return {"ok": False, "error": code} | (listed if details else {})


def _message_error(args: Json, require_text: bool = True) -> tuple[str, list[str]] | None:
    """Slack's own checks on a message's `text` and `blocks`: (error code, details) or None."""
    text, blocks = args.get("text"), args.get("blocks")
    if require_text and not text and not blocks:
        return "no_text", []
    if isinstance(text, str) and len(text) > 40000:
        return "msg_too_long", []
    if blocks is None:
        return None
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
        return "invalid_blocks_format", []
    errors = ["no more than 50 items allowed [json-pointer:/blocks]"] if len(blocks) > 50 else []
    for i, block in enumerate(blocks):
        text_len, at = len((block.get("text") or {}).get("text", "")), f"[json-pointer:/blocks/{i}"
        if block["type"] == "section" and "text" not in block and "fields" not in block:
            errors.append(f"must provide text or fields {at}]")
        if block["type"] == "section" and text_len > 3000:
            errors.append(f"must be less than 3001 characters {at}/text/text]")
        if block["type"] == "header" and text_len > 150:
            errors.append(f"must be less than 151 characters {at}/text/text]")
    return ("invalid_blocks", errors) if errors else None


def _parse_body(query: str, content_type: str, body: bytes) -> Json:
    """The request's arguments, however WebClient sent them."""
    args: Json = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if content_type.startswith("application/json"):
        args |= json.loads(body or b"{}")
    elif content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        parts: list[Message] = email.message_from_bytes(head + body).get_payload()  # type: ignore[assignment]
        for part in parts:
            data = cast(bytes, part.get_payload(decode=True))
            name = str(part.get_param("name", header="content-disposition"))
            args[name] = data if part.get_filename() else data.decode()
    elif body:
        args |= {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    for key in JSON_FIELDS & args.keys():
        with contextlib.suppress(TypeError, ValueError):  # Slack: "invalid_blocks_format"
            args[key] = json.loads(args[key])
    return args


def _handler_for(stub: SlackStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            if url.path.startswith("/response/"):
                method = "response_url:" + url.path.removeprefix("/response/")
            else:
                method = url.path.removeprefix("/api/")
            try:
                args = _parse_body(url.query, headers.get("Content-Type", ""), raw)
            except ValueError:  # a JSON body that does not parse
                stub.problems.append(f"{method}: invalid_json")
                reply: Reply = (200, {"ok": False, "error": "invalid_json"}, {})
            else:
                reply = stub.handle(method, args, headers)
            status, body, extra = reply
            is_json = not isinstance(body, str)
            data = (json.dumps(body) if is_json else str(body)).encode()
            self.send_response(status)
            kind = "application/json" if is_json else "text/html"
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


# -- what Slack sends to the app ---------------------------------------------------------------
def sign(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request to the app with."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(signing_secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={mac.hexdigest()}"}


def _now_ts() -> str:
    return f"{time.time():.6f}"


def url_verification(challenge: str) -> Json:
    return {"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}


def event_callback(
    event: Json, event_id: str | None = None, team_id: str = TEAM_ID, api_app_id: str = APP_ID
) -> Json:
    """The Events API wrapper around `event` (also the `payload` of a Socket Mode envelope)."""
    auth = {"enterprise_id": None, "team_id": team_id, "user_id": BOT_USER, "is_bot": True}
    wrapper: Json = {"token": VERIFICATION_TOKEN, "team_id": team_id, "api_app_id": api_app_id}
    wrapper |= {"event": event, "type": "event_callback"}
    wrapper |= {"event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}"}
    wrapper |= {"event_time": int(time.time())}
    wrapper |= {"authorizations": [auth | {"is_enterprise_install": False}]}
    return wrapper | {"is_ext_shared_channel": False, "event_context": f"4-{uuid.uuid4().hex}"}


def app_mention(
    text: str,
    user: str = "U123",
    channel: str = "C123",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> Json:
    """An `app_mention` event; `text` should hold the mention itself, e.g. "<@UBOT> question"."""
    ts = ts or _now_ts()
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": channel}
    event |= {"event_ts": ts, "team": TEAM_ID}
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


def message_event(
    text: str,
    user: str = "U123",
    channel: str = "C123",
    channel_type: str = "channel",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> Json:
    """A `message` event as delivered for message.channels ("channel") or message.im ("im")."""
    ts = ts or _now_ts()
    event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts}
    event |= {"event_ts": ts, "channel_type": channel_type, "team": TEAM_ID}
    return event | ({"thread_ts": thread_ts} if thread_ts else {})


def slash_command(
    text: str,
    command: str = "/ask",
    user_id: str = "U123",
    channel_id: str = "C123",
    response_url: str = "https://hooks.slack.com/commands/T0STUB/1234567890/stubsecret",
    trigger_id: str = TRIGGER_ID,
) -> bytes:
    """The form-encoded body Slack POSTs to a slash command's Request URL."""
    form: dict[str, str] = {"token": VERIFICATION_TOKEN, "team_id": TEAM_ID, "team_domain": "stub"}
    form |= {"channel_id": channel_id, "channel_name": "general"}
    form |= {"user_id": user_id, "user_name": "asker", "command": command, "text": text}
    form |= {"api_app_id": APP_ID, "is_enterprise_install": "false"}
    return urlencode(form | {"response_url": response_url, "trigger_id": trigger_id}).encode()


def block_action(
    action_id: str,
    value: str,
    user_id: str = "U123",
    channel_id: str = "C123",
    message_ts: str = "1700000000.000100",
    response_url: str = "https://hooks.slack.com/actions/T0STUB/1234567890/stubsecret",
    message: Json | None = None,
    block_id: str = "actions",
) -> bytes:
    """The `payload=<json>` form Slack POSTs to the Interactivity URL when a button is clicked.

    Pass `message=stub.messages[ts]` to carry the clicked message (text, blocks, thread_ts).
    """
    user = {"id": user_id, "username": "asker", "name": "asker", "team_id": TEAM_ID}
    container: Json = {"type": "message", "message_ts": message_ts, "channel_id": channel_id}
    shown = {k: v for k, v in (message or {}).items() if k != "channel"}
    clicked = {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": message_ts} | shown
    action: Json = {"action_id": action_id, "block_id": block_id, "value": value, "type": "button"}
    action |= {"text": {"type": "plain_text", "text": value, "emoji": True}}
    payload: Json = {"type": "block_actions", "user": user, "api_app_id": APP_ID}
    payload |= {"token": VERIFICATION_TOKEN, "container": container | {"is_ephemeral": False}}
    payload |= {"trigger_id": TRIGGER_ID, "team": {"id": TEAM_ID, "domain": "stub"}}
    payload |= {"enterprise": None, "is_enterprise_install": False}
    payload |= {"channel": {"id": channel_id, "name": "general"}, "message": clicked}
    payload |= {"state": {"values": {}}, "response_url": response_url}
    payload |= {"actions": [action | {"action_ts": _now_ts()}]}
    return urlencode({"payload": json.dumps(payload)}).encode()
