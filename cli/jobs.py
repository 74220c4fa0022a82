"""`rag ingest` (files, folders, archives, manifests → one job, a live progress bar) and
`rag jobs` (list, show, cancel, pause, resume, retry, dead-letter)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import TextColumn
from rich.table import Table

from cli.client import ApiError, Client
from cli.common import (
    DEFAULT_URL,
    ApiUrl,
    Collection,
    console,
    err,
    fail,
    progress_bar,
    split_list,
)
from rag.parsing import SUPPORTED_EXTENSIONS
from rag.sources import is_archive, walk_folder

UPLOAD_BATCH = 16
Globs = Annotated[list[str] | None, typer.Option(help="Glob, repeatable; e.g. '**/*.pdf'.")]
JobId = Annotated[str, typer.Argument(help="The job's id.")]

jobs_app = typer.Typer(
    help="List and control ingestion jobs.", invoke_without_command=True, no_args_is_help=False
)


def ingest(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(exists=True, help="Files, folders (recursive) or .zip/.tar.gz archives."),
    ] = None,
    collection: Collection = "default",
    metadata: Annotated[str | None, typer.Option(help="JSON object stored on each file.")] = None,
    include: Globs = None,
    exclude: Globs = None,
    prune: Annotated[
        bool, typer.Option(help="Delete documents of these folders whose files are gone.")
    ] = False,
    manifest: Annotated[
        Path | None,
        typer.Option(exists=True, help="JSONL of server paths or allowed URLs, with metadata."),
    ] = None,
    allowed_groups: Annotated[
        str | None, typer.Option(help="Comma-separated groups that may read these documents.")
    ] = None,
    allowed_users: Annotated[
        str | None, typer.Option(help="Comma-separated users that may read them.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the job and show progress.")] = True,
    api_url: ApiUrl = DEFAULT_URL,
) -> None:
    """Ingest documents as one job, then follow it with a progress bar.

    A document's id is its path: a file given by itself is named by its file name, a file
    found in a folder by the folder's name and its path inside it (handbook/hr/leave.md).
    Running the same command again skips what did not change; --prune also deletes documents
    whose files were removed from the folder. New documents are readable by every key unless
    --allowed-groups/--allowed-users say who may; documents already there keep their access
    lists unless these options are given."""
    given = {"metadata": metadata, "allowed_groups": allowed_groups, "allowed_users": allowed_users}
    form = {k: v for k, v in given.items() if v}
    files, folders = _collect(paths or [], include or [], exclude or [])
    archives = [path for path in paths or [] if path.is_file() and is_archive(path.name)]
    if not files and not archives and manifest is None:
        fail("no supported documents found")
    client = Client(api_url)
    try:
        if client.ensure_collection(collection):
            console.print(f"created collection [bold]{collection}[/bold]")
        jobs = [client.upload_archive(collection, path, form) for path in archives]
        if manifest is not None:
            jobs.append(_submit_manifest(client, collection, manifest, form))
        if files:
            job = _upload(client, collection, files, form)
            for folder in folders if prune else []:
                job = client.request("POST", f"/v1/jobs/{job['id']}/prune", json={"prefix": folder})
            jobs.append(job)
        if wait:
            jobs = _follow(client, [job["id"] for job in jobs])
    except ApiError as exc:
        fail(str(exc))
    _summarise(client, jobs)


def _collect(
    paths: list[Path], include: list[str], exclude: list[str]
) -> tuple[list[tuple[str, Path]], list[str]]:
    """(source id, path) of every supported file, and the folders' source prefixes."""
    files: list[tuple[str, Path]] = []
    folders: list[str] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            root = path.resolve()
            found, unsupported = walk_folder(root, include=include, exclude=exclude)
            folders.append(f"{root.name}/")
            files += [(f"{root.name}/{p.relative_to(root).as_posix()}", p) for p in found]
            skipped += unsupported
        elif path.suffix.lower() in SUPPORTED_EXTENSIONS:
            files.append((path.name, path))
        elif not is_archive(path.name):
            skipped.append(path)
    for path in skipped:
        err.print(f"[yellow]skipped[/yellow] {path} (unsupported type)")
    return files, folders


def _upload(
    client: Client, collection: str, files: list[tuple[str, Path]], form: dict[str, str]
) -> Any:
    """All files into one job, a batch per request."""
    job: Any = None
    with progress_bar() as progress:
        task = progress.add_task("uploading", total=len(files))
        for start in range(0, len(files), UPLOAD_BATCH):
            batch = files[start : start + UPLOAD_BATCH]
            job = client.upload(collection, batch, form, job_id=job["id"] if job else None)
            progress.advance(task, len(batch))
    return job


def _submit_manifest(client: Client, collection: str, manifest: Path, form: dict[str, str]) -> Any:
    entries = []
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        if line.strip():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError as exc:
                fail(f"{manifest}:{number} is not valid JSON: {exc.msg}")
    body: dict[str, Any] = {"collection": collection, "manifest": entries}
    if "metadata" in form:
        body["metadata"] = json.loads(form["metadata"])
    for field in ("allowed_groups", "allowed_users"):
        if field in form:  # not given: documents already there keep their access lists
            body[field] = split_list(form[field])
    return client.request("POST", "/v1/jobs", json=body)


