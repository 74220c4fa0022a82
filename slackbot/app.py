"""The Bolt app: Slack's events, slash command and button clicks in; questions recorded and
queued out. Answering happens in a Celery task (`slackbot.delivery`), so Slack hears back
within its 3 seconds whatever the model takes.

Bolt checks every request's signature (v0 HMAC-SHA256 of timestamp and body with the signing
secret; a timestamp over 5 minutes old is a replay) and answers 401 before any listener runs.
It answers the `url_verification` challenge itself. A retried delivery carries the event_id
already recorded, and is acknowledged without a second answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from rag.chat import Asked, Chat
from rag.config import Settings
from rag.errors import ConfigError, NotFoundError
from rag.logs import register_secret
from slackbot.blocks import FEEDBACK, strip_mention

log = logging.getLogger("slack")
PLATFORM = "slack"
USAGE = "Ask me about the documents: `/ask how do I request a refund?`"

Enqueue = Callable[[str, str | None], None]  # (turn id, response_url) → queued


@dataclass(frozen=True)
class SlackSecrets:
    signing_secret: str
    bot_token: str
    app_token: str | None


def slack_secrets(settings: Settings) -> SlackSecrets | None:
    """The secrets from the environment; None when the bot is off. `slack.enabled = true`
    with one missing stops the service with a line that names it."""
    s = settings.slack
    signing, bot = settings.env_secret(s.signing_secret_env), settings.env_secret(s.bot_token_env)
    app = settings.env_secret(s.app_token_env)
    if s.enabled is False or (s.enabled is None and not (signing and bot)):
        return None
    needed = [(s.signing_secret_env, signing), (s.bot_token_env, bot)]
    if s.socket_mode:
        needed.append((s.app_token_env, app))
    if missing := [name for name, value in needed if value is None]:
        raise ConfigError(f"the Slack bot is enabled but {', '.join(missing)} is not set")
    assert signing is not None and bot is not None
    secrets = SlackSecrets(
        signing.get_secret_value(), bot.get_secret_value(), app.get_secret_value() if app else None
    )
    for value in (secrets.signing_secret, secrets.bot_token, secrets.app_token):
        register_secret(value)
    return secrets


def configure(client: WebClient, settings: Settings) -> WebClient:
    """Point a Web API client at `slack.api_url`; a 429 is waited out for its Retry-After."""
    client.base_url = settings.slack.api_url
    client.retry_handlers = [
        ConnectionErrorRetryHandler(),
        RateLimitErrorRetryHandler(max_retry_count=settings.slack.rate_limit_retries),
    ]
    return client


def bot_client(settings: Settings) -> WebClient:
    """The Web API client with the bot's token (for the answering task)."""
    secrets = slack_secrets(settings)
    if secrets is None:
        raise ConfigError(f"the Slack bot is not configured: {settings.slack.bot_token_env} unset")
    return configure(WebClient(token=secrets.bot_token), settings)


def build_bolt(
    settings: Settings, secrets: SlackSecrets, chat: Callable[[], Chat], enqueue: Enqueue
) -> App:
    """`chat` gives the process's `Chat` when a request needs it (the runtime is built after
    the app); `enqueue` sends a recorded question to the answering task."""
    app = App(
        signing_secret=secrets.signing_secret,
        token=secrets.bot_token,
        # The question is recorded and queued before Slack gets its 200: if this process
        # dies first, Slack retries the delivery instead of the question being lost.
        process_before_response=True,
        # auth.test runs on the first event, not at start-up (Slack may be unreachable then).
        token_verification_enabled=False,
        logger=logging.getLogger("slack.bolt"),
    )
    configure(app.client, settings)  # each request's client copies its URL and retry handlers

    def ask(asked: Asked, response_url: str | None = None) -> None:
        turn = chat().ask(asked)
        if turn is None:
            log.info("slack delivery %s seen before: not answered twice", asked.event_id)
            return
        try:
            enqueue(turn.id, response_url)
        except Exception:
            chat().forget(turn.id)  # Slack's retry of this delivery will record it again
            raise
        log.info("slack question %s queued (channel %s)", turn.id, asked.channel)

    def asked_in(body: dict[str, Any], event: dict[str, Any], text: str) -> Asked:
        return Asked(
            platform=PLATFORM,
            team=body.get("team_id") or event.get("team") or "",
            channel=event["channel"],
            user=event.get("user", ""),
            question=text,
            thread=event.get("thread_ts") or event["ts"],
            event_id=body.get("event_id"),
            direct=event.get("channel_type") == "im",
        )

    @app.event("app_mention")
    def mention(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        question = strip_mention(event.get("text", ""), context.bot_user_id)
        if not question:
            thread = event.get("thread_ts") or event["ts"]
            context.client.chat_postMessage(channel=event["channel"], thread_ts=thread, text=USAGE)
            return
        ask(asked_in(body, event, question))

    @app.event("message")
    def message(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        """Direct messages, and follow-ups in a thread the bot answered in (no mention
        needed). A message that mentions the bot is its app_mention's to answer."""
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return  # edits, joins, other bots
        text = event.get("text", "")
        direct = event.get("channel_type") == "im"
        if not direct:
            thread = event.get("thread_ts")
            mentioned = f"<@{context.bot_user_id}" in text
            if (
                mentioned
                or not thread
                or not chat().knows_thread(PLATFORM, event["channel"], thread)
            ):
                return
        if question := strip_mention(text, context.bot_user_id):
            ask(asked_in(body, event, question))

    @app.command(settings.slack.command)
    def command(ack: Ack, command: dict[str, Any]) -> None:
        question = command.get("text", "").strip()
        if not question:
            ack(response_type="ephemeral", text=USAGE)
            return
        asked = Asked(
            platform=PLATFORM,
            team=command.get("team_id", ""),
            channel=command["channel_id"],
            user=command["user_id"],
            question=question,
            thread=None,
            direct=command.get("channel_name") == "directmessage",
        )
        ask(asked, command.get("response_url"))
        ack(response_type="ephemeral", text=f"Working on it: _{question}_")

    @app.action(re.compile("^feedback_(up|down)$"))
    def feedback(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        user, channel = body["user"]["id"], body["channel"]["id"]
        value = FEEDBACK[action["action_id"]]
        try:
            chat().feedback(action["value"], user, value)
        except NotFoundError:
            log.warning("feedback on an unknown answer %r", action["value"])
            return
        thanks = "Thanks, noted 👍" if value > 0 else "Thanks, noted 👎: it helps us improve."
        client.chat_postEphemeral(channel=channel, user=user, text=thanks)

    return app
