"""Secret-shaped strings never leave in an answer (rag.guard.secrets)."""

from __future__ import annotations

import pytest

from rag.guard.secrets import REDACTED, StreamRedactor, redact, redact_answer
from rag.models import Answer, Citation, Timings

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7Yq2b0Ck1kz\nabcdEFGH1234\n"
    "-----END RSA PRIVATE KEY-----"
)
SECRETS = {
    "rag_api_key": "rag_0a1b2c3d4e5f_" + "Zk3q9Vb2Lm8Xw4Pn7Rt1Ys6Ud0Fh5Gj2Kc9Ae3Bd7",
    "openai_key": "sk-proj-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90",
    "openai_legacy": "sk-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90Uv12",
    "anthropic_key": "sk-ant-api03-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78",
    "aws_access_key": "AKIA" + "IOSFODNN7EXAMPLE",
    "github_token": "ghp_" + "a" * 36,
    "github_pat": "github_pat_" + "11ABCDEFG0" + "x" * 72,
    "slack_token": "xoxb-" + "1234567890-0987654321-AbCdEfGhIjKl",
    "google_api_key": "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    + "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "private_key": PEM,
}
KINDS = {"openai_legacy": "openai_key", "github_pat": "github_token"}


@pytest.mark.parametrize(("name", "secret"), SECRETS.items())
def test_each_kind_is_redacted(name: str, secret: str) -> None:
    text, kinds = redact(f"The key is {secret} (keep it safe).")
    assert secret not in text and text == f"The key is {REDACTED} (keep it safe)."
    assert kinds == [KINDS.get(name, name)]


@pytest.mark.parametrize(
    "text",
    [
        "The fleet controller is written in Rust [1].",
        "Use the task-specific mask (risk-adjusted) for AKIA staining, see sk-5 and rag_docs.",
        "Leave is 30 days [1]. Ask HR about the eyJ prefix in tokens.",
    ],
)
def test_a_normal_answer_is_untouched(text: str) -> None:
    assert redact(text) == (text, [])


def stream(deltas: list[str]) -> tuple[list[str], list[str]]:
    redactor = StreamRedactor()
    shown = [redactor.feed(d) for d in deltas]
    shown.append(redactor.flush())
    return shown, redactor.kinds


@pytest.mark.parametrize("name", ["openai_key", "aws_access_key", "private_key", "jwt"])
def test_a_secret_split_over_deltas_is_never_shown(name: str) -> None:
    secret = SECRETS[name]
    text = f"Here it is: {secret} and that is all."
    for size in (1, 3, 7, 16):
        deltas = [text[i : i + size] for i in range(0, len(text), size)]
        shown, kinds = stream(deltas)
        joined = "".join(shown)
        assert joined == f"Here it is: {REDACTED} and that is all.", size
        assert kinds == [name]
        # No prefix of the secret longer than its fixed start was ever shown.
        assert all(secret[:12] not in piece for piece in shown)


def test_ordinary_words_stream_without_delay() -> None:
    shown, kinds = stream(["The ", "fleet ", "runs ", "Rust."])
    assert shown == ["The ", "fleet ", "runs ", "Rust.", ""] and kinds == []


def test_a_redacted_answer_names_the_kind_never_the_value() -> None:
    key = SECRETS["openai_key"]
    answer = Answer(
        question="q",
        answer=f"The key is {key}.",
        answerable=True,
        citations=[
            Citation(
                marker=1,
                chunk_id="c",
                document_id="d",
                source="s",
                title="t",
                section=None,
                page=None,
                snippet=f"key {key}",
                score=1.0,
            )
        ],
        cited_answer=f"The key is {key} [1].",
        model="m",
        timings=Timings(retrieval_ms=0, total_ms=0),
    )
    guarded = redact_answer(answer)
    assert key not in guarded.model_dump_json()
    assert guarded.redacted == ["openai_key"]
    assert guarded.cited_answer == f"The key is {REDACTED} [1]."
    clean = answer.model_copy(update={"answer": "x", "cited_answer": "x", "citations": []})
    assert redact_answer(clean) is clean
