"""Self-check: the real slack_sdk clients against SlackStub."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.builtin.client import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from tests.stubs.slack_stub import SlackStub, app_mention, event_callback, sign, slash_command


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub(bot_token="xoxb-test", app_token="xapp-test") as s:
        yield s


def test_post_then_update(stub: SlackStub) -> None:
    client = WebClient(token="xoxb-test", base_url=stub.api_url)
    assert client.auth_test()["user_id"] == "UBOT"
    first = client.chat_postMessage(channel="C1", text="thinking…", thread_ts="1.000100")
    second = client.chat_postMessage(channel="C1", text="again")
    assert first["ts"] < second["ts"] and first["message"]["thread_ts"] == "1.000100"
    client.chat_update(channel="C1", ts=first["ts"], text="done")
    assert stub.messages[first["ts"]]["text"] == "done"
    with pytest.raises(SlackApiError) as bad:
        client.chat_update(channel="C1", ts="9.000000", text="x")
    assert bad.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as unauthed:
        WebClient(token="xoxb-wrong", base_url=stub.api_url).auth_test()
    assert unauthed.value.response["error"] == "invalid_auth"
    assert [c.method for c in stub.calls()][:3] == ["auth.test", *["chat.postMessage"] * 2]
    assert stub.problems == []


def test_form_blocks_are_decoded_and_limits_enforced(stub: SlackStub) -> None:
    client = WebClient(token="xoxb-test", base_url=stub.api_url)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]
    client.api_call("chat.postMessage", params={"channel": "C1", "blocks": json.dumps(blocks)})
    assert stub.calls("chat.postMessage")[0].args["blocks"] == blocks
    with pytest.raises(SlackApiError) as too_many:
        client.chat_postMessage(channel="C1", text="x", blocks=blocks * 51)
    assert too_many.value.response["error"] == "invalid_blocks"
    assert len(stub.problems) == 1


def test_429_is_honoured_by_the_retry_handler(stub: SlackStub) -> None:
    client = WebClient(token="xoxb-test", base_url=stub.api_url)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    stub.rate_limit("chat.postMessage", times=1, retry_after=1)
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]
    limited, retried = stub.calls("chat.postMessage")
    assert (limited.status, retried.status) == (429, 200)
    assert retried.at - limited.at >= 1.0


def test_sign_matches_slack_sdk_verifier() -> None:
    body = slash_command("what is rust?")
    headers = sign("s3cret", body)
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)


def test_socket_mode_round_trip(stub: SlackStub) -> None:
    web = WebClient(base_url=stub.api_url)
    client = SocketModeClient(app_token="xapp-test", web_client=web, auto_reconnect_enabled=False)

    def ack(c: SocketModeClient, req: SocketModeRequest) -> None:
        c.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))

    client.socket_mode_request_listeners.append(ack)  # type: ignore[arg-type]
    try:
        client.connect()
        payload = event_callback(app_mention("<@UBOT> hi"), event_id="Ev1")
        envelope = {"envelope_id": "env-1", "type": "events_api", "payload": payload}
        stub.socket_send(envelope | {"accepts_response_payload": False, "retry_attempt": 0})
        assert stub.wait_for_ack("env-1") == {"envelope_id": "env-1"}
    finally:
        client.close()
