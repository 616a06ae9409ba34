"""The LLM backend: `openai:<model>` and `openai-compatible:<model>@<base_url>`, through LangChain's ChatOpenAI.

This is the only module that imports LangChain (and the openai client's error types).

Map, then reduce, so long corpora fit:

1. map, one call per source: the source's retrieved passages (overlapping chunks merged, text read from the
   stored document) are fenced as data (prompts.EVIDENCE_OPEN/CLOSE, with doc_id, source, date, title) and
   trimmed to the token budget, lowest-ranked passages first; the instructions are never trimmed. The answer
   (SourceAnalysis) gives a summary, a stance toward the target, key claims with proposed quotes, and dated
   positions.
2. Every proposed quote goes through verify_quote against the stored document its doc_id names; a doc_id that
   was not shown in that call counts as unverified. The model never marks a quote verified.
3. reduce, one call over the per-source analyses (claims with ids and their verified quotes, fenced as data):
   agreements and differences refer to claim ids, so their quotes are the claims' verified quotes; shifts
   propose quotes, which are verified like any other.

Kept and dropped (counts in meta.quotes, a warning when anything was dropped):
- a quote that verify_quote leaves `unverified` is never shown (unverified_dropped; wrong_document when its
  doc_id was not among the passages shown, unknown_document when no such document is stored);
- a claim left without a verified or repaired quote is dropped (claims_dropped_unquoted), so is a dated
  position (it is only reduce input);
- an agreement is kept only when verified claims of two or more sources back it (agreements_dropped);
- a difference keeps its positions of known sources, each with the verified quotes of that source's claims;
  a position without quotes is kept (e.g. `unrelated`), a difference without any quoted position is dropped
  (differences_dropped);
- omissions carry no quotes: unknown source names are removed, one left without both sides is dropped;
- a shift needs both quotes verified in documents of its source, before not later than after
  (shifts_dropped). Dates are the stored documents' dates, never the model's; the earlier point of a change
  reported inside one article has no date of its own and is shown undated.

Errors: transport problems (429, 5xx, timeouts, refused connections) are retried by the openai client
(settings.llm.max_retries, exponential backoff, Retry-After honoured), then become ModelError; a rejected key
is a ConfigError; an empty, non-JSON or off-schema reply is re-asked settings.llm.output_retries times, then
LLMOutputError. A source whose map answer stays unusable is left out with a warning (the run fails only when
every source fails); an unusable reduce answer leaves the cross-source sections empty, with a warning.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast, get_args

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, SecretStr, ValidationError

from compare import __version__
from compare.analysis.base import AnalysisRequest, Backend, Estimate, register_backend
from compare.analysis.llm_cache import CACHE_FILE, ResponseCache, cache_key
from compare.analysis.pricing import PriceTable, load_price_table
from compare.analysis.prompts import (
    ANALYSIS_CLOSE,
    ANALYSIS_OPEN,
    EVIDENCE_CLOSE,
    EVIDENCE_OPEN,
    Message,
    Prompt,
    fence,
    load_prompt,
    prompt_directories,
)
from compare.analysis.quotes import QuoteStats, verify_quote
from compare.chunking import get_encoding
from compare.embedding import Embedder
from compare.errors import CompareError, ConfigError, LLMOutputError, ModelError
from compare.retrieval import DocumentEvidence
from compare.settings import LLMSettings, Settings
from compare.types import (
    Agreement,
    Claim,
    ClaimStanceLabel,
    Comparison,
    ComparisonMeta,
    Difference,
    DocRef,
    Document,
    Omission,
    Position,
    Quote,
    Shift,
    ShiftPoint,
    SourceView,
    Stance,
    StanceLabel,
)

StructuredMethod = Literal["json_schema", "function_calling", "json_mode"]
STRUCTURED_METHODS: tuple[str, ...] = get_args(StructuredMethod)
#: Sent as the API key to openai-compatible servers when OPENAI_API_KEY is unset (local servers need none).
PLACEHOLDER_API_KEY = "not-needed"
API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
#: A stance under this confidence is flagged low_confidence.
LOW_CONFIDENCE = 0.5
#: Models whose tokenizer is o200k_base; everything else (incl. unknown local models) is counted with cl100k.
_O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "gpt-oss")

# -- response schemas (flat: strings, lists, enums; converted into compare.types below) ------------------


class ProposedQuote(BaseModel):
    doc_id: str = Field(description="doc_id of the passage, exactly as in its fence")
    text: str = Field(description="verbatim span copied from that passage")


class ProposedClaim(BaseModel):
    claim: str = Field(description="the claim in one sentence of your own")
    quotes: list[ProposedQuote] = Field(description="one or two verbatim quotes stating it")


class DatedPosition(BaseModel):
    doc_id: str = Field(description="doc_id of the article")
    date: str = Field(description="the article's date from its fence, or empty")
    stance: StanceLabel
    position: str = Field(description="the position in a few words")
    quote: str = Field(description="verbatim span from that article showing it")


class SourceAnalysis(BaseModel):
    """The map answer for one source."""

    summary: str = Field(description="two to four sentences on how this source tells the story")
    stance: StanceLabel = Field(description="stance toward the target")
    confidence: float = Field(description="0 to 1")
    stance_quotes: list[ProposedQuote] = Field(description="one or two verbatim quotes showing the stance")
    claims: list[ProposedClaim] = Field(description="up to six key claims")
    positions: list[DatedPosition] = Field(description="dated positions on the target, oldest first")


class AgreementItem(BaseModel):
    claim: str = Field(description="the shared claim in one sentence")
    claim_ids: list[str] = Field(description="ids of the claims, from two or more sources, that make it")


class PositionItem(BaseModel):
    source: str
    position: ClaimStanceLabel
    claim_ids: list[str] = Field(description="ids of this source's claims that show its position")


class DifferenceItem(BaseModel):
    claim: str = Field(description="what the sources differ on, in one sentence")
    positions: list[PositionItem]


class OmissionItem(BaseModel):
    claim: str
    reported_by: list[str]
    not_reported_by: list[str]


class ShiftPointItem(BaseModel):
    doc_id: str
    date: str = Field(description="the document's date, or empty")
    stance: StanceLabel
    quote: str = Field(description="verbatim, copied from that source's quotes")


class ShiftItem(BaseModel):
    source: str
    topic: str
    description: str = Field(description="one line: what changed")
    before: ShiftPointItem
    after: ShiftPointItem
    confidence: float = Field(description="0 to 1")


class CrossSourceAnalysis(BaseModel):
    """The reduce answer."""

    agreements: list[AgreementItem]
    differences: list[DifferenceItem]
    omissions: list[OmissionItem]
    shifts: list[ShiftItem]


Answer = TypeVar("Answer", bound=BaseModel)


def schema_outline(model: type[BaseModel]) -> str:
    """A compact JSON picture of a response schema for the prompt (json_mode sends no schema otherwise)."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})

    def outline(node: dict[str, Any]) -> Any:
        if "$ref" in node:
            return outline(definitions[node["$ref"].rsplit("/", 1)[-1]])
        if "enum" in node:
            return "|".join(str(v) for v in node["enum"])
        if node.get("type") == "object":
            return {key: outline(value) for key, value in node.get("properties", {}).items()}
        if node.get("type") == "array":
            return [outline(node.get("items", {}))]
        if node.get("type") == "number":
            return 0.0
        return f"<{node.get('description', 'text')}>"

    return json.dumps(outline(schema), ensure_ascii=False)


