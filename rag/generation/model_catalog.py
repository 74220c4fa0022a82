"""The model catalog: every model the service may use, pinned, priced and labelled, plus policies.

A TOML file (`RAG_GENERATOR__CATALOG_FILE`) with one table per model and per policy:

    default_policy = "standard"     # used when a request names neither a model nor a policy
    extractive = true               # the no-LLM fallback ends every chain (false: 503 instead)

    [models.local]
    backend = "llama_cpp"           # packaged Gemma unless `path` names a GGUF
    quality = "fast"

    [models.qwen]
    backend = "llama_cpp"
    packaged = "qwen2.5-coder-1.5b" # a pinned GGUF from PyPI (rag.generation.packaged)
    prompt_format = "chat"          # its default: chat for instruct models, else completion

    [models.gpt]
    backend = "openai"
    model = "gpt-4o-mini-2024-07-18"    # an exact version, never a floating alias
    api_key_env = "OPENAI_API_KEY"      # secrets only ever come from the environment
    input_usd_per_mtok = 0.15
    output_usd_per_mtok = 0.60
    latency_ms = 1500

    [policies.standard]
    sensitivity = "internal"
    models = ["gpt", "local"]       # explicit fallback order

Without a file the catalog is built in: the llama.cpp model of `GeneratorSettings` (named
`local`), the packaged instruct models that are installed (`qwen-1.5b`, `qwen-0.5b`) and the
extractive fallback, under a `default` policy of `qwen-0.5b`, then `local`, then the extractive.
`qwen-0.5b` leads because it measured better than Gemma 270M on long answers (README, "Models
and routing") while answering in a few seconds on 2 cores; when `local` is configured
(`RAG_GENERATOR__MODEL_PATH` or `__PACKAGED`), or the 0.5B is not installed, `local` leads.

Data residency: `self_hosted` says whether the text we send stays on machines we run.
`max_sensitivity` is the most sensitive request a model may see: `private` is only allowed for
self-hosted models (and is their default); closed APIs default to `internal`; a model marked
`public` sees only requests that say their data is public.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from rag.errors import ConfigError
from rag.generation import packaged as packaged_models
from rag.generation.prompts import PromptFormat

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.embedding import Embedder
    from rag.generation import Generator

Backend = Literal["llama_cpp", "openai_compat", "openai", "anthropic", "gemini", "extractive"]
Quality = Literal["fast", "balanced", "best"]
Sensitivity = Literal["public", "internal", "private"]
Preference = Literal["order", "cost", "latency", "quality", "measured"]
PiiHandling = Literal["mask", "block", "allow"]

QUALITY_RANK: dict[str, int] = {"fast": 0, "balanced": 1, "best": 2}
SENSITIVITY_RANK: dict[str, int] = {"public": 0, "internal": 1, "private": 2}
IN_PROCESS: frozenset[str] = frozenset({"llama_cpp", "extractive"})
CLOSED: frozenset[str] = frozenset({"openai", "anthropic", "gemini"})
EXTRACTIVE = "extractive"
LOCAL = "local"
DEFAULT_POLICY = "default"
DETERMINISTIC, SELF = "deterministic", "self"
VERIFIER_KINDS = (DETERMINISTIC, SELF)
_FLOATING = ("latest", "-preview", ":latest")


class ModelEntry(BaseModel):
    """One model. Prices are USD per million tokens; `latency_ms` is a typical full answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    backend: Backend
    model: str | None = Field(
        default=None, description="The exact model version sent to the API (llama_cpp: its id)."
    )
    path: Path | None = Field(default=None, description="llama_cpp: the GGUF file.")
    packaged: str | None = Field(
        default=None, description="llama_cpp: a packaged GGUF by name (not with `path`)."
    )
    prompt_format: PromptFormat | None = Field(
        default=None,
        description="llama_cpp: completion or chat; unset = chat for packaged instruct models, "
        "else completion.",
    )
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, description="Environment variable of the key.")
    context_window: int = Field(default=8192, ge=256)
    input_usd_per_mtok: float = Field(default=0.0, ge=0)
    output_usd_per_mtok: float = Field(default=0.0, ge=0)
    self_hosted: bool | None = None
    max_sensitivity: Sensitivity | None = None
    quality: Quality = "balanced"
    latency_ms: float | None = Field(default=None, gt=0)
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0, le=2)
    api: Literal["chat", "completions"] = Field(
        default="chat", description="openai_compat: chat for instruction models, else completions."
    )
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    threads: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> ModelEntry:
        b = self.backend
        if b not in IN_PROCESS and not self.model:
            raise ValueError(f"a {b} model needs `model`, its exact pinned version")
        if b in CLOSED:
            if not self.api_key_env:
                raise ValueError(f"a {b} model needs `api_key_env`, the variable holding its key")
            if self.self_hosted:
                raise ValueError(f"a {b} model runs at {b}: it cannot be self_hosted")
            if self.model and self.model.lower().endswith(_FLOATING):
                raise ValueError(f"model {self.model!r} is a floating alias; pin an exact version")
        if b == "openai_compat":
            if not self.base_url:
                raise ValueError("an openai_compat model needs `base_url`")
            if self.self_hosted is None:
                raise ValueError(
                    "an openai_compat model must say `self_hosted = true/false` (data residency)"
                )
        if b != "llama_cpp":
            for field in ("path", "packaged", "prompt_format"):
                if getattr(self, field) is not None:
                    raise ValueError(f"`{field}` is for llama_cpp models only")
        if self.packaged is not None:
            if self.path is not None:
                raise ValueError("`packaged` and `path` are exclusive: name one GGUF")
            if self.packaged not in packaged_models.PACKAGED:
                raise ValueError(
                    f"unknown packaged model {self.packaged!r}; the packaged models are: "
                    + ", ".join(packaged_models.PACKAGED)
                )
        if self.max_sensitivity == "private" and not self.is_self_hosted:
            raise ValueError("only a self_hosted model may see private data")
        return self

    @property
    def is_self_hosted(self) -> bool:
        return self.self_hosted if self.self_hosted is not None else self.backend in IN_PROCESS

    @property
    def sensitivity_ceiling(self) -> Sensitivity:
        if self.max_sensitivity is not None:
            return self.max_sensitivity
        return "private" if self.is_self_hosted else "internal"

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok
        ) / 1_000_000


