"""The chat bot's pure parts: condensing a follow-up, Slack's message limits, error wording."""

from __future__ import annotations

import pytest

from rag.chat import condense
from rag.errors import AllModelsFailed, BackendUnavailable, ConfigError, InvalidInput, NotFoundError
from rag.models import Answer, Citation, Route, Timings
from slackbot.app import slack_secrets
from slackbot.blocks import MAX_BLOCKS, SECTION_CHARS, answer_messages, split_text, strip_mention
from slackbot.delivery import user_message
from tests.conftest import make_settings

FIRST = "What language is the fleet controller written in?"


@pytest.mark.parametrize(
    ("follow_up", "expected"),
    [
        ("How often does it reconcile?", f"{FIRST} How often does it reconcile?"),
        ("and on Windows", f"{FIRST} and on Windows"),
        # Long and self-contained: a change of subject is not dragged back.
        (
            "When are the nightly database backups taken and for how many days are copies kept?",
            "When are the nightly database backups taken and for how many days are copies kept?",
        ),
    ],
)
def test_condense(follow_up: str, expected: str) -> None:
    assert condense(follow_up, [FIRST]) == expected
    assert condense(follow_up, []) == follow_up


def test_condense_keeps_order_and_drops_the_oldest_over_the_limit() -> None:
    assert condense("Why?", ["first question", "second"]) == "first question? second? Why?"
    long = ["x" * 700, "y" * 300]
    assert condense("why is that", long) == f"{'y' * 300}? why is that"


def test_split_text_stays_within_the_limit_and_cuts_at_sentences() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(400))
    pieces = split_text(text, 500)
    assert all(len(p) <= 500 for p in pieces)
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == text
    assert split_text("x" * 1200, 500) == ["x" * 500, "x" * 500, "x" * 200]
    assert split_text("", 500) == []


def _answer(text: str, citations: int = 2, **extra: object) -> Answer:
    cites = [
        Citation(
            marker=i,
            chunk_id=f"c{i}",
            document_id=f"d{i}",
            source="https://wiki.example.com/a|b" if i == 1 else f"doc{i}.pdf",
            title=f"Doc <{i}>",
            section="Setup" if i == 1 else None,
            page=None if i == 1 else 3,
            snippet="...",
            score=0.5,
        )
        for i in range(1, citations + 1)
    ]
    return Answer(
        question="q",
        answer=text,
        answerable=True,
        citations=cites,
        model="local",
        timings=Timings(retrieval_ms=10, total_ms=1500),
        **extra,  # type: ignore[arg-type]
    )


def test_an_answer_is_blocks_with_sources_model_and_feedback() -> None:
    (message,) = answer_messages(_answer("Rust & C <fast> [1]."), "turn-1")
    blocks = message["blocks"]
    assert blocks[0]["text"]["text"] == "Rust &amp; C &lt;fast&gt; [1]."
    sources = blocks[1]["text"]["text"]
    assert "`[1]` <https://wiki.example.com/a%7Cb|Doc &lt;1&gt;> · Setup" in sources
    assert "`[2]` Doc &lt;2&gt; · p. 3" in sources
    assert "Answered by `local`" in blocks[2]["elements"][0]["text"]
    actions = blocks[3]["elements"]
    assert [(a["action_id"], a["value"]) for a in actions] == [
        ("feedback_up", "turn-1"),
        ("feedback_down", "turn-1"),
    ]
    assert message["text"] == "Rust & C <fast> [1]."


def test_a_long_answer_is_split_within_slacks_limits() -> None:
    text = "A fact about the fleet. " * 9000  # 216,000 characters
    messages = answer_messages(_answer(text, citations=3), "t", header="<@U1> asked: _q_")
    assert len(messages) > 1
    for message in messages:
        assert len(message["blocks"]) <= MAX_BLOCKS
        for block in message["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= SECTION_CHARS
        assert len(message["text"]) <= 40_000
    assert messages[0]["blocks"][0]["text"]["text"] == "<@U1> asked: _q_"
    assert messages[-1]["blocks"][-1]["type"] == "actions"  # feedback under the whole answer


def test_not_found_and_fallbacks_are_said() -> None:
    route = Route(
        model="local",
        reason="r",
        policy="p",
        fallbacks=[
            {
                "model": "gpt",
                "error": "backend_timeout",
                "message": "m",
                "retryable": True,
                "sent": True,
            }
        ],  # fmt: skip
    )
    (message,) = answer_messages(_answer("x", route=route), "t")
    assert "after `gpt` (backend_timeout)" in message["blocks"][-2]["elements"][0]["text"]
    nothing = Answer(
        question="q",
        answer="The documents do not answer this question.",
        answerable=False,
        citations=[],
        model=None,
        reason="no passage is relevant enough to the question",
        timings=Timings(retrieval_ms=1, total_ms=1),
    )
    (message,) = answer_messages(nothing, "t")
    assert message["blocks"][0]["text"]["text"].startswith("I couldn't find an answer")
    assert "No model was asked: no passage is relevant" in str(message["blocks"][1])


def test_strip_mention_removes_only_the_bot() -> None:
    assert strip_mention("<@UBOT> what did <@U2> say?", "UBOT") == "what did <@U2> say?"
    assert strip_mention("<@UBOT|ragbot>   hi", "UBOT") == "hi"


def test_errors_become_short_messages() -> None:
    down = AllModelsFailed("all failed", attempts=[("gpt", "backend_unavailable")])
    assert user_message(down, "abc").startswith("I couldn't reach the model")
    store = BackendUnavailable("qdrant down", backend="qdrant")
    assert user_message(store, "abc").startswith("I couldn't reach the document index")
    assert "no collection" in user_message(NotFoundError("no collection 'x'"), "abc")
    assert user_message(InvalidInput("too long"), "abc") == "I can't answer that: too long"
    assert "reference 12345678" in user_message(KeyError("x"), "123456789")


def test_slack_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert slack_secrets(make_settings(tmp_path)) is None  # off unless configured
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET, SLACK_BOT_TOKEN"):
        slack_secrets(make_settings(tmp_path, slack={"enabled": True}))
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-chat-unit-test-token")
    secrets = slack_secrets(make_settings(tmp_path))
    assert secrets is not None and secrets.bot_token == "xoxb-chat-unit-test-token"
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        slack_secrets(make_settings(tmp_path, slack={"socket_mode": True}))
