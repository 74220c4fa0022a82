"""Alembic environment: runs against the engine handed over by `Database.migrate`, or the
URL in `sqlalchemy.url` when invoked from the alembic command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from rag.db.tables import Base

config = context.config
engine = config.attributes.get("engine") or create_engine(
    config.get_main_option("sqlalchemy.url") or ""
)

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # Replicas starting together: one migrates, the others wait here (until its commit),
        # then find the schema at head. SQLite serialises writers by itself.
        connection.execute(text("SELECT pg_advisory_xact_lock(7261670001)"))
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
