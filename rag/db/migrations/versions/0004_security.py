"""security: API keys, audit log, document access lists, jobs' keys

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("collections", sa.JSON(), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("delegate", sa.Boolean(), nullable=False),
        sa.Column("query_per_minute", sa.Float(), nullable=True),
        sa.Column("ingest_per_minute", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("key_name", sa.String(128), nullable=True),
        sa.Column("user", sa.String(256), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("collection", sa.String(64), nullable=True),
        sa.Column("target", sa.String(1024), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit_log", ["at"])
    op.create_index("ix_audit_key_at", "audit_log", ["key_name", "at"])
    op.create_index("ix_audit_action_at", "audit_log", ["action", "at"])
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("access", sa.JSON(), nullable=False, server_default='["*"]'))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("key_id", sa.String(36), nullable=True))
        batch.create_index("ix_jobs_key_id", ["key_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_key_id")
        batch.drop_column("key_id")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("access")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