# -- backend spec and credentials ----------------------------------------------------------------------


@dataclass(frozen=True)
class LLMTarget:
    """Which model, where: parsed from `openai:<model>` or `openai-compatible:<model>@<base_url>`."""

    provider: Literal["openai", "openai-compatible"]
    model: str
    base_url: str | None

    @property
    def spec(self) -> str:
        if self.provider == "openai-compatible":
            return f"{self.provider}:{self.model}@{self.base_url}"
        return f"{self.provider}:{self.model}"

    @property
    def where(self) -> str:
        return self.base_url or "api.openai.com"


_COMPATIBLE = re.compile(r"^(?P<model>[^@\s]+)@(?P<url>https?://\S+)$")


def parse_llm_spec(spec: str, settings: Settings) -> LLMTarget:
    """`openai:gpt-4o-mini` (base URL from settings.openai_base_url or OPENAI_BASE_URL, else OpenAI's) or
    `openai-compatible:llama3@http://127.0.0.1:8080/v1` (the URL is part of the spec)."""
    provider, _, rest = spec.strip().partition(":")
    rest = rest.strip()
    configured = settings.openai_base_url or os.environ.get(BASE_URL_ENV) or None
    if provider == "openai" and rest:
        return LLMTarget("openai", rest, configured)
    if provider == "openai-compatible":
        match = _COMPATIBLE.match(rest)
        if match:
            return LLMTarget("openai-compatible", match.group("model"), match.group("url").rstrip("/"))
        if rest and "@" not in rest and configured:
            return LLMTarget("openai-compatible", rest, configured)
    raise ConfigError(
        f"invalid LLM backend {spec!r}",
        hint="use openai:MODEL (e.g. openai:gpt-4o-mini) or openai-compatible:MODEL@http://host:port/v1",
    )


