"""Building an edge shard's HNSW index without stopping the service.

The engine builds HNSW only when `optimize` is called, and its Python binding holds the GIL for
the whole call: on 200k points, 51 s in which nothing else in the process runs (not the API,
not the worker). So the index is built on a copy, in a child process, and swapped in:

1. writes to the collection wait while it is flushed and its folder copied to `<name>.building`;
   from then on every write is also kept in a journal;
2. a child process (`python -m rag.stores.edge_index <folder>`, at low priority) loads the copy
   and optimises it; meanwhile the live shard answers searches exactly and takes writes;
3. the copy is loaded and the journal replayed on it, the last few writes with writes held;
4. the swap, with searches waiting too (about the time it takes to open a shard): the live
   shard is closed, its folder renamed `<name>.retired`, the copy renamed into its place and
   opened; the retired folder is deleted.

A crash at any point loses nothing (`recover`, run before a shard is opened): a collection
without its folder but with a retired one gets the retired one back (it has every write); any
other leftover is deleted. The points indexed by the last build are stamped in the folder, and
the next build starts when as many again have been added since.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import qdrant_edge as qe

log = logging.getLogger(__name__)

BUILDING, RETIRED = ".building", ".retired"
CONFIG_FILE = "edge_config.json"  # written by the engine when a shard is created
_STAMP = "rag_index.json"  # {"points": n}: points in the shard when its index was last built
# Writes made during a build are replayed on the copy in passes while writes go on, until at
# most this many are left for the last pass, made with the collection's writes held.
_REPLAY_LOCKED, _REPLAY_PASSES = 16, 5


def _sibling(folder: Path, suffix: str) -> Path:
    return folder.with_name(folder.name + suffix)


def recover(folder: Path) -> None:
    """Undo what a swap cut short left behind (call before opening the shard at `folder`)."""
    retired = _sibling(folder, RETIRED)
    if not (folder / CONFIG_FILE).exists() and (retired / CONFIG_FILE).exists():
        shutil.rmtree(folder, ignore_errors=True)
        retired.rename(folder)
        log.warning("restored %s: the process stopped while swapping in its new index", folder)
    for leftover in (retired, _sibling(folder, BUILDING)):
        shutil.rmtree(leftover, ignore_errors=True)


def remove(folder: Path) -> None:
    """Delete a collection's folder and any copy of it."""
    for path in (folder, _sibling(folder, BUILDING), _sibling(folder, RETIRED)):
        shutil.rmtree(path, ignore_errors=True)


