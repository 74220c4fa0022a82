"""Parse documents in a child process, so that one bad file cannot hang or bloat the worker.

The worker runs Celery's solo/threads pool inside the API process, where Celery's time limits do
nothing, and `unstructured` adds ~350 MB of imports to it (spaCy, onnxruntime, OpenCV). A child
process can be killed when it overruns its time limit, capped in memory, and thrown away every
`recycle_after` documents. Children are started with "spawn" (the parent has torch threads, so
never fork) and reused, because importing `unstructured` costs seconds. As with any "spawn", a
script that ends up parsing must keep its top level import-safe (`if __name__ == "__main__":`).

The memory cap is RLIMIT_DATA, not RLIMIT_AS: with `unstructured`'s imports loaded (torch,
onnxruntime, OpenBLAS) the child maps ~2 GiB of address space for ~0.8 GiB of data, so RLIMIT_AS
at 1536 MiB fails importing llvmlite and at 1024 segfaults, while RLIMIT_DATA = 1024 MiB parses a
500-page PDF, and past the cap allocations raise MemoryError. Below ~768 MiB even the imports fail.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue
import resource
import signal
from collections.abc import Callable
from contextlib import suppress
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from rag.errors import BackendUnavailable, RagError, UnreadableDocument
from rag.models import Element

DEFAULT_PARSE_FN = "rag.parsing:parse_file"
_CONTEXT = multiprocessing.get_context("spawn")
_START_TIMEOUT_S = 120.0
_OFFLINE = ("HF_HUB_OFFLINE", "DO_NOT_TRACK")
# The child shares the cores with the embedder, and per-thread BLAS buffers count against the cap.
_ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _serve(conn: Connection, parse_fn: str, max_memory_mb: int | None) -> None:
    """The child's loop: receive (path, filename), reply with elements or a described error."""
    os.environ.update(dict.fromkeys(_OFFLINE + _ONE_THREAD, "1"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if max_memory_mb is not None:
        cap = max_memory_mb << 20
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    module, _, name = parse_fn.partition(":")
    parse: Callable[..., list[Element]] = getattr(importlib.import_module(module), name)
    with suppress(EOFError, OSError):  # the parent is gone: nobody to answer
        conn.send("ready")
        while (request := conn.recv()) is not None:
            path, filename = request
            try:
                reply: tuple[Any, ...] = ("ok", parse(Path(path), filename=filename))
            except MemoryError:
                reply = ("memory",)
            except RagError as exc:
                reply = ("error", type(exc), exc.message, dict(vars(exc)))
            except Exception as exc:
                reply = ("failed", f"{type(exc).__name__}: {exc}"[:300])
            try:
                conn.send(reply)
            except MemoryError:
                conn.send(("memory",))
            except Exception as exc:  # e.g. an error whose attributes do not pickle
                conn.send(("failed", type(exc).__name__))


def _rebuild(cls: type[RagError], message: str, state: dict[str, Any]) -> RagError:
    """The child's error as the same class, without calling a constructor with other arguments."""
    exc = cls.__new__(cls)
    RagError.__init__(exc, message)
    exc.__dict__.update(state)
    return exc


class _Child:
    """One parser process and the parent's end of its pipe."""

    def __init__(self, parse_fn: str, max_memory_mb: int | None) -> None:
        self.conn, child_conn = _CONTEXT.Pipe()
        args = (child_conn, parse_fn, max_memory_mb)
        self.process = _CONTEXT.Process(target=_serve, args=args, name="rag-parser", daemon=True)
        self.process.start()
        child_conn.close()
        self.parsed = 0
        # Up before the clock starts: the time limit is for parsing, not for starting Python.
        with suppress(EOFError):
            if self.conn.poll(_START_TIMEOUT_S) and self.conn.recv() == "ready":
                return
        self.stop(graceful=True)  # it is exiting or hung: let it finish, else kill it
        status = self.exit_status()
        raise BackendUnavailable(f"the parser process did not start ({status})", backend="parser")

    def exit_status(self) -> str:
        code = self.process.exitcode or 0  # asked once the process was joined
        return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"

    def stop(self, *, graceful: bool) -> None:
        """Ask it to exit (graceful, 5 s) or SIGTERM it (2 s); then SIGKILL if still there."""
        if graceful:
            with suppress(OSError):
                self.conn.send(None)
        else:
            self.process.terminate()
        self.process.join(5 if graceful else 2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class _Slot:  # room for one child, started on first use; a caller owns a slot while it parses
    child: _Child | None = None


class IsolatedParser:
    """Parses documents in a recycled child process, with a hard time limit and a memory cap.

    `parse_fn` ("module:function", importable in a fresh interpreter) is called in the child as
    `parse(path, filename=...)`. Up to `workers` documents parse at once, each in its own child.
    """

    def __init__(
        self,
        *,
        timeout_s: float = 300.0,
        max_memory_mb: int | None = 2048,
        recycle_after: int = 200,
        workers: int = 1,
        parse_fn: str = DEFAULT_PARSE_FN,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_memory_mb = max_memory_mb
        self.recycle_after = recycle_after
        self.parse_fn = parse_fn
        self._idle: queue.Queue[_Slot] = queue.Queue()
        for _ in range(workers):
            self._idle.put(_Slot())
        self._closed = False

    def __call__(self, path: Path, filename: str) -> list[Element]:
        if self._closed:
            raise RuntimeError("IsolatedParser is closed")
        slot = self._idle.get()
        try:
            return self._parse(slot, path, filename)
        finally:
            self._idle.put(slot)
            if self._closed:  # closed while we parsed: stop our child too
                self.close()

    def _parse(self, slot: _Slot, path: Path, filename: str) -> list[Element]:
        if slot.child is None or not slot.child.process.is_alive():  # e.g. OOM-killed while idle
            slot.child = _Child(self.parse_fn, self.max_memory_mb)
        child = slot.child
        seasoned = child.parsed > 0
        child.conn.send((str(path), filename))
        if not wait([child.conn, child.process.sentinel], self.timeout_s):
            slot.child = None
            child.stop(graceful=False)
            raise UnreadableDocument(
                f"parsing took longer than {self.timeout_s:.0f} s (the per-document time limit); "
                "the file is too large or malformed"
            )
        try:
            reply = child.conn.recv()
        except (EOFError, OSError):
            slot.child = None
            child.stop(graceful=True)  # already dead: reap it
            raise UnreadableDocument(f"the parser crashed ({child.exit_status()})") from None
        child.parsed += 1
        if reply[0] in ("memory", "failed") or child.parsed >= self.recycle_after:
            slot.child = None  # a MemoryError or an unexpected error may have left it broken
            child.stop(graceful=True)
            if reply[0] in ("memory", "failed") and seasoned:
                # What earlier documents left in the child (the parser's caches grow) may be the
                # cause: this document gets one more try in a fresh child.
                return self._parse(slot, path, filename)
        if reply[0] == "ok":
            elements: list[Element] = reply[1]
            return elements
        if reply[0] == "error":
            raise _rebuild(*reply[1:])
        if reply[0] == "memory":
            raise UnreadableDocument(
                f"parsing needed more than {self.max_memory_mb} MiB (the per-document memory limit)"
            )
        raise UnreadableDocument(f"the parser failed ({reply[1]})")

    def close(self) -> None:
        """Stop the idle children now; a busy one stops when its parse returns."""
        self._closed = True
        idle: list[_Slot] = []
        with suppress(queue.Empty):
            while True:
                idle.append(self._idle.get_nowait())
        for slot in idle:
            if slot.child is not None:
                slot.child.stop(graceful=True)
                slot.child = None
            self._idle.put(slot)