def resolve_api_key(target: LLMTarget) -> str:
    """OPENAI_API_KEY from the environment; openai-compatible servers get a placeholder when it is unset."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if key:
        return key
    if target.provider == "openai-compatible":
        return PLACEHOLDER_API_KEY
    raise ConfigError(
        f"{API_KEY_ENV} is not set: the {target.spec} backend needs an OpenAI API key",
        hint=f"export {API_KEY_ENV}=sk-...; or use a local server (openai-compatible:MODEL@http://127.0.0.1:8080/v1) "
        "or the offline backend",
    )


def _structured_method(value: str) -> StructuredMethod:
    if value not in STRUCTURED_METHODS:
        raise ConfigError(
            f"unknown structured-output method {value!r}",
            hint=f"set NCOMPARE_LLM__STRUCTURED_METHOD to one of {', '.join(STRUCTURED_METHODS)}",
        )
    return value  # type: ignore[return-value]


# -- tokens --------------------------------------------------------------------------------------------


def encoding_name(model: str) -> str:
    """tiktoken encoding of a model: o200k_base for the GPT-4o/4.1/5 and o-series families, else cl100k_base."""
    name = model.lower().removeprefix("openai/")
    return "o200k_base" if name.startswith(_O200K_PREFIXES) else "cl100k_base"


class TokenCounter:
    """Counts chat prompts the way OpenAI bills them: content plus a few tokens of framing per message."""

    def __init__(self, model: str) -> None:
        self.encoding_name = encoding_name(model)
        self._encoding = get_encoding(self.encoding_name)  # places the BPE files offline first

    def text(self, text: str) -> int:
        return len(self._encoding.encode(text, disallowed_special=()))

    def messages(self, messages: Sequence[Message]) -> int:
        return sum(3 + self.text(role) + self.text(content) for role, content in messages) + 3


# -- evidence ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    """A span of a stored document shown to the model; overlapping retrieved chunks are merged into one."""

    doc_id: str
    source: str
    date: str | None
    title: str | None
    start: int
    end: int
    text: str
    score: float

    def fenced(self) -> str:
        attributes = {"doc_id": self.doc_id, "source": self.source, "date": self.date, "title": self.title}
        return fence(EVIDENCE_OPEN, EVIDENCE_CLOSE, attributes, self.text)


def source_passages(evidence: Sequence[DocumentEvidence], documents: dict[str, Document]) -> list[Passage]:
    """The passages of one source in reading order: by document (as retrieved: by date), then by offset."""
    passages: list[Passage] = []
    for item in evidence:
        doc = documents.get(item.doc_id)
        spans: list[list[Any]] = []  # [start, end, score, text]
        for hit in sorted(item.hits, key=lambda h: h.char_start):
            if doc is not None and spans and hit.char_start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], hit.char_end)
                spans[-1][2] = max(spans[-1][2], hit.score)
            else:
                spans.append([hit.char_start, hit.char_end, hit.score, hit.text])
        for start, end, score, text in spans:
            body = doc.text[start:end] if doc is not None else text
            passages.append(Passage(item.doc_id, item.source, item.date, item.title, start, end, body, score))
    return passages


@dataclass
class CallPlan:
    """One rendered call: its messages, their token count, and what evidence made it in."""

    part: str
    label: str
    messages: list[Message]
    prompt_tokens: int
    shown_docs: set[str] = field(default_factory=set)
    kept: int = 0
    total: int = 0


# -- the run's bookkeeping -----------------------------------------------------------------------------


@dataclass
class RunLedger:
    """Tokens, cost, cache use, quote-gate counts and warnings of one compare() call."""

    documents: dict[str, Document]
    stats: QuoteStats = field(default_factory=QuoteStats)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    billed_in: int = 0
    billed_out: int = 0
    calls: int = 0
    cached_calls: int = 0

    def count(self, name: str, by: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + by

    def record(self, tokens_in: int, tokens_out: int, *, cached: bool) -> None:
        self.calls += 1
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if cached:
            self.cached_calls += 1
        else:
            self.billed_in += tokens_in
            self.billed_out += tokens_out

    def verify(self, doc_id: str, text: str, allowed: set[str]) -> Quote | None:
        """The proposed quote located in the stored document, or None (counted) when it cannot be shown."""
        doc_id = doc_id.strip()
        doc = self.documents.get(doc_id) if doc_id in allowed else None
        if doc is None:
            self.stats.add("unverified")
            if doc_id not in self.documents:
                self.stats.unknown_document += 1
            else:
                self.count("wrong_document")
            return None
        quote = verify_quote(text, doc)
        self.stats.add(quote.status)
        return quote if quote.status != "unverified" else None

    def verify_all(self, proposals: Sequence[ProposedQuote], allowed: set[str]) -> list[Quote]:
        quotes: list[Quote] = []
        for proposal in proposals:
            quote = self.verify(proposal.doc_id, proposal.text, allowed)
            if quote is not None and all(
                (q.doc_id, q.char_start, q.char_end) != (quote.doc_id, quote.char_start, quote.char_end)
                for q in quotes
            ):
                quotes.append(quote)
        return quotes

    def quote_counts(self) -> dict[str, int]:
        return {**self.stats.as_dict(), "unverified_dropped": self.stats.unverified, **self.counts}


@dataclass
class MappedSource:
    """A source after the map step: its view (verified quotes only) and the reduce input built from it."""

    view: SourceView
    claims: dict[str, Claim]
    positions: list[dict[str, Any]]
    shown_docs: set[str]


# -- the backend ---------------------------------------------------------------------------------------


class LLMBackend(Backend):
    """Map per source, reduce across sources; every quote checked against the stored text."""

    def __init__(
        self, target: LLMTarget, settings: Settings, *, chat_model: BaseChatModel | None = None
    ) -> None:
        self.target = target
        self.settings = settings
        self.llm: LLMSettings = settings.llm
        self.name = target.provider
        self.model = target.model
        self.method = _structured_method(self.llm.structured_method)
        self.prompt: Prompt = load_prompt(self.llm.prompt, prompt_directories(self.llm.prompts_dir))
        for part in ("map", "reduce"):
            self.prompt.part(part)  # a ConfigError naming the file when the prompt lacks one
        self.tokens = TokenCounter(target.model)
        self.prices: PriceTable = load_price_table(self.llm.price_table)
        self.cache = ResponseCache(settings.data_dir / CACHE_FILE) if self.llm.cache else None
        self._chat = chat_model

    @classmethod
    def from_spec(
        cls, spec: str, settings: Settings, *, chat_model: BaseChatModel | None = None
    ) -> LLMBackend:
        return cls(parse_llm_spec(spec, settings), settings, chat_model=chat_model)

    @property
    def budget(self) -> int:
        """Prompt tokens allowed per call: the context minus the room kept for the answer."""
        return self.llm.context_tokens - self.llm.max_output_tokens

    # -- entry points ----------------------------------------------------------------------------------

    def compare(self, request: AnalysisRequest) -> Comparison:
        if self._chat is None:
            resolve_api_key(self.target)  # a missing key fails before any work
        ledger = RunLedger(request.documents)
        mapped = self._map_all(request, ledger)
        reduced = self._reduce(request, mapped, ledger)
        comparison = Comparison(
            question=request.question,
            target=request.target,
            sources=[m.view for m in mapped],
            meta=self._meta(ledger),
        )
        if reduced is not None:
            self._apply_reduce(comparison, reduced, mapped, request, ledger)
        comparison.meta.quotes = ledger.quote_counts()
        comparison.meta.warnings = self._warnings(ledger)
        return comparison

    def estimate(self, request: AnalysisRequest) -> Estimate:
        """Prompt tokens of every call counted with tiktoken (the reduce prompt from the map calls' maximum
        answers), the maximum completion tokens, the cost at list price and the number of calls; nothing sent."""
        plans = [self._plan_map(source, request) for source in request.retrieved.by_source]
        reduce_tokens = self._estimated_reduce_tokens(request, len(plans))
        prompt_tokens = sum(p.prompt_tokens for p in plans) + reduce_tokens
        completion = (len(plans) + 1) * self.llm.max_output_tokens
        cost = self.prices.cost(self.model or "", prompt_tokens, completion)
        notes = [
            f"{len(plans)} map call(s), one per source, then 1 reduce call",
            f"reduce prompt estimated with every map answer at its maximum ({self.llm.max_output_tokens} tokens)",
            f"cost at most, at list prices as of {self.prices.as_of}",
        ]
        notes += [_trim_note(p) for p in plans if p.kept < p.total]
        notes += [cost.warning] if cost.warning else []
        cached = sum(1 for p in plans if self._cached(p, SourceAnalysis))
        if cached:
            notes.append(
                f"{cached} of {len(plans)} map call(s) are in the response cache and would cost nothing"
            )
        if self._chat is None and self.target.provider == "openai" and not os.environ.get(API_KEY_ENV):
            notes.append(f"{API_KEY_ENV} is not set: a real run would stop with an error")
        return Estimate(
            self.target.spec, self.model, prompt_tokens, completion, cost.usd, len(plans) + 1, notes
        )

    def prompt_token_comparison(self, request: AnalysisRequest) -> dict[str, Any]:
        """Prompt tokens of this backend's calls vs one prompt stuffed with every retrieved article, whole."""
        plans = [self._plan_map(source, request) for source in request.retrieved.by_source]
        map_tokens = sum(p.prompt_tokens for p in plans)
        reduce_tokens = self._estimated_reduce_tokens(request, len(plans))
        stuffed = self.tokens.messages(self._stuffed_messages(request))
        ours = map_tokens + reduce_tokens
        return {
            "model": self.model,
            "encoding": self.tokens.encoding_name,
            "sources": len(plans),
            "documents": len(request.documents),
            "calls": len(plans) + 1,
            "map_prompt_tokens": map_tokens,
            "reduce_prompt_tokens_estimated": reduce_tokens,
            "backend_prompt_tokens": ours,
            "largest_call_prompt_tokens": max([p.prompt_tokens for p in plans] + [reduce_tokens]),
            "passages_shown": sum(p.kept for p in plans),
            "passages_retrieved": sum(p.total for p in plans),
            "stuffed_prompt_tokens": stuffed,
            "stuffed_over_backend": round(stuffed / ours, 3) if ours else None,
            "budget_per_call": self.budget,
            "stuffed_fits_budget": stuffed <= self.budget,
        }

    # -- map -------------------------------------------------------------------------------------------

    def _plan_map(self, source: str, request: AnalysisRequest) -> CallPlan:
        passages = source_passages(request.retrieved.by_source.get(source, []), request.documents)

        def render(blocks: list[str]) -> list[Message]:
            evidence = "\n\n".join(blocks) or "(no passages)"
            return self.prompt.render("map", self._map_values(request, source, evidence))

        ranked = sorted(range(len(passages)), key=lambda i: -passages[i].score)
        blocks = [passages[i].fenced() for i in ranked]

        def render_best(count: int) -> list[Message]:
            """The `count` best-ranked passages, shown in reading order."""
            return render([blocks[k] for k in sorted(range(count), key=lambda k: ranked[k])])

        kept = self._fit(render_best, [self.tokens.text(b) for b in blocks], f"source {source!r}")
        shown = ranked[:kept]
        messages = render_best(kept)
        return CallPlan(
            part="map",
            label=source,
            messages=messages,
            prompt_tokens=self.tokens.messages(messages),
            shown_docs={passages[i].doc_id for i in shown},
            kept=kept,
            total=len(passages),
        )

    def _map_values(self, request: AnalysisRequest, source: str, evidence: str) -> dict[str, str]:
        return {
            "question": request.question,
            "target": request.target,
            "source": source,
            "evidence": evidence,
            "output_format": schema_outline(SourceAnalysis),
        }

    def _fit(self, render_best: Callable[[int], list[Message]], block_tokens: list[int], label: str) -> int:
        """How many of the best-ranked blocks fit the budget together with the untrimmable instructions."""
        base = self.tokens.messages(render_best(0))
        if base > self.budget:
            raise ConfigError(
                f"the {self.prompt.id} instructions alone take {base} tokens, more than the per-call budget "
                f"({self.llm.context_tokens} context - {self.llm.max_output_tokens} output = {self.budget})",
                hint="raise NCOMPARE_LLM__CONTEXT_TOKENS or lower NCOMPARE_LLM__MAX_OUTPUT_TOKENS",
            )
        used, kept = base, 0
        for tokens in block_tokens:
            if used + tokens + 2 > self.budget:  # 2: the blank line between blocks
                break
            used, kept = used + tokens + 2, kept + 1
        while kept and self.tokens.messages(render_best(kept)) > self.budget:
            kept -= 1  # token merges across block boundaries can make the sum a little off
        if block_tokens and not kept:
            raise ConfigError(
                f"{label}: not even the best passage fits the per-call budget of {self.budget} tokens",
                hint="raise NCOMPARE_LLM__CONTEXT_TOKENS",
            )
        return kept

    def _map_all(self, request: AnalysisRequest, ledger: RunLedger) -> list[MappedSource]:
        mapped: list[MappedSource] = []
        failures: list[LLMOutputError] = []
        for source in request.retrieved.by_source:
            plan = self._plan_map(source, request)
            if plan.kept < plan.total:
                ledger.warnings.append(_trim_note(plan))
            try:
                analysis = self._ask(plan, SourceAnalysis, ledger)
            except LLMOutputError as error:
                failures.append(error)
                ledger.warnings.append(f"source {source!r} left out: {error.message}")
                continue
            mapped.append(self._mapped_source(source, analysis, plan, request, ledger))
        if failures and not mapped:
            raise failures[-1]
        return mapped

    def _mapped_source(
        self,
        source: str,
        analysis: SourceAnalysis,
        plan: CallPlan,
        request: AnalysisRequest,
        ledger: RunLedger,
    ) -> MappedSource:
        claims: dict[str, Claim] = {}
        for proposed in analysis.claims:
            quotes = ledger.verify_all(proposed.quotes, plan.shown_docs)
            if not quotes:
                ledger.count("claims_dropped_unquoted")
                continue
            claim_id = f"{source}-{len(claims) + 1}"
            claims[claim_id] = Claim(id=claim_id, text=proposed.claim.strip(), quotes=quotes)
        positions = []
        for position in analysis.positions:
            quote = ledger.verify(position.doc_id, position.quote, plan.shown_docs)
            if quote is None:
                ledger.count("positions_dropped_unquoted")
                continue
            positions.append(
                {
                    "doc_id": quote.doc_id,
                    "date": quote.date,
                    "stance": position.stance,
                    "position": position.position,
                    "quote": quote.text,
                }
            )
        view = self._source_view(source, analysis, list(claims.values()), plan, request, ledger)
        return MappedSource(view, claims, positions, plan.shown_docs)

    def _source_view(
        self,
        source: str,
        analysis: SourceAnalysis,
        claims: list[Claim],
        plan: CallPlan,
        request: AnalysisRequest,
        ledger: RunLedger,
    ) -> SourceView:
        evidence = request.retrieved.by_source.get(source, [])
        dates = sorted(d.date for d in evidence if d.date)
        confidence = min(1.0, max(0.0, analysis.confidence))
        return SourceView(
            source=source,
            outlet=next((d.outlet for d in evidence if d.outlet), None),
            documents=[DocRef(doc_id=d.doc_id, title=d.title, date=d.date, url=d.url) for d in evidence],
            first_date=dates[0] if dates else None,
            last_date=dates[-1] if dates else None,
            summary=analysis.summary.strip(),
            summary_quotes=ledger.verify_all(analysis.stance_quotes, plan.shown_docs),
            stance=Stance(
                label=analysis.stance,
                target=request.target,
                confidence=confidence,
                low_confidence=confidence < LOW_CONFIDENCE,
                method=f"{self.model} {self.prompt.id}",
            ),
            claims=claims,
        )

    # -- reduce ----------------------------------------------------------------------------------------

    def _analysis_block(self, mapped: MappedSource, claims: int, positions: int) -> str:
        view = mapped.view
        payload = {
            "source": view.source,
            "stance": view.stance.label,
            "confidence": view.stance.confidence,
            "summary": view.summary,
            "claims": [
                {
                    "id": claim.id,
                    "claim": claim.text,
                    "quotes": [{"doc_id": q.doc_id, "date": q.date, "text": q.text} for q in claim.quotes],
                }
                for claim in list(mapped.claims.values())[:claims]
            ],
            "positions": mapped.positions[:positions],
        }
        return fence(
            ANALYSIS_OPEN, ANALYSIS_CLOSE, {"source": view.source}, json.dumps(payload, ensure_ascii=False)
        )

    def _reduce_values(self, request: AnalysisRequest, sources: list[str], analyses: str) -> dict[str, str]:
        return {
            "question": request.question,
            "target": request.target,
            "sources": ", ".join(sources),
            "analyses": analyses,
            "output_format": schema_outline(CrossSourceAnalysis),
        }

    def _plan_reduce(
        self, request: AnalysisRequest, mapped: list[MappedSource], ledger: RunLedger
    ) -> CallPlan:
        """The reduce call; when it is too long, the last claims and positions of the longest analysis go."""
        sizes = {m.view.source: [len(m.claims), len(m.positions)] for m in mapped}
        sources = [m.view.source for m in mapped]

        def render() -> list[Message]:
            blocks = [self._analysis_block(m, *sizes[m.view.source]) for m in mapped]
            return self.prompt.render("reduce", self._reduce_values(request, sources, "\n\n".join(blocks)))

        messages = render()
        trimmed = 0
        while self.tokens.messages(messages) > self.budget:
            source = max(sizes, key=lambda s: sum(sizes[s]))
            if not sum(sizes[source]):
                raise ConfigError(
                    f"the reduce prompt does not fit the per-call budget of {self.budget} tokens",
                    hint="raise NCOMPARE_LLM__CONTEXT_TOKENS",
                )
            sizes[source][1 if sizes[source][1] else 0] -= 1
            trimmed += 1
            messages = render()
        if trimmed:
            ledger.warnings.append(
                f"reduce step: {trimmed} claim(s)/position(s) left out to fit the token budget"
            )
        docs = {doc for m in mapped for doc in m.shown_docs}
        return CallPlan(
            "reduce", "reduce", messages, self.tokens.messages(messages), docs, len(mapped), len(mapped)
        )

    def _estimated_reduce_tokens(self, request: AnalysisRequest, sources: int) -> int:
        names = list(request.retrieved.by_source)
        base = self.tokens.messages(self.prompt.render("reduce", self._reduce_values(request, names, "")))
        return min(self.budget, base + sources * self.llm.max_output_tokens)

    def _reduce(
        self, request: AnalysisRequest, mapped: list[MappedSource], ledger: RunLedger
    ) -> CrossSourceAnalysis | None:
        if not any(m.claims or m.positions for m in mapped):
            ledger.warnings.append("no source kept a quoted claim: nothing to compare across sources")
            return None
        plan = self._plan_reduce(request, mapped, ledger)
        try:
            return self._ask(plan, CrossSourceAnalysis, ledger)
        except LLMOutputError as error:
            ledger.warnings.append(
                f"cross-source step failed, agreements/differences/shifts empty: {error.message}"
            )
            return None

    def _apply_reduce(
        self,
        comparison: Comparison,
        reduced: CrossSourceAnalysis,
        mapped: list[MappedSource],
        request: AnalysisRequest,
        ledger: RunLedger,
    ) -> None:
        claims = {claim_id: (m.view.source, claim) for m in mapped for claim_id, claim in m.claims.items()}
        docs_by_source = {m.view.source: m.shown_docs for m in mapped}
        comparison.agreements = _agreements(reduced.agreements, claims, ledger)
        comparison.differences = _differences(reduced.differences, claims, list(docs_by_source), ledger)
        comparison.omissions = _omissions(reduced.omissions, list(docs_by_source), ledger)
        comparison.shifts = _shifts(reduced.shifts, docs_by_source, request, ledger)

    # -- calls -----------------------------------------------------------------------------------------

    def _chat_model(self) -> BaseChatModel:
        if self._chat is None:
            self._chat = ChatOpenAI(
                model=self.target.model,
                api_key=SecretStr(resolve_api_key(self.target)),
                base_url=self.target.base_url,
                temperature=self.llm.temperature,
                timeout=self.llm.timeout_s,
                max_retries=self.llm.max_retries,
                max_completion_tokens=self.llm.max_output_tokens,
                use_responses_api=False,  # chat completions: what every OpenAI-compatible server speaks
            )
        return self._chat

    def _cache_key(self, plan: CallPlan, schema: type[BaseModel]) -> str:
        return cache_key(
            model=self.target.model,
            base_url=self.target.base_url,
            prompt=self.prompt.id,
            part=plan.part,
            messages=plan.messages,
            method=self.method,
            schema=schema.model_json_schema(),
            temperature=self.llm.temperature,
            max_output_tokens=self.llm.max_output_tokens,
        )

    def _cached(self, plan: CallPlan, schema: type[Answer]) -> tuple[Answer, int, int] | None:
        if self.cache is None:
            return None
        hit = self.cache.get(self._cache_key(plan, schema))
        if hit is None:
            return None
        try:
            return schema.model_validate_json(hit.response), hit.tokens_in, hit.tokens_out
        except ValidationError:
            return None  # written by an older schema: ask again

    def _ask(self, plan: CallPlan, schema: type[Answer], ledger: RunLedger) -> Answer:
        """The validated answer to one call, from the cache when the same call was answered before."""
        cached = self._cached(plan, schema)
        if cached is not None:
            ledger.record(cached[1], cached[2], cached=True)
            return cached[0]
        answer, tokens_in, tokens_out = self._invoke(plan, schema)
        ledger.record(tokens_in, tokens_out, cached=False)
        if self.cache is not None:
            self.cache.put(
                self._cache_key(plan, schema),
                model=self.target.model,
                base_url=self.target.base_url,
                prompt=self.prompt.id,
                part=plan.part,
                request=plan.messages,
                response=answer.model_dump_json(),
                tokens_in=tokens_in,
                tokens_out=tokens_out,
            )
        return answer

    def _invoke(self, plan: CallPlan, schema: type[Answer]) -> tuple[Answer, int, int]:
        runnable = self._chat_model().with_structured_output(schema, method=self.method, include_raw=True)
        messages: list[BaseMessage] = [
            SystemMessage(content) if role == "system" else HumanMessage(content)
            for role, content in plan.messages
        ]
        tokens_in = tokens_out = 0
        problem = ""
        attempts = 1 + self.llm.output_retries
        for _ in range(attempts):
            try:
                with (
                    warnings.catch_warnings()
                ):  # LangChain's advice on methods: our errors carry it as a hint
                    warnings.filterwarnings("ignore", category=UserWarning, module="langchain_openai")
                    result = cast(dict[str, Any], runnable.invoke(messages))
            except ValidationError as error:  # json_schema: the openai client validates the reply itself
                problem = f"the reply does not match the {schema.__name__} schema ({_first_error(error)})"
            except openai.OpenAIError as error:
                raise api_error(error, self.target, self.llm) from error
            else:
                raw = result.get("raw")
                usage = getattr(raw, "usage_metadata", None) or {}
                tokens_in += int(usage.get("input_tokens", 0))
                tokens_out += int(usage.get("output_tokens", 0))
                if isinstance(result.get("parsed"), schema):
                    return result["parsed"], tokens_in, tokens_out
                problem = output_problem(raw, result.get("parsing_error"), schema)
            messages = [*messages, HumanMessage(_REASK.format(problem=problem[:400]))]
        raise LLMOutputError(
            f"{self.target.spec} gave no usable {plan.part} answer for {plan.label!r} "
            f"after {attempts} attempt(s): {problem}",
            hint="try another NCOMPARE_LLM__STRUCTURED_METHOD (json_schema, function_calling, json_mode), "
            "raise NCOMPARE_LLM__OUTPUT_RETRIES, or use a stronger model",
        )

    # -- meta ------------------------------------------------------------------------------------------

    def _meta(self, ledger: RunLedger) -> ComparisonMeta:
        cost = self.prices.cost(self.model or "", ledger.billed_in, ledger.billed_out)
        if cost.warning:
            ledger.warnings.append(cost.warning)
        return ComparisonMeta(
            backend=self.target.spec,
            model=self.model,
            prompt=self.prompt.id,
            settings_hash=self.settings.settings_hash(),
            package_version=__version__,
            tokens_in=ledger.tokens_in,
            tokens_out=ledger.tokens_out,
            cost_usd=cost.usd,
        )

    def _warnings(self, ledger: RunLedger) -> list[str]:
        notes = list(ledger.warnings)
        if ledger.cached_calls:
            notes.append(
                f"cached: {ledger.cached_calls} of {ledger.calls} LLM call(s) answered from the response cache "
                f"({CACHE_FILE}); their tokens are those of the original run and cost nothing now"
            )
        if ledger.stats.unverified:
            notes.append(
                f"{ledger.stats.unverified} quote(s) proposed by the model were not found in the stored articles "
                "and are not shown"
            )
        return notes + (self.cache.warnings if self.cache is not None else [])

    def _stuffed_messages(self, request: AnalysisRequest) -> list[Message]:
        """The baseline: every retrieved article, whole, in one prompt with the same instructions."""
        blocks = [
            Passage(doc.id, doc.source, doc.date, doc.title, 0, len(doc.text), doc.text, 1.0).fenced()
            for doc in request.documents.values()
        ]
        sources = ", ".join(request.retrieved.by_source)
        return self.prompt.render("map", self._map_values(request, sources, "\n\n".join(blocks)))


