"""The RAG domain: parsing, chunking, embedding, stores, retrieval and generation.

This package imports neither FastAPI nor Celery; `api/` and `ingest/` are thin shells around it.
"""

__version__ = "0.1.0"
