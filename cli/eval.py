"""`rag eval`: measure retrieval (BEIR datasets) and answers (question/answer sets), in-process.

Each run builds its own runtime on a scratch folder (embedded Qdrant, SQLite catalog) rather
than talking to a running service, so an evaluation never touches real collections and needs
nothing running. Embedding, chunking, retrieval and generator settings still come from the
usual configuration, since those are what an evaluation is meant to compare.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast, get_args

import typer
from rich.progress import (
    TaskID,
)
from rich.table import Table

from cli.common import console, err, fail, progress_bar, split_list

if TYPE_CHECKING:
    from rag.config import Fusion, RetrievalMode
    from rag.evaluation.answers import AnswerReport
    from rag.factory import Runtime

eval_app = typer.Typer(
    help="Measure retrieval and answer quality on a benchmark or on your own data.",
    no_args_is_help=True,
)

Output = Annotated[
    Path | None, typer.Option(help="Report folder (default: ./eval-results/<dataset name>).")
]
DataDir = Annotated[
    Path | None, typer.Option(help="Keep the scratch index here (default: a temp folder).")
]
Mlflow = Annotated[
    bool,
    typer.Option(
        "--mlflow",
        help="Also log params and metrics to MLflow (MLFLOW_TRACKING_URI, default ./mlruns).",
    ),
]
ProgressFn = Callable[[str, str, int, int], None]


def _choices(option: str, value: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = split_list(value)
    unknown = [m for m in chosen if m not in allowed]
    if not chosen or unknown:
        fail(f"{option} takes a comma-separated list of {', '.join(allowed)}; got {value!r}")
    return list(dict.fromkeys(chosen))


@contextmanager
def _scratch_runtime(
    data_dir: Path | None, max_top_k: int = 0, rerank_top_n: int | None = None
) -> Iterator[Runtime]:
    """Settings as configured, but every store is a scratch one: an evaluation never writes
    into the service's database or collections. The folder is removed unless given."""
    from rag.config import Settings
    from rag.factory import build_runtime

    scratch = data_dir or Path(tempfile.mkdtemp(prefix="rag-eval-"))
    settings = Settings(data_dir=scratch)
    settings.database_url = None
    settings.qdrant.url, settings.qdrant.api_key, settings.qdrant.path = None, None, None
    settings.retrieval.max_top_k = max(settings.retrieval.max_top_k, max_top_k)
    if rerank_top_n is not None:
        settings.retrieval.rerank_top_n = rerank_top_n
    runtime = build_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()
        if data_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def _progress() -> Iterator[ProgressFn]:
    """A callback (key, label, done, total) drawing one bar per key on stderr."""
    with progress_bar() as progress:
        tasks: dict[str, TaskID] = {}

        def update(key: str, label: str, done: int, total: int) -> None:
            if key not in tasks:
                tasks[key] = progress.add_task(label, total=total)
            progress.update(tasks[key], completed=done, total=total)

        yield update


def _show(title: str, header: list[str], rows: list[list[str]], lines: list[str]) -> None:
    table = Table(*header, title=title)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in lines:
        console.print(line, style="dim")


def _track(
    enabled: bool,
    experiment: str,
    params: Mapping[str, object],
    metrics: Mapping[str, float | None],
    artifacts: tuple[Path, Path],
) -> None:
    if not enabled:
        return
    from rag.evaluation.tracking import log_run

    run_id = log_run(
        experiment=experiment,
        run_name=time.strftime("%Y-%m-%d %H:%M:%S"),
        params=params,
        metrics=metrics,
        artifacts=artifacts,
    )
    console.print(f"logged MLflow run {run_id} in experiment {experiment!r}")


@eval_app.command("retrieval")
def retrieval(
    dataset: Annotated[
        Path,
        typer.Option(
            exists=True,
            file_okay=False,
            help="BEIR-layout folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.",
        ),
    ],
    modes: Annotated[str, typer.Option(help="Comma-separated: dense, sparse, hybrid.")] = (
        "dense,sparse,hybrid"
    ),
    fusion: Annotated[str | None, typer.Option(help="Hybrid fusion: rrf or dbsf.")] = None,
    split: Annotated[str, typer.Option(help="Qrels file to score against.")] = "test",
    limit_queries: Annotated[
        int | None, typer.Option(min=1, help="Only the first N judged queries.")
    ] = None,
    max_docs: Annotated[
        int | None,
        typer.Option(min=0, help="Quick run: the kept queries' judged docs + the first N others."),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="Chunks retrieved per query.")] = 100,
    rerank: Annotated[
        int | None,
        typer.Option(min=2, help="Rerank the best N candidates with the local model."),
    ] = None,
    output: Output = None,
    data_dir: DataDir = None,
    mlflow: Mlflow = False,
) -> None:
    """Index a BEIR dataset into a scratch store and score dense, sparse and hybrid retrieval."""
    from rag.config import Fusion, RetrievalMode
    from rag.errors import RagError
    from rag.evaluation import evaluate_retrieval, load_beir, subset, write_retrieval_report
    from rag.evaluation.retrieval import flat_metrics, summary_lines, summary_table
    from rag.retrieval import SearchOptions

    started = time.perf_counter()
    chosen = cast("list[RetrievalMode]", _choices("--modes", modes, get_args(RetrievalMode)))
    if fusion is not None:
        _choices("--fusion", fusion, get_args(Fusion))
    options = SearchOptions(fusion=cast("Fusion | None", fusion))
    try:
        data = subset(
            load_beir(dataset, split=split), limit_queries=limit_queries, max_docs=max_docs
        )
        console.print(
            f"[bold]{data.name}[/bold] ({split}): {len(data.queries)} queries, "
            f"{len(data.corpus):,} documents; modes {', '.join(chosen)}"
            + (f"; reranking the best {rerank}" if rerank else "")
        )
        labels = {"ingest": "indexing documents", "query": f"querying ({', '.join(chosen)})"}
        with _scratch_runtime(data_dir, top_k, rerank) as runtime, _progress() as update:
            report = evaluate_retrieval(
                runtime,
                data,
                chosen,
                k_values=sorted({min(10, top_k), top_k}),
                top_k=top_k,
                options=options,
                progress=lambda stage, done, total: update(stage, labels[stage], done, total),
                keep_collection=data_dir is not None,
            )
            fusion_used = options.fusion or runtime.settings.retrieval.fusion
        header, rows = summary_table(report)
        _show(f"{report.dataset} ({report.split})", header, rows, summary_lines(report))
        paths = write_retrieval_report(report, output or Path("eval-results") / data.name)
        params = {"dataset": data.name, "split": split, "top_k": top_k, "fusion": fusion_used}
        params |= {"rerank_top_n": rerank or 0}
        params |= {"embedding_model": report.embedding_model, **report.chunking}
        _track(mlflow, f"retrieval-{data.name}", params, dict(flat_metrics(report)), paths)
    except RagError as exc:
        fail(exc.message)
    console.print(f"wrote {paths[1]} and {paths[0]} · {time.perf_counter() - started:.0f} s total")


