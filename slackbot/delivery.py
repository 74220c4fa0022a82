"""Answering one recorded question (run by the `rag.chat_answer` Celery task): a "searching…"
message in the thread at once, then the answer in its place. Whatever fails, the asker gets a
short message in the thread and the details go to the log; nothing is answered twice."""

from __future__ import annotations

import logging

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError

from rag.chat import Chat, ChatTurn
from rag.errors import BackendError, GenerationError, NotFoundError, RagError
from slackbot.blocks import answer_messages, escape, notice, section

log = logging.getLogger("slack")
WORKING = "Searching the documents…"
STORES = ("database", "qdrant", "embedder")
# Slack's errors meaning the bot cannot post here: it must be invited to the channel.
NOT_HERE = ("not_in_channel", "channel_not_found", "is_archived")


def user_message(exc: Exception, turn_id: str) -> str:
    """What the asker is told; never a trace."""
    if isinstance(exc, BackendError) and exc.backend in STORES:
        return "I couldn't reach the document index. Please try again in a minute."
    if isinstance(exc, BackendError | GenerationError):
        return "I couldn't reach the model. Please try again in a minute."
    if isinstance(exc, NotFoundError):
        return f"I can't search here: {exc.message}. Ask an admin to check my configuration."
    if isinstance(exc, RagError):
        return f"I can't answer that: {exc.message}"
    return f"Something went wrong on my side (reference {turn_id[:8]}); it is in the logs."


def deliver(chat: Chat, client: WebClient, turn_id: str, response_url: str | None = None) -> None:
    turn = chat.get(turn_id)
    if turn.status != "pending":
        log.info("chat turn %s is already %s: not answered again", turn_id, turn.status)
        return
    try:
        turn = _placeholder(chat, client, turn)
    except SlackApiError as exc:
        error = exc.response.get("error", "")
        log.warning("cannot post in %s for turn %s: %s", turn.channel, turn_id, error)
        chat.failed(turn_id, f"slack: {error}")
        if response_url and error in NOT_HERE:
            WebhookClient(response_url).send(
                response_type="ephemeral",
                text="I can't post in this channel: invite me with `/invite @` and my name.",
            )
        return
    assert turn.reply is not None
    try:
        answer = chat.answer(turn)
    except Exception as exc:
        if isinstance(exc, RagError):
            log.warning("chat turn %s not answered: %s: %s", turn_id, exc.code, exc.message)
        else:
            log.exception("chat turn %s failed", turn_id)
        chat.failed(turn_id, str(exc)[:2000])
        client.chat_update(
            channel=turn.channel, ts=turn.reply, **notice(user_message(exc, turn_id))
        )
        return
    header = _header(turn)
    first, *rest = answer_messages(answer, turn.id, header=header)
    client.chat_update(channel=turn.channel, ts=turn.reply, **first)
    for message in rest:
        client.chat_postMessage(channel=turn.channel, thread_ts=turn.thread, **message)
    log.info(
        "chat turn %s answered by %s (%s, %d citations)",
        turn_id,
        answer.model or "no model",
        "answerable" if answer.answerable else "not found",
        len(answer.citations),
    )


def _header(turn: ChatTurn) -> str | None:
    """A slash command's answer starts its own thread, so it shows the question."""
    return _asked(turn) if turn.thread == turn.reply else None


def _asked(turn: ChatTurn) -> str:
    return f"<@{turn.user}> asked: _{escape(turn.question)}_"


def _placeholder(chat: Chat, client: WebClient, turn: ChatTurn) -> ChatTurn:
    """Post "searching…" where the answer will go, once: a redelivered task reuses it."""
    if turn.reply is not None:
        return turn
    message = notice(WORKING)
    if turn.thread is None:  # a slash command: the answer starts the thread
        message = {"text": WORKING, "blocks": [section(_asked(turn)), *message["blocks"]]}
        reply = client.chat_postMessage(channel=turn.channel, **message)["ts"]
        chat.replied(turn.id, reply, thread=reply)
    else:
        reply = client.chat_postMessage(channel=turn.channel, thread_ts=turn.thread, **message)[
            "ts"
        ]
        chat.replied(turn.id, reply)
    return chat.get(turn.id)
