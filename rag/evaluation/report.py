"""Write an evaluation as `results.json` (everything) and `results.md` (the summary table)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def write_report(
    report: BaseModel,
    out_dir: Path,
    *,
    title: str,
    lines: Sequence[str],
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    body = [f"# {title}", "", *(f"{line}  " for line in lines), "", *markdown_table(header, rows)]
    md_path.write_text("\n".join([*body, ""]))
    return json_path, md_path
