"""The Slack bot end to end: signed Slack requests into the real app, answers by the real local
model through the real Celery worker, posted to a local stub of Slack's Web API."""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from api.main import create_app
from rag.chat import ChatTurn
from rag.db.tables import ChatFeedbackRow, ChatTurnRow
from tests.conftest import SESSION, make_settings
from tests.e2e.test_api import wait_for_job
from tests.passages import BACKUPS, FLEET
from tests.stubs.slack_stub import (
    SlackCall,
    SlackStub,
    app_mention,
    block_action,
    event_callback,
    message_event,
    sign,
    slash_command,
    url_verification,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the example secret of Slack's docs
BOT_TOKEN, APP_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", "xapp-1-test"
QUESTION = "What language is the fleet controller written in?"
BILLING = "Invoices are reconciled by the finance team on the first working day of each month."
SALARIES = "Salary bands for engineers are reviewed every April by the people team."
CATALOG = """
default_policy = "standard"
extractive = false

[models.local]
backend = "llama_cpp"

[models.down]
backend = "openai_compat"
model = "down-1"
base_url = "http://127.0.0.1:9/v1"
self_hosted = true
timeout_s = 2

[policies.standard]
models = ["local"]
"""


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStub]:
    with SlackStub(bot_token=BOT_TOKEN, app_token=APP_TOKEN) as stub:
        yield stub


@pytest.fixture(scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory, slack: SlackStub) -> AsyncIterator[FastAPI]:
    data_dir = tmp_path_factory.mktemp("slack")
    (data_dir / "models.toml").write_text(CATALOG)
    os.environ.update(SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_BOT_TOKEN=BOT_TOKEN)
    settings = make_settings(
        data_dir,
        database_url=f"sqlite:///{data_dir / 'rag.db'}",
        generator={"catalog_file": data_dir / "models.toml", "breaker_failures": 100},
        slack={
            "api_url": slack.api_url,
            "queue": f"rag-chat-test-{SESSION}",
            "collections": ["handbook"],
            "channels": {"CDOWN": {"model": "down"}, "CHR": {"groups": ["people"]}},
        },
    )
    application = create_app(settings)
    try:
        async with application.router.lifespan_context(application):
            yield application
    finally:
        for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN"):
            os.environ.pop(name, None)


@pytest.fixture(scope="module")
async def handbook(client: httpx.AsyncClient) -> str:
    assert (await client.post("/v1/collections", json={"name": "handbook"})).status_code == 201
    documents = [
        {"source": "fleet.md", "text": f"# Fleet controller\n\n{FLEET.text}"},
        {"source": "backups.md", "text": f"# Operations handbook\n\n{BACKUPS.text}"},
        {"source": "https://wiki.example.com/billing", "text": f"# Billing\n\n{BILLING}"},
        {
            "source": "salaries.md",
            "text": f"# Salaries\n\n{SALARIES}",
            "allowed_groups": ["people"],
        },
    ]
    response = await client.post(
        "/v1/collections/handbook/documents/text", json={"documents": documents}
    )
    assert response.status_code == 202, response.text
    assert (await wait_for_job(client, response.json()["id"]))["status"] == "succeeded"
    return "handbook"