_REASK = (
    "Your previous reply could not be used: {problem}. Reply again with only the JSON object in the shape "
    "asked for, and nothing else."
)


def _trim_note(plan: CallPlan) -> str:
    return (
        f"source {plan.label!r}: {plan.total - plan.kept} of {plan.total} passage(s) left out to fit the "
        "token budget (lowest-ranked first)"
    )


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0] if error.errors() else {"msg": str(error), "loc": ()}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def output_problem(raw: Any, parsing_error: Any, schema: type[BaseModel]) -> str:
    """Why a reply could not be used, in words: empty, not JSON, or not the schema."""
    text = raw.text.strip() if isinstance(raw, AIMessage) else ""
    calls = raw.tool_calls if isinstance(raw, AIMessage) else []
    invalid = raw.invalid_tool_calls if isinstance(raw, AIMessage) else []
    if not text and not any(call.get("args") for call in calls) and not any(c.get("args") for c in invalid):
        return "the reply was empty"
    if invalid:
        return f"the tool-call arguments are not valid JSON ({str(invalid[0].get('error') or '')[:120]})"
    if isinstance(parsing_error, ValidationError):
        return f"the reply does not match the {schema.__name__} schema ({_first_error(parsing_error)})"
    if parsing_error is not None:
        return f"the reply is not valid JSON of the {schema.__name__} schema ({str(parsing_error)[:160]})"
    return f"the reply is not a {schema.__name__} object"


