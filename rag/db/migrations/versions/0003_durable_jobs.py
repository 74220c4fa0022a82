"""durable bulk jobs: leases, stages, pause, rejected inputs, versions and duplicates

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("origin", sa.String(1024), nullable=False, server_default="upload")
        )
        batch.add_column(sa.Column("rejected", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("pruned", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("job_items") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("indexed_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("duplicate_of", sa.String(36), nullable=True))
        batch.create_foreign_key(
            "fk_documents_duplicate_of", "documents", ["duplicate_of"], ["id"], ondelete="SET NULL"
        )
    op.execute("UPDATE job_items SET status = 'parsing' WHERE status = 'processing'")
    op.execute("UPDATE documents SET indexed_version = version WHERE status = 'indexed'")


def downgrade() -> None:
    op.execute("UPDATE job_items SET status = 'processing' WHERE status IN ('parsing', 'embedding')")
    with op.batch_alter_table("documents") as batch:
        batch.drop_constraint("fk_documents_duplicate_of", type_="foreignkey")
        batch.drop_column("duplicate_of")
        batch.drop_column("indexed_version")
    with op.batch_alter_table("job_items") as batch:
        batch.drop_column("heartbeat_at")
    with op.batch_alter_table("jobs") as batch:
        for column in ("pruned", "rejected", "origin", "paused"):
            batch.drop_column(column)