async def send(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    form: bool = False,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content_type = "application/x-www-form-urlencoded" if form else "application/json"
    signed = sign(secret, body, timestamp) | {"Content-Type": content_type} | (headers or {})
    return await client.post("/slack/events", content=body, headers=signed)


async def mention(client: httpx.AsyncClient, text: str, **event: Any) -> dict[str, Any]:
    payload = event_callback(app_mention(f"<@UBOT> {text}", **event))
    response = await send(client, json.dumps(payload).encode())
    assert response.status_code == 200, response.text
    return payload


async def wait_for(
    slack: SlackStub,
    method: str,
    predicate: Callable[[SlackCall], bool] = lambda c: True,
    *,
    count: int = 1,
    within_s: float = 180,
) -> list[SlackCall]:
    """Calls the bot made to Slack (waited for off the event loop, which serves the app)."""
    wait = functools.partial(slack.wait_for, method, predicate, timeout=within_s, count=count)
    return await anyio.to_thread.run_sync(wait)


async def answer_in(slack: SlackStub, thread: str, count: int = 1) -> SlackCall:
    """The chat.update that put the answer in place of the bot's "searching…" in `thread`."""

    def in_thread(call: SlackCall) -> bool:
        placed = slack.messages.get(call.args["ts"], {}).get("thread_ts") == thread
        return placed and call.status == 200

    return (await wait_for(slack, "chat.update", in_thread, count=count))[count - 1]


def text_of(call: SlackCall) -> str:
    return json.dumps(call.args.get("blocks", [])) + call.args.get("text", "")


def turns(app: FastAPI, **where: Any) -> list[ChatTurnRow]:
    with app.state.runtime.db.session() as session:
        query = select(ChatTurnRow).filter_by(**where).order_by(ChatTurnRow.created_at)
        return list(session.scalars(query))


# -- request verification ---------------------------------------------------------------------


async def test_url_verification_challenge(client: httpx.AsyncClient) -> None:
    response = await send(client, json.dumps(url_verification("3eZbrw1aBm2rZgRNFdx")).encode())
    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdx" in response.text


@pytest.mark.parametrize("how", ["unsigned", "wrong secret", "stale", "tampered"])
async def test_unverified_requests_get_401_and_nothing_happens(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, how: str
) -> None:
    payload = event_callback(app_mention(f"<@UBOT> {QUESTION}", channel="CVERIFY"))
    body = json.dumps(payload).encode()
    if how == "unsigned":
        response = await client.post(
            "/slack/events", content=body, headers={"Content-Type": "application/json"}
        )
    elif how == "wrong secret":
        response = await send(client, body, secret="not-the-secret")
    elif how == "stale":  # correctly signed, six minutes ago: a replay
        response = await send(client, body, timestamp=int(time.time()) - 360)
    else:  # signed, then the body changed
        headers = sign(SIGNING_SECRET, body) | {"Content-Type": "application/json"}
        tampered = body.replace(b"fleet", b"fjord")
        response = await client.post("/slack/events", content=tampered, headers=headers)
    assert response.status_code == 401
    assert turns(app, channel="CVERIFY") == []
    assert not [c for c in slack.calls() if c.args.get("channel") == "CVERIFY"]


# -- answering --------------------------------------------------------------------------------


async def test_mention_is_answered_in_its_thread_with_sources(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    start = time.perf_counter()
    payload = await mention(client, QUESTION, channel="C1", ts="1700000001.000100")
    acknowledged_s = time.perf_counter() - start
    thread = payload["event"]["ts"]
    placeholder = await wait_for(
        slack, "chat.postMessage", lambda c: c.args.get("thread_ts") == thread
    )
    assert "Searching the documents" in placeholder[0].args["text"]
    update = await answer_in(slack, thread)
    shown = text_of(update)
    assert "Sources" in shown and "Fleet controller" in shown, shown
    (turn,) = turns(app, channel="C1")
    assert f"Answered by `{turn.model}`" in shown  # the pinned model that wrote it
    assert '"action_id": "feedback_up"' in shown
    assert turn.status == "answered" and turn.answerable and turn.model
    assert turn.citations and turn.citations[0]["source"] == "fleet.md"
    assert "rust" in turn.answer.lower()
    assert not slack.problems
    print(f"acknowledged in {acknowledged_s * 1000:.0f} ms")


async def test_a_retried_delivery_is_answered_once(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    payload = event_callback(app_mention("<@UBOT> When are backups taken?", channel="C2"))
    body = json.dumps(payload).encode()
    assert (await send(client, body)).status_code == 200
    for retry in ("1", "2"):  # Slack retries with the same event_id when it heard nothing
        headers = {"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"}
        assert (await send(client, body, headers=headers)).status_code == 200
    await answer_in(slack, payload["event"]["ts"])
    # Answers are queued in order: once a later question is answered, a duplicate would be too.
    later = await mention(client, "How long are backups kept?", channel="C2")
    await answer_in(slack, later["event"]["ts"])
    thread = payload["event"]["ts"]
    posts = [c for c in slack.calls("chat.postMessage") if c.args.get("thread_ts") == thread]
    assert len(posts) == 1
    assert len(turns(app, event_id=payload["event_id"])) == 1


async def test_a_follow_up_in_the_thread_uses_its_context(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    first = await mention(client, QUESTION, channel="C3")
    thread = first["event"]["ts"]
    await answer_in(slack, thread)
    # No mention: the bot answered in this thread, so it follows the conversation.
    follow_up = event_callback(message_event("How often does it reconcile?", channel="C3",
                                             thread_ts=thread))  # fmt: skip
    assert (await send(client, json.dumps(follow_up).encode())).status_code == 200
    update = await answer_in(slack, thread, count=2)
    turn = turns(app, channel="C3")[1]
    assert turn.question == "How often does it reconcile?"
    assert turn.standalone == f"{QUESTION} How often does it reconcile?"
    # Without the thread, "reconcile" alone would find the billing page.
    assert turn.citations and {c["source"] for c in turn.citations} == {"fleet.md"}, turn.citations
    assert "Fleet controller" in text_of(update)


async def test_messages_outside_the_bots_threads_are_ignored(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub
) -> None:
    for event in (
        message_event("How often does it reconcile?", channel="C4"),  # not in a thread
        message_event("and backups?", channel="C4", thread_ts="1600000000.000100"),  # not ours
        message_event("<@UBOT> and backups?", channel="C4", thread_ts="1600000000.000100"),
        {**message_event("edited", channel="C4"), "subtype": "message_changed"},
    ):
        response = await send(client, json.dumps(event_callback(event)).encode())
        assert response.status_code == 200
    assert turns(app, channel="C4") == []


async def test_direct_message_is_answered(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    event = message_event(QUESTION, channel="D1", channel_type="im")
    assert (await send(client, json.dumps(event_callback(event)).encode())).status_code == 200
    assert "Fleet controller" in text_of(await answer_in(slack, event["ts"]))
    (turn,) = turns(app, channel="D1")
    assert turn.direct


async def test_slash_command_acks_ephemerally_then_answers_in_channel(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    response = await send(client, slash_command(QUESTION, channel_id="C5"), form=True)
    assert response.status_code == 200
    assert response.json()["response_type"] == "ephemeral"
    assert "Working on it" in response.json()["text"]
    (post,) = await wait_for(slack, "chat.postMessage", lambda c: c.args.get("channel") == "C5")
    assert "thread_ts" not in post.args  # the answer starts its own thread
    assert "<@U123> asked" in text_of(post)
    (update,) = await wait_for(slack, "chat.update", lambda c: c.args.get("channel") == "C5")
    assert "<@U123> asked" in text_of(update) and "Fleet controller" in text_of(update)
    (turn,) = turns(app, channel="C5")
    assert turn.thread == turn.reply == update.args["ts"]
    empty = await send(client, slash_command("  ", channel_id="C5"), form=True)
    assert "/ask" in empty.json()["text"]


async def test_feedback_click_is_stored_with_the_answer(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    payload = await mention(client, QUESTION, channel="C6")
    update = await answer_in(slack, payload["event"]["ts"])
    (turn,) = turns(app, channel="C6")
    shown = slack.messages[update.args["ts"]]
    for action in ("feedback_up", "feedback_down"):
        click = block_action(action, turn.id, user_id="U777", channel_id="C6",
                             message_ts=update.args["ts"], message=shown)  # fmt: skip
        assert (await send(client, click, form=True)).status_code == 200
    with app.state.runtime.db.session() as session:
        (feedback,) = session.scalars(select(ChatFeedbackRow).filter_by(turn_id=turn.id))
        assert (feedback.user, feedback.value) == ("U777", -1)  # the later click counts
    ephemeral = await wait_for(
        slack, "chat.postEphemeral", lambda c: c.args["user"] == "U777", count=2
    )
    assert "Thanks" in ephemeral[0].args["text"]
    # Stored beside the question, the answer, its citations and the model.
    assert turn.question == QUESTION and turn.answer and turn.citations and turn.model


async def test_a_model_that_is_down_is_said_in_the_thread(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    payload = await mention(client, QUESTION, channel="CDOWN")
    update = await answer_in(slack, payload["event"]["ts"])
    assert "I couldn't reach the model" in update.args["text"]
    (turn,) = turns(app, channel="CDOWN")
    assert turn.status == "failed" and turn.error


async def test_slacks_rate_limit_is_waited_out(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    slack.rate_limit("chat.update", times=1, retry_after=1)
    payload = await mention(client, QUESTION, channel="C7")
    update = await answer_in(slack, payload["event"]["ts"])
    limited = [c for c in slack.calls("chat.update") if c.status == 429]
    assert limited, "the stub did not rate limit"
    assert update.at - limited[-1].at >= 1.0  # Retry-After was honoured
    assert turns(app, channel="C7")[0].status == "answered"


def test_channels_quote_only_what_all_their_members_may_read(app: FastAPI) -> None:
    chat = app.state.runtime.chat

    def turn(channel: str, direct: bool = False) -> ChatTurn:
        return ChatTurn(id="t", platform="slack", team="T", channel=channel, thread="1",
                        user="U1", direct=direct, question="q", standalone=None,
                        status="pending", reply=None, answer=None, model=None, error=None,
                        created_at=datetime.now())  # fmt: skip

    assert chat.reach(turn("CPUB")).access == ["*"]
    assert chat.reach(turn("CPUB")).collections == ["handbook"]
    assert chat.reach(turn("CPUB")).route is None
    assert chat.reach(turn("CHR")).access == ["*", "group:people"]
    assert chat.reach(turn("CDOWN")).route.model == "down"
    # A direct message is read by the asker alone: their own documents too.
    assert chat.reach(turn("D9", direct=True)).access == ["*", "user:U1"]


async def test_a_public_channel_does_not_quote_restricted_documents(
    app: FastAPI, client: httpx.AsyncClient, slack: SlackStub, handbook: str
) -> None:
    question = "When are salary bands for engineers reviewed?"
    for channel in ("C8", "CHR"):
        payload = await mention(client, question, channel=channel)
        await answer_in(slack, payload["event"]["ts"])
    (public,) = turns(app, channel="C8")
    (people,) = turns(app, channel="CHR")
    assert "salaries.md" not in {c["source"] for c in public.citations}
    assert "salaries.md" in {c["source"] for c in people.citations}, people.answer
