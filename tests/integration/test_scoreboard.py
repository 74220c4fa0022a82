"""The model scoreboard on real databases: its arithmetic, migration 0007 both ways, and the
router's `prefer: measured` order moving with eval records and feedback."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from rag.db.session import MIGRATIONS, Database, open_database
from rag.errors import InvalidInput, NotFoundError
from rag.generation.model_catalog import parse_catalog
from rag.generation.router import Router, RouteRequest
from rag.scoreboard import EvalFigures, Scoreboard, wilson
from tests.generation.conftest import PROMPT
from tests.integration.test_migrations import empty_database

__all__ = ["empty_database"]


@pytest.fixture
def board(tmp_path: Path) -> Scoreboard:
    return Scoreboard(open_database(f"sqlite:///{tmp_path / 'rag.db'}"), ttl_s=0)


def _figures(model: str, quality: float, n: int) -> EvalFigures:
    return EvalFigures(model=model, version=f"{model}-v1", questions=n, f1=quality, f1_n=n)


def test_wilson_bounds() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    lower, upper = wilson(8, 10)
    assert lower == pytest.approx(0.4902, abs=1e-3) and upper == pytest.approx(0.9433, abs=1e-3)
    narrow = wilson(80, 100)
    assert lower < narrow[0] < 0.8 < narrow[1] < upper
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 10)[0] == 0.0


def test_eval_runs_and_feedback_pool_into_one_score(board: Scoreboard) -> None:
    assert board.scores() == {}
    board.record_eval(
        EvalFigures(
            model="a",
            version="a-v1",
            questions=10,
            f1=0.6,
            f1_n=8,
            abstention=1.0,
            abstention_n=2,
            latency_ms=100,
            cost_usd=0.001,
        )  # fmt: skip
    )
    board.record_eval(_figures("a", 0.5, 10))
    score = board.scores()["a"]
    # Run 1: quality (0.6·8 + 1·2)/10 = 0.68; run 2: 0.5. Pooled over 20 questions: 0.59.
    assert score.quality == pytest.approx(0.59) and score.n == 20 and score.eval_runs == 2
    assert score.f1 == pytest.approx((0.6 * 8 + 0.5 * 10) / 18)
    assert score.abstention == 1.0 and score.latency_ms == pytest.approx(50)
    assert (score.lower, score.upper) == pytest.approx(wilson(11.8, 20))
    assert score.sources == ["eval"] and score.source == "eval"

    answer = board.record_answer(owner="k1", key_name="k", model="a", version="a-v1",
                                 collection="c")  # fmt: skip
    board.rate(answer, "k1", 1)
    board.rate(answer, "k1", 1)  # the same rating again: nothing moves
    assert (board.scores()["a"].feedback_up, board.scores()["a"].feedback_down) == (1, 0)
    board.rate(answer, "k1", -1, "wrong year")  # replaces the earlier one
    score = board.scores()["a"]
    assert (score.feedback_up, score.feedback_down) == (0, 1)
    assert score.n == 21 and score.quality == pytest.approx(11.8 / 21)
    assert score.source == "eval+feedback" and score.route_score().n == 21

    with pytest.raises(NotFoundError, match="no answer"):
        board.rate(answer, "someone-else", 1)
    with pytest.raises(NotFoundError):
        board.rate("nope", "k1", 1)
    with pytest.raises(InvalidInput):
        board.rate(answer, "k1", 3)


def test_scores_are_cached_until_a_write(tmp_path: Path) -> None:
    now = [0.0]
    board = Scoreboard(open_database(f"sqlite:///{tmp_path / 'r.db'}"), clock=lambda: now[0])
    board.record_eval(_figures("a", 0.5, 4))
    assert board.scores()["a"].n == 4
    other = Scoreboard(board.db)  # another process
    other.record_eval(_figures("a", 0.5, 4))
    assert board.scores()["a"].n == 4
    now[0] = 10.0
    assert board.scores()["a"].n == 8


def test_migration_0007_up_and_down(empty_database: str) -> None:
    from alembic import command
    from alembic.config import Config

    db = Database(empty_database)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = db.engine
    command.upgrade(config, "head")
    names = set(sa.inspect(db.engine).get_table_names())
    assert {"answers", "answer_feedback", "model_scores"} <= names
    board = Scoreboard(db, ttl_s=0)
    board.record_eval(_figures("a", 0.9, 5))
    answer = board.record_answer(owner="k", key_name="k", model="a", version="a-v1",
                                 collection="c")  # fmt: skip
    board.rate(answer, "k", -1)
    assert board.scores()["a"].n == 6
    command.downgrade(config, "0006")
    inspector = sa.inspect(db.engine)
    assert not {"answers", "answer_feedback", "model_scores"} & set(inspector.get_table_names())
    assert "route_model" not in {c["name"] for c in inspector.get_columns("chat_turns")}
    command.upgrade(config, "head")
    assert Scoreboard(db).scores() == {}
    db.dispose()


CATALOG = {
    "models": {
        name: {
            "backend": "openai_compat",
            "model": f"{name}-v1",
            "self_hosted": True,
            "base_url": "http://127.0.0.1:9/v1",
        }  # fmt: skip
        for name in ("a", "b", "c")
    },
    "policies": {
        "measured": {"prefer": "measured"},
        "cheap": {"prefer": "measured", "models": ["a", "b"]},
    },
}


def _order(router: Router, policy: str = "measured") -> list[str]:
    plan = router.plan(PROMPT, RouteRequest(policy=policy))
    return [link.entry.name for link in plan.links if not link.safety_net]


def test_measured_order_follows_evals_then_feedback(board: Scoreboard) -> None:
    router = Router(parse_catalog(CATALOG))
    router.scores = board.scores
    assert _order(router) == ["a", "b", "c"]  # nothing measured: catalog order
    plan = router.plan(PROMPT, RouteRequest(policy="measured"))
    assert plan.links[0].score is not None and plan.links[0].score.source == "none"

    board.record_eval(_figures("a", 0.5, 50))
    board.record_eval(_figures("b", 0.8, 50))
    assert _order(router) == ["b", "a", "c"]  # scored first, unscored after
    assert _order(router, "cheap") == ["b", "a"]  # only among the policy's eligible models
    link = router.plan(PROMPT, RouteRequest(policy="measured")).links[0]
    assert link.score is not None and link.score.source == "eval" and link.score.n == 50
    assert "measured" in link.reason

    # b's answers are rated down by many users: a takes the lead.
    for i in range(60):
        answer = board.record_answer(owner=f"k{i}", key_name=None, model="b", version="b-v1",
                                     collection="c")  # fmt: skip
        board.rate(answer, f"k{i}", -1)
    assert _order(router) == ["a", "b", "c"]
    link = router.plan(PROMPT, RouteRequest(policy="measured")).links[1]
    assert link.score is not None and link.score.source == "eval+feedback" and link.score.n == 110

    # A model with a handful of perfect ratings is explored: its upper bound is high.
    for i in range(3):
        answer = board.record_answer(owner=f"j{i}", key_name=None, model="c", version="c-v1",
                                     collection="c")  # fmt: skip
        board.rate(answer, f"j{i}", 1)
    assert _order(router)[0] == "c"


def test_an_unreadable_scoreboard_orders_as_unscored() -> None:
    router = Router(parse_catalog(CATALOG))

    def broken() -> dict[str, object]:
        raise RuntimeError("database down")

    router.scores = broken  # type: ignore[assignment]
    assert _order(router) == ["a", "b", "c"]
