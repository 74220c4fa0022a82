from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import Settings


def test_embedded_defaults_need_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QDRANT_URL", "DATABASE_URL", "RAG_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.embedded_store and settings.run_embedded_worker
    assert settings.sqlalchemy_url.startswith("sqlite:///")
    assert settings.qdrant_path == settings.data_dir / "qdrant"


def test_well_known_variables_and_nested_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db/rag")
    monkeypatch.setenv("RAG_GENERATOR__MAX_TOKENS", "64")
    settings = Settings()
    assert settings.qdrant.url == "http://qdrant:6333"
    assert not settings.run_embedded_worker
    assert settings.sqlalchemy_url == "postgresql+psycopg://u:p@db/rag"
    assert settings.generator.max_tokens == 64


def test_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "rag.toml"
    config.write_text('log_level = "DEBUG"\n[retrieval]\ntop_k = 9\n')
    monkeypatch.setenv("RAG_CONFIG_FILE", str(config))
    monkeypatch.setenv("RAG_RETRIEVAL__MODE", "dense")
    settings = Settings()
    assert settings.retrieval.top_k == 9 and settings.log_level == "DEBUG"
    assert settings.retrieval.mode == "dense"  # the environment wins over the file


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNKING__OVERLAP_TOKENS", "500")
    with pytest.raises(ValueError, match="overlap_tokens"):
        Settings()
    monkeypatch.delenv("RAG_CHUNKING__OVERLAP_TOKENS")
    monkeypatch.setenv("RAG_CONFIG_FILE", "/nonexistent/rag.toml")
    with pytest.raises(ValueError, match="does not exist"):
        Settings()