class Policy(BaseModel):
    """What a request allows. Budgets and tiers filter models; `prefer` orders the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sensitivity: Sensitivity = Field(
        default="internal", description="private: only self-hosted models may see the passages."
    )
    max_cost_usd: float | None = Field(default=None, ge=0, description="Estimated, per answer.")
    max_latency_ms: float | None = Field(
        default=None, gt=0, description="Latency hint ceiling; also each call's timeout."
    )
    quality: Quality | None = Field(default=None, description="The lowest tier acceptable.")
    models: list[str] | None = Field(
        default=None, min_length=1, description="Explicit fallback order (catalog names)."
    )
    prefer: Preference = Field(
        default="order",
        description="order (catalog's or `models`), cost, latency, quality, or measured (the "
        "scoreboard's upper confidence bound: evaluations and feedback; unscored models last).",
    )
    verifier: str | None = Field(
        default=None,
        description="Who checks the answer's claims: deterministic, a catalog model, or self "
        "(the model that answered); unset = the service's default (verification.verifier).",
    )
    pii: PiiHandling = Field(
        default="block",
        description="A model whose max_sensitivity is below the data's: block (the default: it "
        "is not eligible), mask (it is sent the prompt with personal data replaced by "
        "placeholders, restored in its answer: detection can miss, so this is opted into) or "
        "allow (nothing masked: routing by sensitivity alone, as block; allow never lifts a "
        "model's max_sensitivity).",
    )


class ModelCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelEntry] = Field(min_length=1)
    policies: dict[str, Policy] = Field(default_factory=dict)
    default_policy: str = DEFAULT_POLICY
    extractive: bool = Field(default=True, description="End every chain with the extractive.")

    @model_validator(mode="before")
    @classmethod
    def _named(cls, data: Any) -> Any:
        """Table keys are the names: `[models.gpt]` is the model `gpt`."""
        if isinstance(data, dict) and isinstance(data.get("models"), dict):
            models = {
                key: ({"name": key} | value) if isinstance(value, dict) else value
                for key, value in data["models"].items()
            }
            data = data | {"models": models}
        return data

    @model_validator(mode="after")
    def _complete(self) -> ModelCatalog:
        for key, entry in self.models.items():
            if entry.name != key:
                raise ValueError(f"models.{key}: `name` must be the table's key")
        if self.extractive and self.extractive_entry is None:
            if EXTRACTIVE in self.models:
                raise ValueError(f"models.{EXTRACTIVE}: the name is kept for the extractive")
            self.models[EXTRACTIVE] = ModelEntry(
                name=EXTRACTIVE, backend="extractive", quality="fast", latency_ms=50
            )
        if DEFAULT_POLICY not in self.policies:
            self.policies[DEFAULT_POLICY] = Policy()
        for name, policy in self.policies.items():
            unknown = [m for m in policy.models or [] if m not in self.models]
            if unknown:
                raise ValueError(f"policies.{name}: unknown models {unknown}")
            problem = self.verifier_problem(policy.verifier)
            if problem:
                raise ValueError(f"policies.{name}: {problem}")
        if self.default_policy not in self.policies:
            raise ValueError(
                f"default_policy {self.default_policy!r} is not among policies "
                f"{sorted(self.policies)}"
            )
        return self

    def verifier_problem(self, verifier: str | None) -> str | None:
        """Why `verifier` cannot check answers, or None (see `Policy.verifier`)."""
        if verifier is None or verifier in VERIFIER_KINDS:
            return None
        entry = self.models.get(verifier)
        if entry is None:
            return (
                f"unknown verifier {verifier!r}: use {' or '.join(VERIFIER_KINDS)} "
                f"or a model: {', '.join(m for m in self.models if m != EXTRACTIVE)}"
            )
        if entry.backend == "extractive":
            return "the extractive cannot verify: it writes no judgement"
        return None

    @property
    def extractive_entry(self) -> ModelEntry | None:
        if not self.extractive:
            return None
        return next((e for e in self.models.values() if e.backend == "extractive"), None)


def _one_line(error: ValidationError, source: str) -> ConfigError:
    problems = []
    for e in error.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return ConfigError(f"invalid model catalog {source}: " + "; ".join(problems))


def parse_catalog(data: Mapping[str, Any], *, source: str = "") -> ModelCatalog:
    try:
        return ModelCatalog.model_validate(dict(data))
    except ValidationError as exc:
        raise _one_line(exc, source) from None


# Packaged instruct models the built-in catalog lists when installed: name → (packaged, quality).
BUILTIN_PACKAGED: dict[str, tuple[str, Quality]] = {
    "qwen-1.5b": ("qwen2.5-coder-1.5b", "balanced"),
    "qwen-0.5b": ("qwen2.5-coder-0.5b", "fast"),
}
BUILTIN_DEFAULT = "qwen-0.5b"
"""What the built-in default policy tries first, unless `local` is configured."""


def builtin_catalog(settings: Settings) -> dict[str, Any]:
    """`local` (`GeneratorSettings`) and the installed packaged instruct models; the default
    policy is BUILTIN_DEFAULT then `local` (then the extractive), or `local` alone when it is
    configured: a model the operator set up is the one that answers."""
    g = settings.generator
    common: dict[str, Any] = {
        "backend": "llama_cpp",
        "max_tokens": g.max_tokens,
        "temperature": g.temperature,
        "threads": g.threads,
    }
    local = common | {
        "model": g.model_id,
        "path": g.model_path,
        "packaged": g.packaged,
        "context_window": g.context_window,
        "quality": "fast",
    }
    models: dict[str, Any] = {LOCAL: local}
    for name, (packaged, quality) in BUILTIN_PACKAGED.items():
        if packaged_models.installed(packaged):
            # They read 32k tokens; 4k keeps the KV cache (and so memory) small.
            models[name] = common | {
                "packaged": packaged,
                "context_window": 4096,
                "quality": quality,
            }
    configured = g.model_path is not None or g.packaged is not None
    chain = [LOCAL] if configured or BUILTIN_DEFAULT not in models else [BUILTIN_DEFAULT, LOCAL]
    return {"models": models, "policies": {DEFAULT_POLICY: {"models": chain}}}


def load_catalog(settings: Settings) -> ModelCatalog:
    """The configured catalog, validated; `ConfigError` names the bad entry or setting."""
    path = settings.generator.catalog_file
    if path is None:
        data, source = builtin_catalog(settings), "(built in)"
    else:
        source = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"model catalog {path} cannot be read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"model catalog {path} is not valid TOML: {exc}") from None
    if settings.generator.default_policy:
        data = dict(data) | {"default_policy": settings.generator.default_policy}
    return parse_catalog(data, source=source)


def resolve_secrets(
    catalog: ModelCatalog, secret: Callable[[str], SecretStr | None]
) -> dict[str, SecretStr]:
    """Each model's API key from its `api_key_env`; a missing one is a `ConfigError` at startup."""
    keys: dict[str, SecretStr] = {}
    missing: list[str] = []
    for entry in catalog.models.values():
        if not entry.api_key_env:
            continue
        value = secret(entry.api_key_env)
        if value is None:
            missing.append(f"{entry.api_key_env} (model {entry.name!r})")
        else:
            keys[entry.name] = value
    if missing:
        raise ConfigError(
            "missing API key: set the environment variable " + ", ".join(missing) + " or remove "
            "the model from the catalog"
        )
    return keys


