"""Index documents into a scratch collection, in-process: a folder through the service's own
pipeline (catalog → parse → chunk → embed → store, what a worker does minus the queue), or a
BEIR corpus.jsonl through the retrieval evaluation's (chunk → embed → store)."""

from __future__ import annotations

from collections.abc import Callable, Collection
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
                    runtime.settings.staging_dir,
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


def index_corpus(
    runtime: Runtime,
    collection: str,
    corpus: Path,
    *,
    wanted: Collection[str] = (),
    max_docs: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """A folder (see `index_folder`), or a corpus.jsonl: its `wanted` documents plus the first
    `max_docs` others (all of them when None). Returns the errors of documents that failed."""
    if corpus.is_dir():
        return index_folder(runtime, collection, corpus, progress)
    from rag.evaluation.beir import load_corpus
    from rag.evaluation.retrieval import ingest_corpus

    documents = load_corpus(corpus)
    if max_docs is not None:
        others = [d.id for d in documents if d.id not in wanted][:max_docs]
        keep = set(wanted) | set(others)
        documents = [d for d in documents if d.id in keep]
    report = progress or (lambda done, total: None)
    ingest_corpus(runtime, documents, collection, 256, lambda _, done, total: report(done, total))
    return []
