"""The model scoreboard: measured quality per catalog model, for `prefer: "measured"` routing.

Two kinds of evidence, kept as running sums in `model_scores` (one row per catalog name and
pinned version, so a re-pinned model starts a new row):

- eval: `rag eval answers --record` adds each run's figures weighted by its questions: F1 (on
  answerable questions), citation precision, abstention on unanswerable questions, latency and
  cost. A run's quality is the mean of those three rates weighted by how many questions each
  measured, counted as `questions` observations in [0, 1].
- feedback: +1/-1 on API answers (POST /v1/feedback) and Slack's 👍/👎 (`Chat.feedback`), each one
  observation of 1 or 0. A rater's later rating replaces the earlier one, so the counts move
  (never double count).

`Score.quality` pools both: (Σ eval quality + 👍) / (eval questions + ratings); its bounds are
the Wilson score interval at 95% on that pooled rate (fractional successes are fine for Wilson;
quality in [0, 1] has at most a Bernoulli's variance, so the interval is if anything wide).
The router orders by the upper bound: a model with few observations has a wide interval and is
tried a little (upper confidence bound exploration) until its evidence narrows it.

Answers are recorded with one insert when the API returns them: id, who received it, model,
collection, time; the question only with `auth.audit_questions`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Update, select, update
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from rag import metrics
from rag.db.session import Database
from rag.db.tables import AnswerFeedbackRow, AnswerRow, Base, ModelScoreRow, new_id, utcnow
from rag.errors import InvalidInput, NotFoundError
from rag.models import RouteScore

if TYPE_CHECKING:
    from rag.auth import Principal

log = logging.getLogger(__name__)
Z = 1.96  # 95%
Source = Literal["eval", "feedback", "eval+feedback", "none"]


def wilson(successes: float, n: float, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of a rate: sensible at small n and at 0 or 1 (unlike mean ±
    z·se, which collapses to a point there)."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(successes / n, 0.0), 1.0)
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rater(principal: Principal) -> str:
    """Who received an answer and so may rate it: the key (its name when auth is off)."""
    return principal.key_id or f"name:{principal.name}"


class Score(BaseModel):
    """A model's measured quality and what it rests on."""

    quality: float | None = Field(description="Pooled estimate in [0, 1]; None when unscored.")
    n: int = Field(description="Eval questions plus ratings.")
    lower: float | None = Field(description="Wilson 95% lower bound.")
    upper: float | None = Field(description="Wilson 95% upper bound.")
    eval_n: int = 0
    eval_runs: int = 0
    f1: float | None = None
    citation_precision: float | None = None
    abstention: float | None = None
    feedback_up: int = 0
    feedback_down: int = 0
    latency_ms: float | None = Field(default=None, description="Mean per eval question.")
    cost_usd: float | None = Field(default=None, description="Mean per eval question.")
    sources: list[Literal["eval", "feedback"]] = Field(default_factory=list)

    @property
    def source(self) -> Source:
        return "+".join(self.sources) or "none"  # type: ignore[return-value]

    def route_score(self) -> RouteScore:
        return RouteScore(quality=self.quality, n=self.n, source=self.source)


UNSCORED = Score(quality=None, n=0, lower=None, upper=None)


class EvalFigures(BaseModel):
    """One `rag eval answers` run of one model: its rates, each with the questions it measured."""

    model: str = Field(description="Catalog name.")
    version: str = Field(default="", description="The pinned id that answered.")
    questions: int = Field(ge=1)
    f1: float | None = None
    f1_n: int = 0
    citation_precision: float | None = None
    citation_precision_n: int = 0
    abstention: float | None = None
    abstention_n: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0

    @property
    def quality(self) -> float | None:
        parts = [
            (value, n)
            for value, n in (
                (self.f1, self.f1_n),
                (self.citation_precision, self.citation_precision_n),
                (self.abstention, self.abstention_n),
            )
            if value is not None and n > 0
        ]
        total = sum(n for _, n in parts)
        return sum(v * n for v, n in parts) / total if total else None


