"""Index a folder of documents into a scratch collection through the service's own pipeline
(catalog → parse → chunk → embed → store), in-process: what a worker does, minus the queue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import InvalidInput, NotFoundError
from rag.sources import walk_folder
from rag.staging import stage

if TYPE_CHECKING:
    from rag.factory import Runtime


def supported_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is not a folder")
    files, _ = walk_folder(folder)
    if not files:
        raise InvalidInput(f"{folder} holds no supported documents")
    return files


def fresh_collection(runtime: Runtime, name: str, description: str) -> None:
    """A leftover collection of an earlier run (a kept scratch folder) would mix in stale chunks."""
    try:
        runtime.catalog.get_collection(name)
        runtime.catalog.delete_collection(name)
    except NotFoundError:
        pass
    runtime.catalog.create_collection(name, description, runtime.embedder.dimension)


def index_folder(
    runtime: Runtime,
    collection: str,
    folder: Path,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Ingest every supported file under `folder`; returns the errors of those that failed."""
    files = supported_files(folder)
    incoming = []
    for path in files:
        with path.open("rb") as stream:
            incoming.append(
                stage(
                    stream,
                    path.name,
                    runtime.settings.uploads_dir / ".staging",
                    max_bytes=runtime.settings.max_upload_bytes,
                )
            )
    submission = runtime.jobs.submit(collection, incoming)
    errors = []
    for done, (job_id, document_id) in enumerate(submission.to_dispatch, start=1):
        outcome = runtime.ingestor.ingest(job_id, document_id)
        if outcome.error:
            errors.append(outcome.error)
        if progress:
            progress(done, len(submission.to_dispatch))
    return errors
