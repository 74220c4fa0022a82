"""Socket Mode: `rag serve` connects out to Slack (here the stub's WebSocket) and receives
events over it, with no public URL; the answer goes through the same Celery task."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from fastapi import FastAPI

from api.main import create_app
from tests.conftest import SESSION, make_settings
from tests.e2e.test_slack import answer_in, turns
from tests.stubs.slack_stub import SlackStub, app_mention, event_callback

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BOT_TOKEN, APP_TOKEN = "xoxb-socket-test", "xapp-1-socket-test"
ENV = {"SLACK_SIGNING_SECRET": "unused-in-socket-mode", "SLACK_BOT_TOKEN": BOT_TOKEN,
       "SLACK_APP_TOKEN": APP_TOKEN}  # fmt: skip


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStub]:
    with SlackStub(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as stub:
        yield stub


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory, slack: SlackStub) -> AsyncIterator[FastAPI]:
    data_dir = tmp_path_factory.mktemp("slack-socket")
    os.environ.update(ENV)
    settings = make_settings(
        data_dir,
        database_url=f"sqlite:///{data_dir / 'rag.db'}",
        slack={
            "api_url": slack.api_url,
            "socket_mode": True,
            "queue": f"rag-chat-test-{SESSION}",
            "collections": ["nowhere"],
        },
    )
    application = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        for name in ENV:
            os.environ.pop(name, None)


async def test_an_event_over_the_socket_is_acked_and_answered(
    app: FastAPI, slack: SlackStub
) -> None:
    payload = event_callback(app_mention("<@UBOT> Is anyone there?", channel="CSOCK"))
    envelope = {
        "envelope_id": "57d6a792-4d35-4d0b-b6aa-3361493e1caf",
        "type": "events_api",
        "payload": payload,
        "accepts_response_payload": False,
        "retry_attempt": 0,
        "retry_reason": "",
    }
    await anyio.to_thread.run_sync(slack.socket_send, envelope)
    ack = await anyio.to_thread.run_sync(slack.wait_for_ack, envelope["envelope_id"])
    assert ack["envelope_id"] == envelope["envelope_id"]
    # The channel's collection does not exist: the asker is told so in the thread.
    update = await answer_in(slack, payload["event"]["ts"])
    assert "I can't search here" in update.args["text"] and "nowhere" in update.args["text"]
    (turn,) = turns(app, channel="CSOCK")
    assert turn.status == "failed" and turn.event_id == payload["event_id"]
    assert not slack.problems
