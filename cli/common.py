"""What every `rag` command shares: consoles, the one-line failure, common options."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
err = Console(stderr=True, soft_wrap=True)  # messages stay on one line, greppable

DEFAULT_URL = "http://127.0.0.1:8000"
ApiUrl = Annotated[str, typer.Option("--api-url", envvar="RAG_API_URL", help="Service URL.")]
Collection = Annotated[str, typer.Option("--collection", "-c", help="Collection name.")]


def split_list(value: str | None) -> list[str]:
    """A comma-separated option as its non-empty items."""
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def fail(message: str) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


def progress_bar(*extra: TextColumn) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *extra,
        console=err,
    )
