"""collections.metadata_field_access: who may see each metadata key's name

Filled from the documents already there, so that a collection learnt before this revision shows
a key only to callers who may read a document carrying it, as new ones do.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_collections = sa.table(
    "collections", sa.column("id", sa.String()), sa.column("metadata_field_access", sa.JSON())
)
_documents = sa.table(
    "documents",
    sa.column("collection_id", sa.String()),
    sa.column("metadata", sa.JSON()),
    sa.column("access", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(
            sa.Column("metadata_field_access", sa.JSON(), nullable=False, server_default="{}")
        )
    bind = op.get_bind()
    readers: dict[str, dict[str, set[str]]] = {}
    documents = sa.select(_documents.c.collection_id, _documents.c.metadata, _documents.c.access)
    for collection_id, metadata, access in bind.execute(documents):
        fields = readers.setdefault(collection_id, {})
        for key in metadata or {}:
            fields.setdefault(key, set()).update(access or ["*"])
    for collection_id, fields in readers.items():
        value = {key: sorted(tokens) for key, tokens in fields.items()}
        bind.execute(
            _collections.update()
            .where(_collections.c.id == collection_id)
            .values(metadata_field_access=value)
        )


def downgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.drop_column("metadata_field_access")
