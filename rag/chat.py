"""Conversations in a team chat: questions asked in threads, answered from the documents with
the thread's earlier questions as context, and the feedback given on each answer.

Platform neutral: `slackbot` turns Slack's events into `Asked` and an `Answer` into messages.
Which collections a channel searches, the routing policy it uses and whose documents it may
quote come from `SlackSettings` (per channel, with defaults).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from rag.access import principal_tokens
from rag.answering import Answerer
from rag.audit import AuditLog
from rag.config import SlackSettings
from rag.db.session import Database
from rag.db.tables import ChatFeedbackRow, ChatTurnRow, utcnow
from rag.errors import NotFoundError
from rag.generation.router import RouteRequest
from rag.models import Answer
from rag.scoreboard import Scoreboard

MAX_CONDENSED_CHARS = 1000
_WORD = re.compile(r"[a-z']+")
# A follow-up with one of these leans on the thread ("how long does *it* take?").
_REFERRING = frozenset(
    ("it", "its", "they", "them", "their", "this", "that", "these", "those", "he", "him", "his",
     "she", "her", "there", "such", "same", "also", "else", "more", "other", "another")
)  # fmt: skip
_SHORT = 6  # words: a follow-up this short is read with the thread as well


@dataclass(frozen=True)
class Asked:
    """A question as the chat platform delivered it."""

    platform: str
    team: str
    channel: str
    user: str
    question: str
    thread: str | None  # the thread's root message; None: the bot starts one (slash command)
    event_id: str | None = None  # the platform's delivery id: a retry carries the same one
    direct: bool = False  # a direct message: only the asker reads the answer


class ChatTurn(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    platform: str
    team: str
    channel: str
    thread: str | None
    user: str
    direct: bool
    question: str
    standalone: str | None
    status: str
    reply: str | None
    answer: str | None
    model: str | None
    error: str | None
    created_at: datetime


@dataclass(frozen=True)
class Reach:
    """What answering in one place may use."""

    collections: list[str]
    route: RouteRequest | None
    access: list[str]


def condense(question: str, earlier: Sequence[str]) -> str:
    """A follow-up made standalone for retrieval and the model: when it is short or refers
    back, the thread's earlier questions (oldest first) are asked with it, as one would
    restate them. A self-contained follow-up is left alone, so a change of subject is not
    dragged back to the old one."""
    words = _WORD.findall(question.lower())
    if not earlier or (len(words) > _SHORT and not _REFERRING.intersection(words)):
        return question
    parts = [_sentence(q) for q in earlier] + [question.strip()]
    while len(parts) > 1 and len(" ".join(parts)) > MAX_CONDENSED_CHARS:
        parts.pop(0)
    return " ".join(parts)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith(("?", ".", "!")) else text + "?"


class Chat:
    def __init__(
        self,
        db: Database,
        answerer: Answerer,
        settings: SlackSettings,
        *,
        user_groups: Mapping[str, Sequence[str]],
        audit: AuditLog | None = None,
        scoreboard: Scoreboard | None = None,
    ):
        self.scoreboard = scoreboard
        self.db = db
        self.answerer = answerer
        self.settings = settings
        self.user_groups = user_groups
        self.audit = audit

    def ask(self, asked: Asked) -> ChatTurn | None:
        """Record a question; None when this delivery was seen before (a platform retry)."""
        row = ChatTurnRow(
            event_id=asked.event_id,
            platform=asked.platform,
            team=asked.team,
            channel=asked.channel,
            thread=asked.thread,
            user=asked.user,
            direct=asked.direct,
            question=asked.question,
            status="pending",
            citations=[],
        )
        try:
            with self.db.session() as session:
                session.add(row)
        except IntegrityError:
            return None
        return ChatTurn.model_validate(row)

    def forget(self, turn_id: str) -> None:
        """Drop a question that could not be queued, so a retried delivery is not a duplicate."""
        with self.db.session() as session:
            session.execute(delete(ChatTurnRow).where(ChatTurnRow.id == turn_id))

    def get(self, turn_id: str) -> ChatTurn:
        with self.db.session() as session:
            row = session.get(ChatTurnRow, turn_id)
            if row is None:
                raise NotFoundError(f"no chat turn {turn_id!r}")
            return ChatTurn.model_validate(row)

    def knows_thread(self, platform: str, channel: str, thread: str) -> bool:
        """Whether the bot has answered in this thread (its follow-ups need no mention)."""
        with self.db.session() as session:
            return (
                session.scalar(
                    select(ChatTurnRow.id)
                    .where(ChatTurnRow.platform == platform, ChatTurnRow.channel == channel)
                    .where(ChatTurnRow.thread == thread)
                    .limit(1)
                )
                is not None
            )

    def earlier_questions(self, turn: ChatTurn) -> list[str]:
        """The thread's previous questions, oldest first, at most `history_turns`."""
        if turn.thread is None or self.settings.history_turns == 0:
            return []
        with self.db.session() as session:
            rows = session.scalars(
                select(ChatTurnRow.question)
                .where(ChatTurnRow.platform == turn.platform, ChatTurnRow.channel == turn.channel)
                .where(ChatTurnRow.thread == turn.thread, ChatTurnRow.created_at < turn.created_at)
                .where(ChatTurnRow.id != turn.id)
                .order_by(ChatTurnRow.created_at.desc())
                .limit(self.settings.history_turns)
            ).all()
        return list(reversed(rows))

    def reach(self, turn: ChatTurn) -> Reach:
        """A channel's answers are read by all its members: only documents for everyone and
        for the channel's configured groups. A direct message may also use the asker's own."""
        channel = self.settings.channels.get(turn.channel)
        collections = (channel and channel.collections) or self.settings.collections
        model = channel.model if channel else None
        policy = (channel.policy if channel else None) or self.settings.policy
        groups = list(channel.groups) if channel else []
        user = None
        if turn.direct:
            groups += self.user_groups.get(turn.user, [])
            user = turn.user
        route = RouteRequest(model=model, policy=None if model else policy)
        return Reach(
            collections=list(collections),
            route=route if (model or policy) else None,
            access=principal_tokens(sorted(set(groups)), user),
        )

    def answer(self, turn: ChatTurn) -> Answer:
        """Answer a recorded question with its thread as context, and record the answer."""
        standalone = condense(turn.question, self.earlier_questions(turn))
        reach = self.reach(turn)
        with self.db.session() as session:
            session.execute(
                update(ChatTurnRow).where(ChatTurnRow.id == turn.id).values(standalone=standalone)
            )
        answer = self.answerer.answer(
            reach.collections, standalone, route=reach.route, access=reach.access
        )
        with self.db.session() as session:
            session.execute(
                update(ChatTurnRow)
                .where(ChatTurnRow.id == turn.id)
                .values(
                    status="answered",
                    answer=answer.answer,
                    answerable=answer.answerable,
                    citations=[c.model_dump(mode="json") for c in answer.citations],
                    model=answer.model,
                    route_model=answer.route.model if answer.route else None,
                    error=None,
                    answered_at=utcnow(),
                )
            )
        if self.audit is not None:
            self.audit.record(
                "query",
                key_name=turn.platform,
                user=f"{turn.platform}:{turn.user}",
                collection=",".join(reach.collections)[:64],
                target=turn.id,
                document_ids=list(dict.fromkeys(c.document_id for c in answer.citations)),
            )
        return answer

    def replied(self, turn_id: str, reply: str, *, thread: str | None = None) -> None:
        """The bot's message for this turn (and the thread it started, for a slash command)."""
        values: dict[str, str] = {"reply": reply}
        if thread is not None:
            values["thread"] = thread
        with self.db.session() as session:
            session.execute(update(ChatTurnRow).where(ChatTurnRow.id == turn_id).values(**values))

    def failed(self, turn_id: str, error: str) -> None:
        with self.db.session() as session:
            session.execute(
                update(ChatTurnRow)
                .where(ChatTurnRow.id == turn_id)
                .values(status="failed", error=error, answered_at=utcnow())
            )

    def feedback(self, turn_id: str, user: str, value: int) -> None:
        """Record 👍 (+1) or 👎 (-1); a user's later click replaces their earlier one. Both
        count in the scoreboard for the model that answered the turn."""
        self.get(turn_id)  # an unknown turn is NotFoundError, not a foreign-key error
        values = {"turn_id": turn_id, "user": user, "value": value, "at": utcnow()}
        with self.db.session() as session:
            old = session.scalar(
                select(ChatFeedbackRow.value).where(
                    ChatFeedbackRow.turn_id == turn_id, ChatFeedbackRow.user == user
                )
            )
            turn = session.execute(
                select(ChatTurnRow.route_model, ChatTurnRow.model).where(ChatTurnRow.id == turn_id)
            ).one()
            if self.scoreboard is not None and turn.route_model:
                self.scoreboard.adjust_feedback(session, turn.route_model, turn.model, old, value)
            insert = pg_insert if self.db.engine.dialect.name == "postgresql" else sqlite_insert
            statement = insert(ChatFeedbackRow).values(**values)
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["turn_id", "user"],
                    set_={"value": value, "at": values["at"]},
                )
            )
        if self.scoreboard is not None:
            self.scoreboard.invalidate()  # committed now: the next routing sees it
