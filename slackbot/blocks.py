"""An answer as Slack Block Kit messages: the answer, its numbered sources, the model that
answered and 👍/👎 buttons, split to stay within Slack's limits (3,000 characters of text per
section block, 50 blocks per message)."""

from __future__ import annotations

import re
from typing import Any

from rag.models import Answer, Citation

SECTION_CHARS = 3000
MAX_BLOCKS = 50
FALLBACK_CHARS = 3000  # the notification text; Slack cuts a message's text at 40,000
FEEDBACK = {"feedback_up": 1, "feedback_down": -1}
NOT_FOUND = "I couldn't find an answer to this in the documents."

Block = dict[str, Any]
Message = dict[str, Any]  # chat.postMessage / chat.update arguments: text and blocks


def escape(text: str) -> str:
    """Slack's mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def split_text(text: str, limit: int = SECTION_CHARS) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, line, sentence or word end
    when there is one in the second half of the piece."""
    pieces = []
    while len(text) > limit:
        window = text[:limit]
        cut = next(
            (
                window.rfind(sep) + len(sep)
                for sep in ("\n\n", "\n", ". ", "? ", "! ", " ")
                if window.rfind(sep) >= limit // 2
            ),
            limit,
        )
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text] if text else pieces


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def notice(text: str) -> Message:
    """A short message of the bot's own (working on it, an error)."""
    return {"text": text, "blocks": [section(escape(text))]}


def source_line(citation: Citation) -> str:
    title = escape(citation.title or citation.source)
    if citation.source.startswith(("https://", "http://")):
        title = f"<{citation.source.replace('|', '%7C')}|{title}>"
    where = [escape(citation.section)] if citation.section else []
    if citation.page is not None:
        where.append(f"p. {citation.page}")
    return " · ".join([f"`[{citation.marker}]` {title}", *where])


def _footer(answer: Answer) -> str:
    if answer.model is None:
        return f"No model was asked: {escape(answer.reason or 'nothing relevant was found')}."
    parts = [f"Answered by `{escape(answer.model)}`"]
    if answer.route is not None and answer.route.fallbacks:
        tried = ", ".join(
            f"`{escape(a.model)}` ({escape(a.error)})" for a in answer.route.fallbacks
        )
        parts.append(f"after {tried}")
    parts.append(f"{answer.timings.total_ms / 1000:.1f} s")
    return " · ".join(parts)


def _feedback(turn_id: str) -> Block:
    buttons = [("feedback_up", "👍 Helpful"), ("feedback_down", "👎 Not helpful")]
    return {
        "type": "actions",
        "block_id": "feedback",
        "elements": [
            {
                "type": "button",
                "action_id": action,
                "text": {"type": "plain_text", "text": label, "emoji": True},
                "value": turn_id,
            }
            for action, label in buttons
        ],
    }


def answer_messages(answer: Answer, turn_id: str, *, header: str | None = None) -> list[Message]:
    """The messages that show `answer`: usually one; more when it is over 50 blocks long."""
    blocks: list[Block] = [section(header)] if header else []
    body = escape(answer.answer) if answer.answerable else NOT_FOUND
    blocks += [section(piece) for piece in split_text(body)]
    if answer.citations:
        lines = "\n".join(source_line(c) for c in answer.citations)
        blocks += [section(piece) for piece in split_text(f"*Sources*\n{lines}")]
    blocks += [context(_footer(answer)), _feedback(turn_id)]
    fallback = answer.answer if answer.answerable else NOT_FOUND
    pages = [blocks[i : i + MAX_BLOCKS] for i in range(0, len(blocks), MAX_BLOCKS)]
    return [
        {"text": fallback[:FALLBACK_CHARS] if i == 0 else "(continued)", "blocks": page}
        for i, page in enumerate(pages)
    ]


def strip_mention(text: str, user_id: str | None) -> str:
    """The question without the bot's `<@U…>` mention."""
    if user_id:
        text = re.sub(rf"<@{re.escape(user_id)}(?:\|[^>]*)?>", " ", text)
    return " ".join(text.split())
