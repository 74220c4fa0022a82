"""The metadata database: collections, documents, jobs and per-document task state.

SQLite file by default, PostgreSQL when DATABASE_URL is set; the schema is owned by Alembic.
"""
