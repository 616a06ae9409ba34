"""One settings object for the whole tool: defaults < .env < NCOMPARE_* environment < CLI flags."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from compare.errors import ConfigError

APP_NAME = "narrative-compare"


class ChunkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    encoding: str = Field(default="cl100k_base", description="tiktoken encoding used to measure chunk size.")
    max_tokens: int = Field(
        default=180,
        ge=32,
        le=2000,
        description="Largest chunk in tiktoken tokens. 180 keeps chunks under MiniLM's 256 word pieces.",
    )
    overlap_tokens: int = Field(
        default=30, ge=0, le=500, description="Tokens of context repeated between consecutive chunks."
    )


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_chars: int = Field(default=200, ge=1, description="Clean texts shorter than this are refused.")
    max_file_mb: float = Field(default=25.0, gt=0, description="Files larger than this are refused.")
    url_timeout_s: float = Field(default=15.0, gt=0, description="Timeout for each URL fetch, in seconds.")
    url_max_mb: float = Field(default=10.0, gt=0, description="Largest response body accepted from a URL.")
    url_max_redirects: int = Field(default=5, ge=0, description="Redirects followed before giving up.")
    allow_private: bool = Field(
        default=False, description="Allow URLs on private, loopback and link-local addresses."
    )
    near_duplicate_jaccard: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Word 5-shingle Jaccard above which two documents count as near-duplicates.",
    )
    batch_chunks: int = Field(default=64, ge=1, description="Chunks embedded and written per batch.")


#: How the LLM backend may ask a server for JSON (compare/analysis/structured.py); "auto" negotiates.
STRUCTURED_METHODS = ("auto", "json_schema", "json_object_schema", "function_calling", "json_mode", "prompt")
#: The same, in words for people (the app's choices, the README's table).
METHOD_LABELS = {
    "auto": "auto (find what the server accepts)",
    "json_schema": "json_schema response format",
    "json_object_schema": "json_object with the schema (llama.cpp)",
    "function_calling": "a forced tool call",
    "json_mode": "json_object, schema in the prompt",
    "prompt": "JSON asked for in the prompt",
}


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(
        default="compare@1", description="Prompt name@version from prompts/ for LLM backends."
    )
    temperature: float = Field(default=0.0, ge=0, le=2, description="Sampling temperature.")
    timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one LLM call, in seconds.")
    max_retries: int = Field(default=3, ge=0, le=10, description="Retries on 429/5xx/timeouts, with backoff.")
    context_tokens: int = Field(
        default=16000,
        ge=1000,
        description="Prompt budget per call; evidence is trimmed to fit, never instructions.",
    )
    max_output_tokens: int = Field(
        default=4000,
        ge=100,
        description="Completion budget per call (one call may analyse and compare several sources).",
    )
    evidence_tokens_per_source: int = Field(
        default=200,
        ge=100,
        description="Evidence shown per source, in tokens: the retrieved chunks' sentences most relevant to "
        "the question, with their articles' fences.",
    )
    min_evidence_tokens_per_call: int = Field(
        default=400,
        ge=0,
        description="Evidence shown in a call of few sources, at least: a one-source call shows this much "
        "of its source, more than evidence_tokens_per_source.",
    )
    sources_per_call: int = Field(
        default=4,
        ge=1,
        le=20,
        description="Sources analysed in one call. When one call holds every source it also compares them; "
        "otherwise a reduce call compares the calls' compact analyses.",
    )
    max_sources: int = Field(
        default=8,
        ge=1,
        description="Most sources analysed for one question; beyond it the sources with the weakest top "
        "passage are left out, with a warning.",
    )
    weak_source_margin: float = Field(
        default=0.15,
        ge=0,
        le=2,
        description="When more than max_sources sources are retrieved, sources whose top passage scores this "
        "much (cosine) below the best source's are left out too.",
    )
    cache: bool = Field(default=True, description="Reuse cached responses (SQLite in the data dir).")
    price_table: Path | None = Field(
        default=None,
        description="YAML/JSON price table overriding the built-in dated one (USD per 1M tokens).",
    )
    structured_method: str = Field(
        default="auto",
        description="How to ask the server for JSON: auto (try json_schema, json_object_schema, "
        "function_calling, json_mode, prompt in turn and remember what the server accepts) or one of those.",
    )
    output_retries: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Re-asks after a reply that is empty, not JSON, or not the asked schema.",
    )

    @field_validator("structured_method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in STRUCTURED_METHODS:
            raise ValueError(
                f"{value!r} is not a structured-output method; use one of {', '.join(STRUCTURED_METHODS)}"
            )
        return value

    prompts_dir: Path | None = Field(
        default=None,
        description="Extra folder of prompt files (<name>.v<N>.yaml), searched before the shipped prompts/.",
    )


class JudgementSettings(BaseModel):
    """How many claims, documents and claim-passage pairs a comparison judges; bounds its cost."""

    model_config = ConfigDict(extra="forbid")

    max_claims: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Claims found in the sources and judged per question (besides the target).",
    )
    docs_per_source: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Documents of each source read per claim: those whose sentences are closest to the claim.",
    )
    omission_docs: int = Field(
        default=2,
        ge=0,
        le=20,
        description="Further stored documents of a source read before saying it does not address a claim.",
    )
    max_pairs: int = Field(
        default=64,
        ge=1,
        description="Claim-passage pairs the stance model reads per question, at most (claims are dropped "
        "from the least relevant up, with a warning).",
    )
    on_llm: bool = Field(
        default=True,
        description="With an LLM backend, take positions, agreements, differences, omissions and shifts from "
        "the measured judgement layer (the model writes summaries and per-source claims).",
    )
    gate_llm_labels: bool = Field(
        default=True,
        description="With an LLM backend, read every label the model gave that is shown (positions, "
        "agreements, differences, shifts, per-source claims) again with the local claim-stance model on its "
        "own verified quotes: a contested label says so and its confidence drops; meta.labels counts them.",
    )
    duplicate_claim_similarity: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Candidate claims at least this similar (cosine) to a chosen one are the same claim "
        "restated and are not listed again.",
    )


class Settings(BaseSettings):
    """Effective settings. Every field can be set as NCOMPARE_<FIELD> (nested: NCOMPARE_CHUNK__MAX_TOKENS)."""

    model_config = SettingsConfigDict(
        env_prefix="NCOMPARE_",
        env_file=".env",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)),
        description="Where the store, history and caches of one corpus live.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_cache_dir(APP_NAME)),
        description="Machine-wide cache for derived model files (quantized embedder, tiktoken BPE files).",
    )
    chroma_url: str | None = Field(
        default=None,
        description="http://host:port of a Chroma server (`chroma run`); unset means the embedded store.",
    )
    collection_prefix: str = Field(default="ncompare", description="Prefix of the Chroma collection names.")
    embedder: str = Field(
        default="minilm",
        description="Embedding model: 'minilm' (offline, int8 all-MiniLM-L6-v2) or 'openai:<model>'.",
    )
    embed_batch_size: int = Field(default=32, ge=1, le=512, description="Texts per embedding call.")
    embed_threads: int = Field(default=0, ge=0, description="onnxruntime intra-op threads; 0 = all cores.")
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL for the openai: embedder and LLM backends."
    )
    backend: str = Field(
        default="offline",
        description="Analysis backend: offline, openai:<model>, openai-compatible:<model>@<base_url>.",
    )
    k_per_source: int = Field(
        default=8, ge=1, le=50, description="Chunks retrieved per source for a question."
    )
    chunk: ChunkSettings = Field(default_factory=ChunkSettings, description="Chunking parameters.")
    llm: LLMSettings = Field(default_factory=LLMSettings, description="LLM backend parameters.")
    ingest: IngestSettings = Field(default_factory=IngestSettings, description="Ingestion limits.")
    judgement: JudgementSettings = Field(
        default_factory=JudgementSettings, description="Claims, documents and pairs judged per question."
    )

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with CLI flags applied; None means 'not given'."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return self.model_copy(update=given) if given else self

    def settings_hash(self) -> str:
        """Short hash of everything that changes results (not paths), recorded in every output."""
        relevant = self.model_dump(mode="json", exclude={"data_dir", "cache_dir", "chroma_url"})
        blob = json.dumps(relevant, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def describe(self) -> list[tuple[str, Any, str]]:
        """(name, value, description) rows for `ncompare config`."""
        rows: list[tuple[str, Any, str]] = []
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                for sub_name, sub_field in type(value).model_fields.items():
                    rows.append((f"{name}.{sub_name}", getattr(value, sub_name), sub_field.description or ""))
            else:
                rows.append((name, value, field.description or ""))
        return rows


def load_settings(**overrides: Any) -> Settings:
    """Settings from .env and NCOMPARE_* variables, then flags; a bad value is a ConfigError naming it."""
    try:
        settings = Settings()
    except ValidationError as error:
        raise settings_error(error) from None
    except SettingsError as error:
        raise _unparsable(error) from None
    return settings.with_overrides(**overrides)


#: How a pydantic error type reads after "NCOMPARE_X: 'value'"; bounds come from the error's context.
_PHRASES = {
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "float_parsing": "is not a number",
    "bool_parsing": "is not true or false",
    "extra_forbidden": "is not a setting",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
}


def settings_error(error: ValidationError) -> ConfigError:
    """One line per invalid value, each naming its variable: "NCOMPARE_K_PER_SOURCE: 'abc' is not an integer"."""
    problems = [_problem(detail) for detail in error.errors()]
    names = [env_name(detail["loc"]) for detail in error.errors()]
    message = problems[0] if len(problems) == 1 else "invalid settings:\n  " + "\n  ".join(problems)
    return ConfigError(message, hint=_fix_hint(names))


def env_name(loc: tuple[int | str, ...]) -> str:
    """The variable that sets a field: ("llm", "temperature") -> NCOMPARE_LLM__TEMPERATURE."""
    name = "__".join(str(part) for part in loc).upper()
    return name if name.startswith("NCOMPARE_") else f"NCOMPARE_{name}"


def _problem(detail: ErrorDetails) -> str:
    context = {
        key: f"{value:g}" if isinstance(value, float) else value
        for key, value in detail.get("ctx", {}).items()
    }
    known = _PHRASES.get(detail["type"])
    phrase = known.format(**context) if known else detail["msg"][:1].lower() + detail["msg"][1:]
    return f"{env_name(detail['loc'])}: {detail['input']!r} {phrase}"


def _fix_hint(names: list[str]) -> str:
    places = ", ".join(f"{name} ({_origin(name)})" for name in dict.fromkeys(names))
    return f"fix or remove {places}; `ncompare config` lists every setting and its meaning"


def _origin(name: str) -> str:
    """Where a variable was read: the environment wins over .env (nested ones may come whole, as JSON)."""
    if name in os.environ or name.split("__")[0] in os.environ:
        return "environment"
    return f"in {Path('.env').resolve()}"


def _unparsable(error: SettingsError) -> ConfigError:
    """A nested setting given whole (NCOMPARE_LLM='{...') whose JSON does not parse."""
    match = re.search(r'field "(\w+)"', str(error))
    name = env_name((match.group(1),)) if match else "an NCOMPARE_* variable"
    cause = f" ({error.__cause__})" if error.__cause__ else ""
    return ConfigError(
        f"{name}: unreadable value{cause}",
        hint=f"give it as JSON, or set one field at a time, e.g. {name}__<FIELD>=value",
    )
