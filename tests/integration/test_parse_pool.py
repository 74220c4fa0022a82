"""IsolatedParser with real child processes: same results and errors as parsing in-process, and
the time limit, the memory cap, crashes, recycling and concurrency (no mocks).

The parse functions below run in the child, which imports this module by name (`__name__`), so
they double as the "pathological documents": one hangs, one ignores SIGTERM, one eats memory.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.errors import BackendError, BackendUnavailable, RagError, UnreadableDocument
from rag.models import Element, ElementKind
from rag.parse_pool import IsolatedParser
from rag.parsing import parse_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples" / "docs"
FIXTURES = ROOT / "tests" / "fixtures"


def _reply(*texts: str) -> list[Element]:
    return [Element(kind=ElementKind.TEXT, text=t) for t in (str(os.getpid()), *texts)]


_PARSED: list[str] = []  # per child process


def _test_parse(path: Path, *, filename: str) -> list[Element]:
    """Behaves as `filename` says: "sleep-2.txt", "stubborn-60.txt", "eat-4096.txt", ..."""
    action, _, arg = Path(filename).stem.partition("-")
    if action == "stubborn":  # a parse stuck where SIGTERM is ignored
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if action in ("sleep", "stubborn"):
        time.sleep(float(arg))
    if action == "eat":  # grow 16 MiB at a time up to `arg` MiB, like a parser on a huge file
        hoard = [bytearray(16 << 20) for _ in range(int(arg) // 16)]
        return _reply(str(len(hoard)))
    if action == "env":
        return _reply(*(f"{k}={os.environ.get(k)}" for k in ("HF_HUB_OFFLINE", "DO_NOT_TRACK")))
    if action == "abort":
        os.abort()
    if action == "bug":
        raise ZeroDivisionError("division by zero")
    if action == "leaky":  # fails only in a child that parsed before (a cache grown too big)
        _PARSED.append(filename)
        if len(_PARSED) > 1:
            raise RuntimeError("out of room")
    if action == "backend":
        raise BackendError("the parser backend is down", backend="parser", retryable=True)
    return _reply()


TEST_PARSE = f"{__name__}:_test_parse"


def pid_of(elements: list[Element]) -> int:
    return int(elements[0].text)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def real() -> Iterator[IsolatedParser]:
    """One parser with the real parse function for the module: the child pays the imports once."""
    parser = IsolatedParser(timeout_s=120)
    yield parser
    parser.close()


@pytest.fixture
def fake() -> Iterator[IsolatedParser]:
    parser = IsolatedParser(timeout_s=30, max_memory_mb=1024, parse_fn=TEST_PARSE)
    yield parser
    parser.close()


@pytest.mark.parametrize(
    "path",
    [
        *sorted(SAMPLES.iterdir()),
        FIXTURES / "latin1.txt",
        FIXTURES / "cp932.csv",
    ],
    ids=lambda p: p.name,
)
def test_parses_like_in_process(real: IsolatedParser, path: Path) -> None:
    assert real(path, path.name) == parse_file(path, filename=path.name)


@pytest.mark.parametrize(
    ("path", "filename"),
    [
        (FIXTURES / "corrupt.pdf", "corrupt.pdf"),
        (FIXTURES / "encrypted.pdf", "encrypted.pdf"),
        (FIXTURES / "empty.txt", "empty.txt"),
        (FIXTURES / "binary.txt", "binary.txt"),
        (FIXTURES / "latin1.txt", "program.exe"),
    ],
    ids=lambda v: str(v).rsplit("/", 1)[-1],
)
def test_errors_come_back_as_in_process(real: IsolatedParser, path: Path, filename: str) -> None:
    with pytest.raises(RagError) as expected:
        parse_file(path, filename=filename)
    with pytest.raises(RagError) as got:
        real(path, filename)
    assert type(got.value) is type(expected.value)
    assert got.value.message == expected.value.message == str(got.value)


def test_error_attributes_survive(fake: IsolatedParser) -> None:
    with pytest.raises(BackendError) as got:
        fake(Path("x"), "backend.txt")
    assert type(got.value) is BackendError
    assert (got.value.message, got.value.backend, got.value.retryable) == (
        "the parser backend is down",
        "parser",
        True,
    )


def test_unexpected_errors_become_unreadable_and_replace_the_child(fake: IsolatedParser) -> None:
    first = pid_of(fake(Path("x"), "ok.txt"))
    with pytest.raises(
        UnreadableDocument, match=r"^the parser failed \(ZeroDivisionError: division by zero\)$"
    ):
        fake(Path("x"), "bug.txt")
    assert pid_of(fake(Path("x"), "ok.txt")) != first
    assert gone(first)


def test_a_failure_in_a_used_child_is_tried_again_in_a_fresh_one(fake: IsolatedParser) -> None:
    first = pid_of(fake(Path("x"), "leaky-1.txt"))
    second = pid_of(fake(Path("x"), "leaky-2.txt"))  # fails in `first`, then parses anew
    assert second != first and gone(first)


@pytest.mark.parametrize("action", ["sleep", "stubborn"])
def test_time_limit_kills_the_child_and_the_next_document_parses(action: str) -> None:
    parser = IsolatedParser(timeout_s=3, parse_fn=TEST_PARSE)
    try:
        first = pid_of(parser(Path("x"), "ok.txt"))
        started = time.monotonic()
        with pytest.raises(UnreadableDocument, match=r"^parsing took longer than 3 s \(the per-d"):
            parser(Path("x"), f"{action}-60.txt")
        # 3 s limit, plus 2 s of grace for SIGTERM when the child ignores it.
        assert time.monotonic() - started < 3 + 2 + 3
        assert gone(first)
        assert pid_of(parser(Path("x"), "ok.txt")) != first  # a fresh child
    finally:
        parser.close()


def test_memory_cap_stops_a_hungry_parse_and_the_next_document_parses(
    fake: IsolatedParser,
) -> None:
    assert fake(Path("x"), "eat-256.txt")[1].text == "16"  # well under the cap: fine
    first = pid_of(fake(Path("x"), "ok.txt"))
    message = r"^parsing needed more than 1024 MiB \(the per-document memory limit\)$"
    with pytest.raises(UnreadableDocument, match=message):
        fake(Path("x"), "eat-4096.txt")
    assert gone(first)
    assert pid_of(fake(Path("x"), "ok.txt")) != first


def test_a_crash_is_reported_and_the_next_document_parses(fake: IsolatedParser) -> None:
    with pytest.raises(UnreadableDocument, match=r"^the parser crashed \(killed by SIGABRT\)$"):
        fake(Path("x"), "abort.txt")
    assert fake(Path("x"), "ok.txt")


def test_a_child_killed_while_idle_is_replaced(fake: IsolatedParser) -> None:
    first = pid_of(fake(Path("x"), "ok.txt"))
    os.kill(first, signal.SIGKILL)  # the OOM killer, an operator...
    deadline = time.monotonic() + 10  # until it is a zombie (its parent reaps it, not us)
    while Path(f"/proc/{first}/stat").read_text().split(")")[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert pid_of(fake(Path("x"), "ok.txt")) != first


def test_children_are_recycled_after_n_documents() -> None:
    parser = IsolatedParser(recycle_after=2, parse_fn=TEST_PARSE)
    try:
        pids = [pid_of(parser(Path("x"), "ok.txt")) for _ in range(5)]
    finally:
        parser.close()
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert gone(pids[0]) and gone(pids[2])


def test_child_is_offline_whatever_the_parent_has(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    parser = IsolatedParser(parse_fn=TEST_PARSE)
    try:
        texts = [e.text for e in parser(Path("x"), "env.txt")[1:]]
    finally:
        parser.close()
    assert texts == ["HF_HUB_OFFLINE=1", "DO_NOT_TRACK=1"]


def test_a_parse_function_that_cannot_load_is_a_backend_error() -> None:
    parser = IsolatedParser(parse_fn="rag.parsing:no_such_function")
    try:
        with pytest.raises(BackendUnavailable, match=r"^the parser process did not start \(exit"):
            parser(Path("x"), "ok.txt")
    finally:
        parser.close()


def test_close_stops_the_children() -> None:
    parser = IsolatedParser(parse_fn=TEST_PARSE)
    pid = pid_of(parser(Path("x"), "ok.txt"))
    parser.close()
    assert gone(pid)
    with pytest.raises(RuntimeError, match="closed"):
        parser(Path("x"), "ok.txt")


def run_in_threads(parser: IsolatedParser, names: list[str]) -> list[list[Element]]:
    results: list[list[Element]] = [[] for _ in names]

    def work(i: int) -> None:
        path = SAMPLES / names[i] if (SAMPLES / names[i]).exists() else Path("x")
        results[i] = parser(path, names[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(names))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_workers_parse_at_the_same_time() -> None:
    parser = IsolatedParser(workers=2, parse_fn=TEST_PARSE)
    try:
        run_in_threads(parser, ["ok.txt", "ok.txt"])  # start both children
        started = time.monotonic()
        results = run_in_threads(parser, ["sleep-2.txt", "sleep-2.txt"])
        elapsed = time.monotonic() - started
    finally:
        parser.close()
    assert len({pid_of(r) for r in results}) == 2
    assert elapsed < 3.5  # two 2 s parses overlapped


def test_two_workers_parse_real_documents_like_in_process() -> None:
    names = ["annual-report-2025.pdf", "travel-policy.docx", "incident-response.html"]
    parser = IsolatedParser(workers=2)
    try:
        results = run_in_threads(parser, names)
    finally:
        parser.close()
    assert results == [parse_file(SAMPLES / n) for n in names]