def api_error(error: openai.OpenAIError, target: LLMTarget, llm: LLMSettings) -> CompareError:
    """An openai client error as a message for people: what happened, where, and what to do."""
    tries = f"after {llm.max_retries + 1} attempt(s)"
    if isinstance(error, openai.APITimeoutError):
        return ModelError(
            f"{target.spec}: no answer from {target.where} within {llm.timeout_s:g} s ({tries})",
            hint="raise NCOMPARE_LLM__TIMEOUT_S, or check that the server is not overloaded",
        )
    if isinstance(error, openai.APIConnectionError):
        return ModelError(
            f"{target.spec}: cannot reach {target.where} ({tries}): {error}",
            hint="is the server running? check the URL in the backend spec, OPENAI_BASE_URL or "
            "NCOMPARE_OPENAI_BASE_URL",
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return ConfigError(
            f"{target.where} refused the API key (HTTP {error.status_code}): {error.message}",
            hint=f"check {API_KEY_ENV} (a key for this server, with access to {target.model!r})",
        )
    if isinstance(error, openai.NotFoundError):
        return ModelError(
            f"{target.where} does not know model {target.model!r}, or the URL is wrong (HTTP 404)",
            hint="check the model name (e.g. `ollama list`) and that the base URL ends in /v1",
        )
    if isinstance(error, openai.RateLimitError):
        return ModelError(
            f"{target.spec}: rate limited by {target.where} (HTTP 429, {tries})",
            hint="wait and retry, raise NCOMPARE_LLM__MAX_RETRIES, or check the account's quota",
        )
    if isinstance(error, openai.BadRequestError):
        return ModelError(
            f"{target.where} rejected the request (HTTP 400): {error.message}", hint=_bad_request_hint(error)
        )
    if isinstance(error, openai.APIStatusError):
        return ModelError(
            f"{target.where} answered HTTP {error.status_code} ({tries}): {error.message}",
            hint="the server failed; retry later or check its logs",
        )
    if isinstance(error, openai.LengthFinishReasonError):
        return LLMOutputError(
            f"{target.spec}: the answer was cut off at {llm.max_output_tokens} tokens",
            hint="raise NCOMPARE_LLM__MAX_OUTPUT_TOKENS",
        )
    return ModelError(f"{target.spec}: {type(error).__name__}: {error}", hint="see the message above")


def _bad_request_hint(error: openai.BadRequestError) -> str:
    text = str(error).lower()
    if "response_format" in text or "json_schema" in text or "tool" in text:
        return (
            "the server may not support this structured-output method: set NCOMPARE_LLM__STRUCTURED_METHOD "
            "to function_calling or json_mode"
        )
    if "context" in text or "too long" in text or "maximum" in text:
        return "lower NCOMPARE_LLM__CONTEXT_TOKENS to the model's real context size"
    return "check the model name and settings (`ncompare config`)"


# -- reduce answer -> domain types ---------------------------------------------------------------------


def _agreements(
    items: Sequence[AgreementItem], claims: dict[str, tuple[str, Claim]], ledger: RunLedger
) -> list[Agreement]:
    agreements = []
    for item in items:
        backing: dict[str, Claim] = {}
        for claim_id in item.claim_ids:
            if claim_id.strip() in claims:
                source, claim = claims[claim_id.strip()]
                backing.setdefault(source, claim)
        if len(backing) < 2:
            ledger.count("agreements_dropped")
            continue
        quotes = [claim.quotes[0] for claim in backing.values()]
        agreements.append(Agreement(claim=item.claim.strip(), sources=sorted(backing), quotes=quotes))
    return agreements


def _differences(
    items: Sequence[DifferenceItem],
    claims: dict[str, tuple[str, Claim]],
    sources: list[str],
    ledger: RunLedger,
) -> list[Difference]:
    differences = []
    for item in items:
        positions: dict[str, Position] = {}
        for stated in item.positions:
            if stated.source not in sources or stated.source in positions:
                continue
            own = [claims[c.strip()] for c in dict.fromkeys(stated.claim_ids) if c.strip() in claims]
            quotes = [claim.quotes[0] for source, claim in own if source == stated.source]
            positions[stated.source] = Position(source=stated.source, position=stated.position, quotes=quotes)
        if len(positions) < 2 or not any(p.quotes for p in positions.values()):
            ledger.count("differences_dropped")
            continue
        differences.append(Difference(claim=item.claim.strip(), positions=list(positions.values())))
    return differences


def _omissions(items: Sequence[OmissionItem], sources: list[str], ledger: RunLedger) -> list[Omission]:
    omissions = []
    for item in items:
        reported = sorted({s for s in item.reported_by if s in sources})
        missing = sorted({s for s in item.not_reported_by if s in sources} - set(reported))
        if not reported or not missing:
            ledger.count("omissions_dropped")
            continue
        omissions.append(Omission(claim=item.claim.strip(), reported_by=reported, not_reported_by=missing))
    return omissions


def _shifts(
    items: Sequence[ShiftItem],
    docs_by_source: dict[str, set[str]],
    request: AnalysisRequest,
    ledger: RunLedger,
) -> list[Shift]:
    shifts = []
    for item in items:
        allowed = docs_by_source.get(item.source, set())
        before = ledger.verify(item.before.doc_id, item.before.quote, allowed)
        after = ledger.verify(item.after.doc_id, item.after.quote, allowed)
        if (
            before is None
            or after is None
            or (before.doc_id, before.char_start) == (after.doc_id, after.char_start)
        ):
            ledger.count("shifts_dropped")
            continue
        same_doc = before.doc_id == after.doc_id
        before_date = None if same_doc else before.date
        if before_date and after.date and before_date > after.date:
            ledger.count("shifts_dropped")
            continue
        shifts.append(
            Shift(
                source=item.source,
                topic=item.topic.strip() or request.target,
                before=ShiftPoint(date=before_date, stance=item.before.stance, quote=before),
                after=ShiftPoint(date=after.date, stance=item.after.stance, quote=after),
                description=item.description.strip(),
                score=round(min(1.0, max(0.0, item.confidence)), 3),
            )
        )
    return shifts


# -- registration and helpers for the CLI and benchmarks -----------------------------------------------


@register_backend("openai")
def _openai(rest: str, settings: Settings, embedder: Embedder) -> Backend:
    return LLMBackend.from_spec(f"openai:{rest}", settings)


@register_backend("openai-compatible")
def _openai_compatible(rest: str, settings: Settings, embedder: Embedder) -> Backend:
    return LLMBackend.from_spec(f"openai-compatible:{rest}", settings)


def prompt_token_comparison(
    request: AnalysisRequest, settings: Settings, spec: str = "openai:gpt-4o-mini"
) -> dict[str, Any]:
    """For benchmarks: this backend's prompt tokens vs stuffing every retrieved article whole into one prompt.
    Counted with tiktoken; nothing is sent and no key is needed."""
    return LLMBackend.from_spec(spec, settings).prompt_token_comparison(request)
