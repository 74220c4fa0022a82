"""Prometheus for the queues and for `rag worker`: queue depths read at scrape time, and the
worker's /metrics server summing its pool's processes (rag.metrics explains the modes)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from celery import Celery
from kombu.exceptions import OperationalError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ingest.dispatch import queue_depths

log = logging.getLogger(__name__)


class QueueDepth(Collector):
    def __init__(self, app: Celery, queues: list[str]):
        self.app, self.queues = app, queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("rag_queue_depth", "Tasks waiting, per queue.", labels=["queue"])
        try:
            for queue, depth in queue_depths(self.app, self.queues).items():
                family.add_metric([queue], depth)
        except (OperationalError, OSError) as exc:  # a scrape reports what it can
            log.warning("queue depth: the broker is unreachable: %s", exc)
        yield family


def serve_worker_metrics(app: Celery, queues: list[str], port: int) -> None:
    """GET /metrics on `port`, all interfaces (Prometheus scrapes from elsewhere): every pool
    process's values, summed, and the queue depths. PROMETHEUS_MULTIPROC_DIR must have been
    set before anything imported prometheus_client (`rag worker` does it first thing)."""
    from celery.signals import worker_process_shutdown
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(QueueDepth(app, queues))
    start_http_server(port, registry=registry)

    @worker_process_shutdown.connect(weak=False)  # type: ignore[untyped-decorator]
    def _dead(pid: int | None = None, **_: object) -> None:
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]

    log.info("metrics on :%d/metrics", port)