def _follow(client: Client, job_ids: list[str]) -> list[dict[str, Any]]:
    """Poll the jobs and draw one bar: documents finished, with states, rate and ETA."""
    states = TextColumn("{task.fields[states]}", style="dim")
    with progress_bar(states) as progress:
        task = progress.add_task("ingesting", total=None, states="")
        while True:
            jobs = [_get(client, job_id, limit=0) for job_id in job_ids]
            total = sum(job["total"] for job in jobs)
            done = sum(round(job["progress"] * job["total"]) for job in jobs)
            progress.update(task, completed=done, total=total, states=_states(jobs))
            if all(job["status"] not in ("queued", "running", "paused") for job in jobs):
                return jobs
            time.sleep(0.5)


def _counts(jobs: list[dict[str, Any]]) -> Counter[str]:
    """Documents per state over all the jobs, in the API's order of states."""
    total: Counter[str] = Counter()
    for job in jobs:
        total.update(job["counts"])
    return total


def _states(jobs: list[dict[str, Any]]) -> str:
    shown = " ".join(f"{n} {s}" for s, n in _counts(jobs).items() if n and s != "done")
    rate = sum(job["docs_per_s"] or 0 for job in jobs)
    eta = max((job["eta_s"] or 0 for job in jobs), default=0)
    if rate:
        shown += f" · {rate:.1f} docs/s · ETA {eta:.0f}s"
    return shown


def _get(client: Client, job_id: str, *, limit: int = 1000, status: str | None = None) -> Any:
    params: dict[str, Any] = {"documents_limit": limit}
    if status:
        params["documents_status"] = status
    return client.request("GET", f"/v1/jobs/{job_id}", params=params)


def _summarise(client: Client, jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        for doc in _get(client, job["id"], status="failed")["documents"]:
            err.print(f"[red]failed[/red] {doc['source']}: {doc['error']}")
        for rejected in job["rejected"]:
            err.print(f"[yellow]rejected[/yellow] {rejected['name']}: {rejected['reason']}")
        if job["pruned"]:
            console.print(f"pruned {job['pruned']} document(s) whose files are gone")
    summary = ", ".join(f"{v} {k}" for k, v in _counts(jobs).items() if v)
    ids = ", ".join(job["id"] for job in jobs)
    console.print(f"job{'s' if len(jobs) > 1 else ''} {ids}: {summary or 'nothing to do'}")


@jobs_app.callback()
def list_jobs(ctx: typer.Context, api_url: ApiUrl = DEFAULT_URL) -> None:
    """List recent ingestion jobs (or run a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table("job", "collection", "status", "done", "failed", "skipped", "created")
    for job in _call(api_url, "GET", "/v1/jobs"):
        c = job["counts"]
        table.add_row(
            job["id"],
            job["collection"],
            job["status"],
            str(c["done"]),
            str(c["failed"]),
            str(c["skipped"]),
            job["created_at"][:19],
        )
    console.print(table)


@jobs_app.command()
def show(job_id: JobId, api_url: ApiUrl = DEFAULT_URL) -> None:
    """One job in full, as JSON."""
    console.print_json(json.dumps(_call(api_url, "GET", f"/v1/jobs/{job_id}")))


@jobs_app.command()
def cancel(job_id: JobId, api_url: ApiUrl = DEFAULT_URL) -> None:
    """Cancel: queued documents are dropped, running ones stop at their next step."""
    console.print(f"job {job_id}: {_call(api_url, 'DELETE', f'/v1/jobs/{job_id}')['status']}")


@jobs_app.command()
def pause(job_id: JobId, api_url: ApiUrl = DEFAULT_URL) -> None:
    """Pause: nothing new starts; running documents go back to the queue at their next step."""
    console.print(f"job {job_id}: {_call(api_url, 'POST', f'/v1/jobs/{job_id}/pause')['status']}")


@jobs_app.command()
def resume(job_id: JobId, api_url: ApiUrl = DEFAULT_URL) -> None:
    """Resume a paused job."""
    console.print(f"job {job_id}: {_call(api_url, 'POST', f'/v1/jobs/{job_id}/resume')['status']}")


@jobs_app.command()
def retry(
    job_id: Annotated[str | None, typer.Argument(help="A job; omit to retry all.")] = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    api_url: ApiUrl = DEFAULT_URL,
) -> None:
    """Send failed documents again: one job's, or the whole dead-letter list."""
    if job_id:
        job = _call(api_url, "POST", f"/v1/jobs/{job_id}/retry")
        console.print(f"job {job_id}: {job['status']}, {job['counts']['queued']} queued")
        return
    params = {"collection": collection} if collection else {}
    retried = _call(api_url, "POST", "/v1/dead-letter/retry", params=params)["retried"]
    console.print(f"sent {retried} document(s) again")


@jobs_app.command("dead-letter")
def dead_letter(
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    api_url: ApiUrl = DEFAULT_URL,
) -> None:
    """Documents whose ingestion failed for good, with the reason."""
    params = {"collection": collection} if collection else {}
    table = Table("collection", "source", "attempts", "failed at", "error", "job")
    for d in _call(api_url, "GET", "/v1/dead-letter", params=params):
        failed_at = (d["failed_at"] or "")[:19]
        table.add_row(
            d["collection"], d["source"], str(d["attempts"]), failed_at, d["error"], d["job_id"]
        )
    console.print(table)


def _call(api_url: str, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return Client(api_url).request(method, path, **kwargs)
    except ApiError as exc:
        fail(str(exc))
