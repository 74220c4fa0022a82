"""Celery wiring around `rag`: the app, the tasks (thin), the in-process worker and the relay."""
