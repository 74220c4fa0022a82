"""The model scoreboard: answers that can be rated, their ratings, and per-model running sums

`chat_turns.route_model` records the catalog name of the model that answered a chat turn, so
that its 👍/👎 count towards that model's score (`model` is the pinned version).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("key_name", sa.String(128)),
        sa.Column("model", sa.String(128)),
        sa.Column("version", sa.String(200)),
        sa.Column("collection", sa.String(64)),
        sa.Column("question", sa.Text()),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "answer_feedback",
        sa.Column(
            "answer_id",
            sa.String(36),
            sa.ForeignKey("answers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("rater", sa.String(128), primary_key=True),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    counts = ("eval_runs", "eval_n", "eval_f1_n", "eval_citation_precision_n")
    sums = ("eval_quality", "eval_f1", "eval_citation_precision", "eval_abstention")
    op.create_table(
        "model_scores",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("version", sa.String(200), primary_key=True),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in counts),
        *(sa.Column(c, sa.Float(), nullable=False) for c in sums),
        sa.Column("eval_abstention_n", sa.Integer(), nullable=False),
        sa.Column("eval_latency_ms", sa.Float(), nullable=False),
        sa.Column("eval_cost_usd", sa.Float(), nullable=False),
        sa.Column("feedback_up", sa.Integer(), nullable=False),
        sa.Column("feedback_down", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("chat_turns") as batch:
        batch.add_column(sa.Column("route_model", sa.String(128)))


def downgrade() -> None:
    with op.batch_alter_table("chat_turns") as batch:
        batch.drop_column("route_model")
    op.drop_table("model_scores")
    op.drop_table("answer_feedback")
    op.drop_table("answers")