def build_generator(
    entry: ModelEntry,
    *,
    api_key: SecretStr | None = None,
    embedder: Embedder | None = None,
    timeout_s: float | None = None,
) -> Generator:
    """The adapter for `entry`; constructing one is cheap (clients and models load on use)."""
    key = api_key.get_secret_value() if api_key else None
    timeout = min(timeout_s, entry.timeout_s) if timeout_s else entry.timeout_s
    if entry.backend == "llama_cpp":
        from rag.generation.llama_cpp import LlamaCppGenerator

        return LlamaCppGenerator(
            entry.path,
            packaged_name=entry.packaged,
            prompt_format=entry.prompt_format,
            model_id=entry.model,
            context_window=entry.context_window,
            max_tokens=entry.max_tokens,
            temperature=entry.temperature,
            threads=entry.threads,
        )
    if entry.backend == "extractive":
        from rag.generation.extractive import ExtractiveGenerator

        return ExtractiveGenerator(embedder=embedder)
    assert entry.model is not None  # checked by ModelEntry
    if entry.backend in ("openai", "openai_compat"):
        from rag.generation.openai_compat import OPENAI_BASE_URL, OpenAICompatGenerator

        field = entry.max_tokens_field or (
            "max_completion_tokens" if entry.backend == "openai" else "max_tokens"
        )
        return OpenAICompatGenerator(
            entry.model,
            base_url=entry.base_url or OPENAI_BASE_URL,
            api_key=key,
            api=entry.api,
            max_tokens=entry.max_tokens,
            temperature=entry.temperature,
            timeout_s=timeout,
            max_tokens_field=field,
            backend=entry.backend,
        )
    if entry.backend == "anthropic":
        from rag.generation.anthropic_api import ANTHROPIC_BASE_URL, AnthropicGenerator

        return AnthropicGenerator(
            entry.model,
            api_key=key,
            base_url=entry.base_url or ANTHROPIC_BASE_URL,
            max_tokens=entry.max_tokens,
            temperature=entry.temperature,
            timeout_s=timeout,
        )
    from rag.generation.gemini_api import GeminiGenerator

    return GeminiGenerator(
        entry.model,
        api_key=key,
        base_url=entry.base_url,
        max_tokens=entry.max_tokens,
        temperature=entry.temperature,
        timeout_s=timeout,
    )
