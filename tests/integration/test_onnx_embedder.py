"""The ONNX encoder: the same vectors and word pieces as sentence-transformers, and an export
cache that survives a changed model, two processes starting at once and a corrupt file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.embedding import packaged_model_path
from rag.embedding.onnx import OnnxEmbedder, cache_key, exported_model
from rag.embedding.sentence_transformers import SentenceTransformerEmbedder

TEXTS = [
    "Vitamin D deficiency is associated with an increased risk of fractures.",
    "Café déjà vu: naïve façades, Ærøskøbing and İstanbul.",
    "x",
    "",
    "BRCA1 mutations (c.68_69delAG) raise the odds ratio to 5.3 [95% CI 2.1-13.4].",
    " ".join(f"word{i} is part of a very long passage" for i in range(120)),  # > 256 tokens
    "数据库中的文档 and emoji 🚀 mixed in",
]


@pytest.fixture(scope="module")
def shared_cache() -> Path:
    return Path(os.environ["RAG_EMBEDDING__CACHE_DIR"])


def test_vectors_and_word_pieces_match_sentence_transformers(shared_cache: Path) -> None:
    onnx = OnnxEmbedder(cache_dir=shared_cache, batch_size=3)
    torch = SentenceTransformerEmbedder()
    mine, reference = np.array(onnx.embed_documents(TEXTS)), np.array(torch.embed_documents(TEXTS))
    cosines = (mine * reference).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines
    assert np.allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)
    assert np.allclose(onnx.embed_query(TEXTS[0]), reference[0], atol=1e-4)
    assert onnx.dimension == torch.dimension == 384
    assert onnx.model_name == torch.model_name
    for text in TEXTS:
        assert onnx.tokenize(text) == torch.tokenize(text)
    assert onnx.embed_documents([]) == []


def test_int8_is_close_and_named_apart(shared_cache: Path) -> None:
    int8 = OnnxEmbedder(cache_dir=shared_cache, quantize="int8")
    fp32 = OnnxEmbedder(cache_dir=shared_cache)
    cosines = (np.array(int8.embed_documents(TEXTS)) * np.array(fp32.embed_documents(TEXTS))).sum(1)
    assert cosines.min() >= 0.95, cosines
    assert int8.model_name.endswith("#int8") and int8.model_name != fp32.model_name


def _export_in_a_new_process(model_dir: Path, cache: Path) -> subprocess.Popen[str]:
    code = (
        "import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout);"
        "from pathlib import Path; from rag.embedding.onnx import exported_model;"
        f"print('->', exported_model(Path({str(model_dir)!r}), Path({str(cache)!r})))"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_two_processes_starting_at_once_export_once(tmp_path: Path) -> None:
    model_dir = Path(packaged_model_path())
    racers = [_export_in_a_new_process(model_dir, tmp_path) for _ in range(2)]
    outputs = [racer.communicate(timeout=600)[0] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], outputs
    assert sum("exporting the embedding model" in out for out in outputs) == 1, outputs
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "model.onnx", "model.onnx.sha256"]
    embedder = OnnxEmbedder(cache_dir=tmp_path)
    assert len(embedder.embed_query("loads")) == 384


def test_a_corrupt_export_is_made_again(tmp_path: Path, shared_cache: Path) -> None:
    model_dir = Path(packaged_model_path())
    good = exported_model(model_dir, shared_cache)
    copy = tmp_path / good.parent.name
    shutil.copytree(good.parent, copy)
    with (copy / "model.onnx").open("r+b") as f:  # a torn write: the first bytes survive
        f.truncate(good.stat().st_size // 3)
    rebuilt = exported_model(model_dir, tmp_path)
    assert rebuilt == copy / "model.onnx" and rebuilt.stat().st_size == good.stat().st_size
    reference = OnnxEmbedder(cache_dir=shared_cache).embed_query(TEXTS[0])
    assert np.allclose(OnnxEmbedder(cache_dir=tmp_path).embed_query(TEXTS[0]), reference)


def test_a_changed_model_gets_its_own_export(tmp_path: Path) -> None:
    packaged = Path(packaged_model_path())
    changed = tmp_path / "model"
    shutil.copytree(packaged, changed, symlinks=True)
    config = changed / "config.json"
    config.write_text(config.read_text().replace("{", '{\n  "note": "fine-tuned",', 1))
    assert cache_key(changed, "none") != cache_key(packaged, "none")
    assert cache_key(packaged, "int8") != cache_key(packaged, "none")
    export = exported_model(changed, tmp_path / "cache")
    assert export.parent.name == cache_key(changed, "none")
    assert OnnxEmbedder(str(changed), cache_dir=tmp_path / "cache").model_name == str(changed)


def test_a_model_it_cannot_export_is_a_clear_error(tmp_path: Path) -> None:
    from rag.errors import RagError

    broken = tmp_path / "model"
    shutil.copytree(Path(packaged_model_path()), broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(RagError, match="exporting .* to ONNX failed"):
        OnnxEmbedder(str(broken), cache_dir=tmp_path / "cache").embed_query("x")
    assert not list((tmp_path / "cache").glob("*/model.onnx*"))
