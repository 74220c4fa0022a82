"""`rag eval grounding`: how verification treats labelled claims, per verifier (see
rag.evaluation.grounding and docs/evaluation.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.common import console, fail, split_list

if TYPE_CHECKING:
    from rag.evaluation.grounding import ClaimPair, Half
    from rag.factory import Runtime
    from rag.verification import Verifier


def _limited(pairs: list[ClaimPair], limit: int | None) -> list[ClaimPair]:
    """The first `limit` pairs of each label, so a quick run keeps the labels' balance."""
    if limit is None:
        return pairs
    seen: dict[str, int] = {}
    chosen = []
    for pair in pairs:
        seen[pair.label] = seen.get(pair.label, 0) + 1
        if seen[pair.label] <= limit:
            chosen.append(pair)
    return chosen


def _verifier(runtime: Runtime, name: str) -> Verifier:
    from rag.generation.model_catalog import Policy
    from rag.generation.router import RouteRequest

    if name == "deterministic":
        return runtime.verifiers.deterministic
    problem = runtime.router.catalog.verifier_problem(name)
    if problem or name == "self":
        fail(f"--verifiers: {problem or 'self needs an answering model; name one instead'}")
    choice = runtime.verifiers.choose(
        RouteRequest(policy=Policy(sensitivity="public", verifier=name)), None
    )
    if choice.fallback:
        fail(f"--verifiers: {choice.fallback}")
    return choice.verifier


def grounding(
    dataset: Annotated[
        Path,
        typer.Option(
            exists=True,
            file_okay=False,
            help="Folder with claims.jsonl and abstracts.jsonl (SciFact-claims layout).",
        ),
    ],
    verifiers: Annotated[
        str, typer.Option(help="Comma-separated: deterministic and/or catalog model names.")
    ] = "deterministic",
    half: Annotated[
        str, typer.Option(help="Which half to report on: held_out, fit or both.")
    ] = "held_out",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Quick run: the first N pairs of each label.")
    ] = None,
    fit: Annotated[
        bool, typer.Option("--fit", help="Fit the deterministic model on the fit half first.")
    ] = False,
    model_out: Annotated[
        Path | None,
        typer.Option(help="Where --fit writes the model (default: the report folder)."),
    ] = None,
    end_to_end: Annotated[
        bool,
        typer.Option(
            "--end-to-end",
            help="Also index every abstract, retrieve with the claim and verify what came back.",
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="Report folder (default: ./eval-results/<dataset>).")
    ] = None,
) -> None:
    """Keep rates of SUPPORT, CONTRADICT and NEI claims per verifier, a threshold sweep and
    latency; with --fit, refit the deterministic verifier first."""
    from cli.eval import _progress, _scratch_runtime, _show
    from rag.errors import RagError
    from rag.evaluation.grounding import (
        GroundingReport,
        Passages,
        feature_rows,
        load_claims,
        run_end_to_end,
        run_verifier,
        split,
        summary_rows,
        sweep,
        sweep_lines,
        write_grounding_report,
    )
    from rag.verification.fit import fit_model

    started = time.perf_counter()
    halves: list[Half] = ["fit", "held_out"] if half == "both" else [half]  # type: ignore[list-item]
    if half not in ("held_out", "fit", "both"):
        fail(f"--half takes held_out, fit or both; got {half!r}")
    out_dir = output or Path("eval-results") / dataset.name
    try:
        data = load_claims(dataset)
        with _scratch_runtime(None) as runtime, _progress() as update:
            embedder = runtime.embedder
            chosen = {h: _limited(split(data.pairs, h), limit) for h in ("fit", "held_out")}
            passages = Passages(data, embedder, chosen["fit"] + chosen["held_out"])
            deterministic = runtime.verifiers.deterministic
            if fit:
                rows, rules = feature_rows(chosen["fit"], passages, embedder)
                deterministic.model = fit_model(
                    rows,
                    [p.label for p in chosen["fit"]],
                    rules,
                    version=f"{time.strftime('%Y-%m-%d')}-{data.name}",
                    fitted_on={"dataset": data.name, "half": "fit", "pairs": len(rows)},
                )
                target = model_out or out_dir / "deterministic.json"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(deterministic.model.model_dump_json(indent=2) + "\n")
                console.print(f"fitted {deterministic.name} on {len(rows)} pairs → {target}")
            results = []
            for name in split_list(verifiers):
                verifier = _verifier(runtime, name)
                for h in halves:

                    def on_progress(done: int, total: int, label: str = f"{name} ({h})") -> None:
                        update(label, label, done, total)

                    results.append(run_verifier(verifier, chosen[h], passages, h, on_progress))
            held_out = chosen["held_out"]
            rows, rules = feature_rows(held_out, passages, embedder)
            report = GroundingReport(
                dataset=data.name,
                model=deterministic.model,
                results=results,
                sweep=sweep(deterministic.model, rows, rules, [p.label for p in held_out]),
            )
            if end_to_end:
                for name in split_list(verifiers):
                    report.end_to_end.append(
                        run_end_to_end(
                            runtime,
                            data,
                            held_out,
                            _verifier(runtime, name),
                            "held_out",
                            progress=lambda stage, done, total: update(stage, stage, done, total),
                        )
                    )
        header, table = summary_rows(report)
        _show(f"verification: {data.name}", header, table, sweep_lines(report))
        paths = write_grounding_report(report, out_dir)
    except RagError as exc:
        fail(exc.message)
    console.print(f"wrote {paths[1]} and {paths[0]} · {time.perf_counter() - started:.0f} s total")
