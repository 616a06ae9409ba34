"""The backend interface: one abstract method, registered under a name, chosen by a string.

offline                                  the local analytic comparator (default, no key, no network)
openai:<model>                           OpenAI chat model through LangChain (OPENAI_API_KEY)
openai-compatible:<model>@<base_url>     any OpenAI-compatible server (Ollama, vLLM, llama.cpp server)
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from compare.embedding import Embedder
from compare.errors import ConfigError
from compare.retrieval import Retrieved
from compare.settings import Settings
from compare.store import Filters
from compare.types import Comparison, Document


@dataclass
class AnalysisRequest:
    """Everything a backend may read. Quotes must be verified against `documents` (the stored texts)."""

    question: str
    target: str
    retrieved: Retrieved
    documents: dict[str, Document]
    filters: Filters = field(default_factory=Filters)
    #: True when the user stated the target (`--target`); a stated target may be a proposition to measure.
    target_given: bool = False
    #: Further stored documents of a source about a claim, within `filters` (set by the engine): read before
    #: a source is said not to address a claim. Documents it returns are added to `documents`.
    related: Callable[[str, str, int, set[str]], list[Document]] | None = None


@dataclass
class Estimate:
    """What a run would cost before anything is sent."""

    backend: str
    model: str | None
    prompt_tokens: int
    completion_tokens_max: int
    cost_usd: float
    calls: int
    notes: list[str] = field(default_factory=list)


class Backend(ABC):
    """Turns retrieved evidence into a Comparison. Subclasses fill everything except meta's common fields."""

    name: str = "backend"
    model: str | None = None

    @abstractmethod
    def compare(self, request: AnalysisRequest) -> Comparison:
        """Build the comparison; every Quote in it must come from compare.analysis.quotes."""

    def estimate(self, request: AnalysisRequest) -> Estimate:
        return Estimate(self.name, self.model, 0, 0, 0.0, 0, ["runs locally: no tokens, no cost"])


class BackendFactory(Protocol):
    """Builds a backend from what follows the spec's prefix. `api_key` is one given for this backend only
    (e.g. typed into the app); backends without keys ignore it."""

    def __call__(
        self, rest: str, settings: Settings, embedder: Embedder, api_key: str | None = None
    ) -> Backend: ...


_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(prefix: str) -> Callable[[BackendFactory], BackendFactory]:
    def decorate(factory: BackendFactory) -> BackendFactory:
        _REGISTRY[prefix] = factory
        return factory

    return decorate


def parse_backend_spec(spec: str) -> tuple[str, str]:
    """'openai:gpt-4o-mini' -> ('openai', 'gpt-4o-mini'); 'offline' -> ('offline', '')."""
    prefix, _, rest = spec.strip().partition(":")
    return prefix, rest


#: Where each built-in backend lives; imported on first use, so `offline` never pays for LangChain's import.
_BUILTIN_MODULES = {
    "offline": "compare.analysis.offline",
    "openai": "compare.analysis.llm",
    "openai-compatible": "compare.analysis.llm",
}


def get_backend(spec: str, settings: Settings, embedder: Embedder, *, api_key: str | None = None) -> Backend:
    prefix, rest = parse_backend_spec(spec)
    if prefix not in _REGISTRY and prefix in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[prefix])
    factory = _REGISTRY.get(prefix)
    if factory is None:
        raise ConfigError(
            f"unknown backend {spec!r}",
            hint="use offline, openai:MODEL or openai-compatible:MODEL@http://host:port/v1",
        )
    return factory(rest, settings, embedder, api_key)


_QUESTION_LEAD = re.compile(
    r"^\s*(how|what|why|when|where|who|which|did|does|do|is|are|was|were|has|have|had|can|will|should)\b"
    r"(\s+(did|does|do|is|are|was|were|has|have|had|the|a|an|sources|outlets))*\s*",
    re.IGNORECASE,
)
_QUESTION_TAIL = re.compile(
    r"\s*\b(change|changed|shift|shifted|evolve|evolved|differ|compare|say|said|report|reported|"
    r"describe|described|frame|framed|cover|covered)\b.*$",
    re.IGNORECASE,
)


def question_target(question: str) -> str:
    """The subject a stance is measured toward: the question without its wh-lead and verb tail."""
    core = _QUESTION_LEAD.sub("", question.strip().rstrip("?.! "))
    core = _QUESTION_TAIL.sub("", core).strip(" ,;:")
    return core or question.strip().rstrip("?")
