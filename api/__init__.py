"""The FastAPI service: REST under /v1, OpenAPI docs at /docs."""
