"""The `rag` command: a client of the REST API, plus `serve` and `worker` to run the service."""
