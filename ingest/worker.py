"""A real Celery worker running in a thread of the current process.

With the embedded Qdrant store only one process may open the store, so `rag serve` runs the
API and this worker together; they share one `Runtime`. Celery's own test worker
(`celery.contrib.testing.worker`) runs the same `WorkController` in a thread the same way.
"""

from __future__ import annotations

import logging
import socket
import threading

from celery import Celery
from celery.platforms import EX_OK
from celery.worker import state as worker_state

log = logging.getLogger(__name__)


class InProcessWorker:
    def __init__(self, app: Celery, *, queues: list[str], concurrency: int = 1):
        self.app = app
        self._ready = threading.Event()
        self._controller = app.WorkController(
            app=app,
            hostname=f"rag-inprocess-{socket.gethostname()}-{id(self):x}",
            pool_cls="solo" if concurrency == 1 else "threads",
            concurrency=concurrency,
            queues=queues,
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            ready_callback=lambda *_: self._ready.set(),
            loglevel=logging.INFO,
        )
        self._thread = threading.Thread(target=self._run, name="rag-worker", daemon=True)

    def _run(self) -> None:
        try:
            self._controller.start()
        except Exception:
            log.exception("in-process worker stopped with an error")

    def start(self, timeout_s: float = 30.0) -> None:
        worker_state.should_stop = None  # a worker stopped earlier in this process set it
        self._thread.start()
        if not self._ready.wait(timeout_s):
            log.warning("in-process worker not ready after %.0fs (is the broker up?)", timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Warm shutdown, as Celery does it on SIGTERM: a flag the worker's own loop sees
        (closing its broker connection from this thread can block for ever on a busy queue).
        The task in hand runs to its end, up to `timeout_s`; one cut off is sent again at the
        next start (its lease is orphaned: rag.jobs)."""
        worker_state.should_stop = EX_OK
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            log.warning("worker still busy after %.0fs: its task runs again next start", timeout_s)
