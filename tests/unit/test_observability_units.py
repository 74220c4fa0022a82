"""The parts of observability that need no service: what an answer adds to the metrics, the
breaker gauge following its breaker, the JSON log line with its ids and the request id echoed."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

from prometheus_client import REGISTRY
from starlette.types import Message, Receive, Scope, Send

from api.observe import Observe
from rag import metrics
from rag.generation.breaker import CircuitBreaker
from rag.logs import ContextFilter, JsonFormatter, Redactor, log_context
from rag.models import Answer, Attempt, Route, Timings


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _answer(model: str | None, *, fallbacks: list[Attempt], answerable: bool = True) -> Answer:
    route = (
        Route(model=model, reason="r", policy="p", fallbacks=fallbacks, cost_usd=0.25)
        if model
        else None
    )
    return Answer(
        question="q",
        answer="a",
        answerable=answerable,
        citations=[],
        model=model,
        usage={"prompt_tokens": 100, "completion_tokens": 7},
        timings=Timings(retrieval_ms=5.0, generation_ms=1500.0, total_ms=1510.0),
        route=route,
    )


def test_an_answer_after_a_fallback_counts_by_model_and_reason() -> None:
    down = Attempt(
        model="gpt", error="backend_unavailable", message="down", retryable=True, sent=True
    )
    labels = {"model": "local", "fallback_reason": "backend_unavailable"}
    before = sample("rag_answers_total", **labels)
    tokens = sample("rag_generation_tokens_total", model="local", kind="completion")
    cost = sample("rag_generation_cost_usd_total", model="local")
    metrics.observe_answer(_answer("local", fallbacks=[down]))
    assert sample("rag_answers_total", **labels) == before + 1
    assert sample("rag_generation_tokens_total", model="local", kind="completion") == tokens + 7
    assert sample("rag_generation_cost_usd_total", model="local") == cost + 0.25


def test_abstentions_by_reason() -> None:
    none = sample("rag_abstentions_total", reason="no_relevant_passages")
    unsupported = sample("rag_abstentions_total", reason="not_supported")
    metrics.observe_answer(_answer(None, fallbacks=[], answerable=False))
    metrics.observe_answer(_answer("local", fallbacks=[], answerable=False))
    assert sample("rag_abstentions_total", reason="no_relevant_passages") == none + 1
    assert sample("rag_abstentions_total", reason="not_supported") == unsupported + 1


def test_the_breaker_gauge_follows_the_breaker() -> None:
    now = [0.0]
    breaker = CircuitBreaker(
        failures=2,
        cooldown_s=10,
        clock=lambda: now[0],
        on_change=lambda state: metrics.set_breaker("unit-model", state),
    )
    state = lambda: sample("rag_circuit_breaker_state", backend="unit-model")  # noqa: E731
    assert state() == 0
    breaker.failure()
    breaker.failure()
    assert state() == 2
    now[0] = 11
    assert breaker.acquire() is None and state() == 1
    breaker.success()
    assert state() == 0


def test_json_lines_carry_the_ids_and_no_secrets() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    handler.addFilter(Redactor())
    logger = logging.getLogger("test.jsonlog")
    logger.addHandler(handler)
    try:
        with log_context(request_id="req-1"), log_context(job_id="job-9"):
            logger.warning("used %s", "sk-proj-abcdefghijklmnopqrstuvwx")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["request_id"] == "req-1" and inside["job_id"] == "job-9"
    assert inside["level"] == "WARNING" and inside["logger"] == "test.jsonlog"
    assert "abcdefghijkl" not in inside["message"]
    assert "request_id" not in outside


def test_a_request_id_ending_with_a_newline_is_replaced() -> None:
    """`$` matches before a final newline: such an id would be echoed into a response header."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})

    def echoed(request_id: bytes) -> bytes:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        scope = {"type": "http", "method": "GET", "headers": [(b"x-request-id", request_id)]}
        asyncio.run(Observe(app)(scope, receive, send))
        return bytes(dict(sent[0]["headers"])[b"x-request-id"])

    assert echoed(b"q-42") == b"q-42"
    assert re.fullmatch(rb"[0-9a-f]{32}", echoed(b"q-42\n"))