class Scoreboard:
    def __init__(
        self, db: Database, *, ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self.db = db
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Score]] | None = None

    # Reading ------------------------------------------------------------------------------

    def scores(self) -> dict[str, Score]:
        """Per catalog name, pooled over its versions; cached for `ttl_s` (writes through this
        scoreboard invalidate it at once; another process's writes show within `ttl_s`)."""
        with self._lock:
            cached = self._cached
        if cached is not None and self._clock() - cached[0] < self._ttl_s:
            return cached[1]
        with self.db.session() as session:
            rows = list(session.scalars(select(ModelScoreRow)))
            found = _pool(rows)
        for name, score in found.items():
            metrics.set_model_score(name, score.n, score.quality, score.lower, score.upper)
        with self._lock:
            self._cached = (self._clock(), found)
        return found

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    # Eval ---------------------------------------------------------------------------------

    def record_eval(self, figures: EvalFigures) -> None:
        quality = figures.quality
        if quality is None:
            raise InvalidInput(f"the eval run of {figures.model!r} measured no quality rate")
        n = figures.questions
        with self.db.session() as session:
            self._ensure(session, figures.model, figures.version)
            c = ModelScoreRow
            session.execute(
                _row(figures.model, figures.version).values(
                    eval_runs=c.eval_runs + 1,
                    eval_n=c.eval_n + n,
                    eval_quality=c.eval_quality + quality * n,
                    eval_f1=c.eval_f1 + (figures.f1 or 0.0) * figures.f1_n,
                    eval_f1_n=c.eval_f1_n + figures.f1_n,
                    eval_citation_precision=c.eval_citation_precision
                    + (figures.citation_precision or 0.0) * figures.citation_precision_n,
                    eval_citation_precision_n=c.eval_citation_precision_n
                    + figures.citation_precision_n,
                    eval_abstention=c.eval_abstention
                    + (figures.abstention or 0.0) * figures.abstention_n,
                    eval_abstention_n=c.eval_abstention_n + figures.abstention_n,
                    eval_latency_ms=c.eval_latency_ms + figures.latency_ms * n,
                    eval_cost_usd=c.eval_cost_usd + figures.cost_usd * n,
                    updated_at=utcnow(),
                )
            )
        self.invalidate()

    # Answers and feedback -----------------------------------------------------------------

    def record_answer(
        self,
        *,
        owner: str,
        key_name: str | None,
        model: str | None,
        version: str | None,
        collection: str | None,
        question: str | None = None,
    ) -> str:
        """One insert; the answer's id for POST /v1/feedback."""
        row = AnswerRow(
            id=new_id(),
            owner=owner[:128],
            key_name=key_name[:128] if key_name else None,
            model=model,
            version=version[:200] if version else None,
            collection=collection[:64] if collection else None,
            question=question,
            at=utcnow(),
        )
        with self.db.session() as session:
            session.add(row)
        return row.id

    def rate(self, answer_id: str, rater: str, value: int, comment: str | None = None) -> None:
        """A rating of an answer `rater` received; its later rating replaces the earlier one.
        Another's answer is unknown (`NotFoundError`), as is a made-up id."""
        if value not in (1, -1):
            raise InvalidInput(f"a rating is 1 or -1, not {value!r}")
        with self.db.session() as session:
            answer = session.get(AnswerRow, answer_id, with_for_update=True)
            if answer is None or answer.owner != rater:
                raise NotFoundError(
                    f"no answer {answer_id!r} to rate: use the answer_id of an answer this key "
                    "received from POST /v1/query"
                )
            old = session.scalar(
                select(AnswerFeedbackRow.value).where(
                    AnswerFeedbackRow.answer_id == answer_id, AnswerFeedbackRow.rater == rater
                )
            )
            at = utcnow()
            statement = _insert(session)(AnswerFeedbackRow).values(
                answer_id=answer_id, rater=rater, value=value, comment=comment, at=at
            )
            session.execute(
                statement.on_conflict_do_update(
                    index_elements=["answer_id", "rater"],
                    set_={"value": value, "comment": comment, "at": at},
                )
            )
            if answer.model:
                self.adjust_feedback(session, answer.model, answer.version, old, value)
        self.invalidate()

    def adjust_feedback(
        self, session: Session, model: str, version: str | None, old: int | None, new: int
    ) -> None:
        """Move the counts from a rater's `old` rating (None: first) to `new`, in the caller's
        transaction (the one that stored the rating)."""
        if old == new:
            return
        up = (new > 0) - (old is not None and old > 0)
        down = (new < 0) - (old is not None and old < 0)
        version = version or ""
        self._ensure(session, model, version)
        c = ModelScoreRow
        session.execute(
            _row(model, version).values(
                feedback_up=c.feedback_up + up,
                feedback_down=c.feedback_down + down,
                updated_at=utcnow(),
            )
        )
        self.invalidate()

    @staticmethod
    def _ensure(session: Session, model: str, version: str) -> None:
        statement = _insert(session)(ModelScoreRow).values(model=model, version=version)
        session.execute(statement.on_conflict_do_nothing(index_elements=["model", "version"]))


def _insert(session: Session) -> Callable[[type[Base]], PgInsert | SqliteInsert]:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _row(model: str, version: str) -> Update:
    return update(ModelScoreRow).where(
        ModelScoreRow.model == model, ModelScoreRow.version == version
    )


def _pool(rows: list[ModelScoreRow]) -> dict[str, Score]:
    by_model: dict[str, list[ModelScoreRow]] = {}
    for row in rows:
        by_model.setdefault(row.model, []).append(row)
    found: dict[str, Score] = {}
    for name, parts in by_model.items():
        eval_n = sum(r.eval_n for r in parts)
        up = sum(r.feedback_up for r in parts)
        down = sum(r.feedback_down for r in parts)
        n = eval_n + up + down
        if n == 0:
            continue
        successes = sum(r.eval_quality for r in parts) + up
        lower, upper = wilson(successes, n)
        sources: list[Literal["eval", "feedback"]] = []
        if eval_n:
            sources.append("eval")
        if up + down:
            sources.append("feedback")

        def mean(total: float, count: int) -> float | None:
            return total / count if count else None

        found[name] = Score(
            quality=successes / n,
            n=n,
            lower=lower,
            upper=upper,
            eval_n=eval_n,
            eval_runs=sum(r.eval_runs for r in parts),
            f1=mean(sum(r.eval_f1 for r in parts), sum(r.eval_f1_n for r in parts)),
            citation_precision=mean(
                sum(r.eval_citation_precision for r in parts),
                sum(r.eval_citation_precision_n for r in parts),
            ),
            abstention=mean(
                sum(r.eval_abstention for r in parts), sum(r.eval_abstention_n for r in parts)
            ),
            feedback_up=up,
            feedback_down=down,
            latency_ms=mean(sum(r.eval_latency_ms for r in parts), eval_n),
            cost_usd=mean(sum(r.eval_cost_usd for r in parts), eval_n),
            sources=sources,
        )
    return found
