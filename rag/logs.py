"""Logging set-up for the processes we start (`rag serve`, `rag worker`)."""

from __future__ import annotations

import logging


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
    )
    for noisy in ("httpx", "sentence_transformers", "unstructured", "pdfminer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