@eval_app.command("answers")
def answers(
    dataset: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="JSONL: question, answer (reference), optional documents (supporting sources) "
            "and answerable (false for questions the documents don't answer).",
        ),
    ],
    corpus: Annotated[
        Path,
        typer.Option(
            exists=True,
            help="Folder of the documents to ask about, or a BEIR corpus.jsonl "
            "(documents named by their _id).",
        ),
    ],
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated catalog models to compare (`rag`'s GET /v1/models)."),
    ] = None,
    policies: Annotated[
        str | None, typer.Option(help="Comma-separated routing policies to compare.")
    ] = None,
    oracle: Annotated[
        bool,
        typer.Option(
            "--oracle",
            help="Verify each reference answer as if a model wrote it: how often verification "
            "keeps a correct answer.",
        ),
    ] = False,
    max_docs: Annotated[
        int | None,
        typer.Option(
            min=0, help="corpus.jsonl: the questions' documents plus the first N others only."
        ),
    ] = None,
    output: Output = None,
    data_dir: DataDir = None,
    mlflow: Mlflow = False,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Also add each model's figures (F1, citation precision, abstention, latency, "
            "cost, with the number of questions) to the model scoreboard in the service's "
            "database (RAG_DATABASE_URL), which `prefer: measured` policies route by. Off by "
            "default: the evaluation itself runs on scratch stores either way.",
        ),
    ] = False,
) -> None:
    """Ingest a folder, ask every question through the full query path, score the answers:
    with the default policy, or once per model / policy named (with --oracle, verify the
    reference answers instead of asking a model). With --record, the scores feed routing."""
    from rag.errors import RagError
    from rag.evaluation.answers import evaluate_answers, load_qa, summary_rows, write_answer_report
    from rag.evaluation.corpus import fresh_collection, index_corpus

    started = time.perf_counter()
    name = dataset.stem
    try:
        items = load_qa(dataset)
        with _scratch_runtime(data_dir) as runtime, _progress() as update:
            fresh_collection(runtime, "eval-answers", f"answer evaluation on {name}")
            errors = index_corpus(
                runtime,
                "eval-answers",
                corpus,
                wanted={d for item in items for d in item.documents},
                max_docs=max_docs,
                progress=lambda done, total: update("ingest", "indexing documents", done, total),
            )
            for error in errors:
                err.print(f"[yellow]skipped a document:[/yellow] {error}")
            runs: list[tuple[str | None, str | None]] = [(m, None) for m in split_list(models)]
            runs += [(None, p) for p in split_list(policies)]
            reports = []
            for model, policy in runs or [(None, None)]:
                label = f"answering ({model or policy or 'default policy'})"

                def on_progress(done: int, total: int, label: str = label) -> None:
                    update(label, label, done, total)

                reports.append(
                    evaluate_answers(
                        runtime.answerer,
                        "eval-answers",
                        items,
                        dataset=name,
                        model=model,
                        policy=policy,
                        oracle=oracle,
                        progress=on_progress,
                    )
                )
        header, rows = summary_rows(reports)
        _show(f"answers: {name}", header, rows, [f"{len(items)} questions"])
        paths = write_answer_report(reports, output or Path("eval-results") / name)
        for report in reports:
            params = {"dataset": name, "generator": report.generator, "corpus": str(corpus)}
            _track(mlflow, f"answers-{name}", params, {**report.metrics}, paths)
        if record:
            _record_scores(reports)
    except RagError as exc:
        fail(exc.message)
    console.print(f"wrote {paths[1]} and {paths[0]} · {time.perf_counter() - started:.0f} s total")


def _record_scores(reports: list[AnswerReport]) -> None:
    """Each report's per-model figures into the service's scoreboard (not the scratch one)."""
    from rag.config import Settings
    from rag.db.session import open_database
    from rag.evaluation.answers import scoreboard_figures
    from rag.scoreboard import Scoreboard

    db = open_database(Settings().sqlalchemy_url)
    try:
        board = Scoreboard(db)
        for report in reports:
            for figures in scoreboard_figures(report):
                board.record_eval(figures)
                console.print(
                    f"recorded {figures.model}: quality {figures.quality:.3f} over "
                    f"{figures.questions} questions"
                )
    finally:
        db.dispose()


# Registered last: the command's module reads this one's helpers when it runs.
from cli.eval_grounding import grounding  # noqa: E402

eval_app.command("grounding")(grounding)