def indexed_points(folder: Path) -> int:
    try:
        return int(json.loads((folder / _STAMP).read_text())["points"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


class Shards(Protocol):
    """What the builder needs of `QdrantEdgeStore`."""

    def folder(self, collection: str) -> Path: ...

    def writing(self, collection: str) -> threading.Lock: ...

    def current(self, collection: str) -> qe.EdgeShard | None: ...

    def replace(
        self, collection: str, shard: qe.EdgeShard, build: Callable[[], qe.EdgeShard]
    ) -> bool:
        """Under the store's lock: if `shard` is still the collection's, close it, put
        `build()` in its place and return True; else return False."""
        ...


class Indexer:
    """Starts and runs background index builds, one per collection at a time."""

    def __init__(self, shards: Shards, threshold: int):
        self.shards = shards
        self.threshold = threshold  # points added since the last build; 0 = never build
        self._lock = threading.Lock()
        self._journals: dict[str, list[qe.UpdateOperation]] = {}
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._indexed: dict[str, int] = {}
        self._dropped: set[str] = set()
        self._closed = False
        self.command = [sys.executable, "-m", __name__]  # + the copy's folder

    def record(self, collection: str, op: qe.UpdateOperation) -> None:
        """A write was applied to the live shard (called with the collection's write lock)."""
        journal = self._journals.get(collection)
        if journal is not None:
            journal.append(op)

    def building(self, collection: str) -> bool:
        return collection in self._journals

    def maybe_build(self, collection: str, points: int) -> bool:
        """Start a build if enough points were added since the last one."""
        if not self.threshold:
            return False
        with self._lock:
            if self._closed or collection in self._journals:
                return False
            if collection not in self._indexed:
                self._indexed[collection] = indexed_points(self.shards.folder(collection))
            if points - self._indexed[collection] < self.threshold:
                return False
            self._journals[collection] = []  # claims the collection until the build ends
            thread = threading.Thread(
                target=self._run, args=(collection,), name=f"rag-index-{collection}", daemon=True
            )
            self._threads[collection] = thread
        thread.start()
        return True

    def close(self) -> None:
        """Stop the builds in progress (their copies are deleted; the live shards are kept)."""
        with self._lock:
            self._closed = True
            for child in self._children.values():
                child.kill()
            threads = list(self._threads.values())
        for thread in threads:
            thread.join()

    def forget(self, collection: str) -> None:
        """The collection is being dropped (its write lock held): abandon a build of it."""
        with self._lock:
            self._indexed.pop(collection, None)
            if collection in self._threads:
                self._dropped.add(collection)
            child = self._children.get(collection)
        if child is not None:
            child.kill()

    def _run(self, collection: str) -> None:
        """Build until the points added during the last build (searched exactly) are fewer
        than the threshold; the collection stays claimed throughout."""
        try:
            while self._build(collection) and self._behind(collection):
                pass
        finally:
            with self._lock:
                for table in (self._journals, self._children, self._threads):
                    table.pop(collection, None)
                self._dropped.discard(collection)

    def _behind(self, collection: str) -> bool:
        shard = self.shards.current(collection)
        try:
            points = shard.info().points_count if shard is not None else 0
        except Exception:  # closed or dropped meanwhile
            return False
        with self._lock:
            return (
                not self._closed
                and points - self._indexed.get(collection, points) >= self.threshold
            )

    def _build(self, collection: str) -> bool:
        """Build the collection's index and swap it in; False if it was not swapped in."""
        folder = self.shards.folder(collection)
        copy = _sibling(folder, BUILDING)
        points = 0
        try:
            started = time.perf_counter()
            with self.shards.writing(collection):
                shard = self.shards.current(collection)
                if shard is None:
                    return False
                shard.flush()
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(folder, copy)
                points = shard.info().points_count
                self._journals[collection] = []  # writes from here on are replayed on the copy
            if not self._optimise(collection, copy):
                return False
            swapped = self._replay(
                collection,
                copy,
                points,
                then=lambda: self.shards.replace(
                    collection, shard, lambda: self._swap(folder, copy)
                ),
            )
            if swapped:
                with self._lock:
                    self._indexed[collection] = points
                shutil.rmtree(_sibling(folder, RETIRED), ignore_errors=True)
                log.info(
                    "collection %s: HNSW index of %d points built in %.1fs",
                    collection,
                    points,
                    time.perf_counter() - started,
                )
            return swapped
        except Exception:
            log.exception(
                "collection %s: building its index failed; searches stay exact until "
                "%d more points are added",
                collection,
                self.threshold,
            )
            with self._lock:  # not again at the next write: as many points again first
                self._indexed[collection] = max(points, self._indexed.get(collection, 0))
            return False
        finally:
            shutil.rmtree(copy, ignore_errors=True)

    def _optimise(self, collection: str, copy: Path) -> bool:
        with self._lock:
            if self._closed or collection in self._dropped:
                return False
            child = subprocess.Popen(
                [*self.command, str(copy)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            self._children[collection] = child
        _, stderr = child.communicate()
        if self._closed or collection in self._dropped:
            return False  # `close` or `forget` stopped it
        if child.returncode != 0:  # an error, or killed for its memory
            error = stderr.decode(errors="replace")[-500:]
            raise RuntimeError(f"the build process stopped (exit {child.returncode}): {error}")
        return True

    def _replay(self, collection: str, copy: Path, points: int, then: Callable[[], bool]) -> bool:
        """Apply the writes made during the build to the copy, then call `then` with the write
        lock held. Most are replayed while writes go on (a binding call holds the GIL, so a
        long replay under the lock would stop the process); the last few under the lock."""
        built = qe.EdgeShard.load(str(copy))
        try:
            journal, done = self._journals[collection], 0
            for _ in range(_REPLAY_PASSES):
                if len(journal) - done <= _REPLAY_LOCKED:
                    break
                end = len(journal)
                for op in journal[done:end]:
                    built.update(op)
                done = end
            with self.shards.writing(collection):
                for op in journal[done:]:
                    built.update(op)
                built.flush()
                built.close()
                (copy / _STAMP).write_text(json.dumps({"points": points}))
                return then()
        finally:
            built.close()  # closing twice is allowed

    @staticmethod
    def _swap(folder: Path, copy: Path) -> qe.EdgeShard:
        """The live shard is closed: the copy takes its folder's place."""
        folder.rename(_sibling(folder, RETIRED))
        copy.rename(folder)
        return qe.EdgeShard.load(str(folder))


def main(folder: str) -> None:
    os.nice(10)  # the API and the worker come first
    shard = qe.EdgeShard.load(folder)
    try:
        shard.optimize()
    finally:
        shard.close()


if __name__ == "__main__":
    main(sys.argv[1])
