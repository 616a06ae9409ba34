"""The LLM backend: `openai:<model>` and `openai-compatible:<model>@<base_url>`, through LangChain's ChatOpenAI.

This is the only module that imports LangChain (and the openai client's error types).

Prompt tokens are what a run costs, so every call carries as little as does the job:

1. Sources. When more than settings.llm.max_sources sources are retrieved (a question asked of the whole
   corpus), the ones with the strongest best passage are analysed, none scoring more than
   weak_source_margin below the strongest; the rest are left out with a warning naming them.
2. Evidence, per source. The sentences of its retrieved chunks (sentence_spans, clipped to the chunks) are
   scored by their chunk's retrieval score (averaged with their own cosine with the question when the
   backend has an embedder), plus the share of the target's content words they contain, plus a little for
   an article's opening sentence, and taken best first, with a small per-article decay so that several
   articles get a say, until the source's evidence budget is spent, counting each article's fence
   (evidence_tokens_per_source; more in a call of few sources: min_evidence_tokens_per_call). When
   everything retrieved fits, it is all shown; otherwise fragments and sentences far below the best are
   not used as filler. Adjacent sentences merge into passages whose text is read from the stored document
   by offset; each article is one fence (prompts.EVIDENCE_OPEN/CLOSE with doc_id, source, date, title),
   with "[…]" between its passages. A call too long for the context budget drops its lowest-ranked
   sentences first, never the instructions.
3. Calls. Sources are analysed in groups of up to sources_per_call per call (SourceAnalysis each: summary,
   stance toward the target, key claims with proposed quotes, positions per article with a quote). When
   one call holds every source (an event's few outlets), the same call also compares them (prompt part
   `single`, answer SingleAnswer) and nothing else is sent. Otherwise each group is a `map` call
   (MapAnswer) and one `reduce` call compares compact analyses: claim ids with one-line claims, and
   positions with ids, stored dates and stances; no quotes, no summaries (CrossSourceAnalysis).
4. Every proposed quote goes through verify_quote against the stored document its doc_id names; a doc_id
   not shown for that source counts as unverified. The model never marks a quote verified.
5. The cross-source answer cites claim and position ids only: agreements and differences by claim id,
   shifts by the ids of two positions or claims of one source. Ids resolve to the quotes verified in 4, so
   no cross-source quote text is ever proposed. In a `single` call the ids are the ones the model gave its
   claims and positions; after a reduce they are the backend's own (`<source>-<n>`, `<source>-p<n>`).

Kept and dropped (counts in meta.quotes, a warning when anything was dropped):
- a quote that verify_quote leaves `unverified` is never shown (unverified_dropped; wrong_document when its
  doc_id was not among the articles shown for that source, unknown_document when no such document is
  stored);
- a claim left without a verified or repaired quote is dropped (claims_dropped_unquoted), so is a position
  (positions_dropped_unquoted);
- an agreement is kept only when verified claims of two or more sources back it (agreements_dropped);
- a difference keeps its positions of known sources, each with the verified quotes of that source's claims;
  a position without quotes is kept (e.g. `unrelated`), a difference without any quoted position is dropped
  (differences_dropped);
- omissions carry no quotes: unknown source names are removed, one left without both sides is dropped;
- a shift needs two distinct, resolvable ids of one source, the earlier not dated after the later
  (shifts_dropped). Dates are the stored documents' dates, never the model's; the earlier point of a change
  reported inside one article has no date of its own and is shown undated.

Estimates: `estimate()` is an upper bound for cost (every answer at max_output_tokens, and the reduce prompt
counted with every map answer at that maximum). `prompt_token_comparison()` reports that bound and a typical
figure, whose reduce prompt is its instructions plus TYPICAL_ANALYSIS_TOKENS per analysed source.

Structured output (compare/analysis/structured.py): under `auto` (the default) each call tries the methods
the server may accept, moves on when one is refused, and remembers what worked per server and model.

Errors: transport problems (429, 5xx, timeouts, refused connections) are retried by the openai client
(settings.llm.max_retries, exponential backoff, Retry-After honoured), then become ModelError with the cause
and the fix (compare/analysis/server_errors.py); a rejected key is a ConfigError; an empty, non-JSON or
off-schema reply is re-asked settings.llm.output_retries times, then LLMOutputError. Sources whose call stays
unusable are left out with a warning (the run fails only when every call fails); an unusable reduce answer
leaves the cross-source sections empty, with a warning.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal, TypeVar, cast

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field, SecretStr, ValidationError

from compare import __version__
from compare.analysis.base import AnalysisRequest, Backend, Estimate, register_backend
from compare.analysis.client_errors import foreign_reply, raised_in_llm_client
from compare.analysis.llm_cache import CACHE_FILE, ResponseCache, cache_key
from compare.analysis.pricing import PriceTable, load_price_table
from compare.analysis.prompts import (
    ANALYSIS_CLOSE,
    ANALYSIS_OPEN,
    EVIDENCE_CLOSE,
    EVIDENCE_OPEN,
    Message,
    Prompt,
    defang,
    fence,
    load_prompt,
    prompt_directories,
)
from compare.analysis.quotes import QuoteStats, verify_quote
from compare.analysis.server_errors import (
    API_KEY_ENV,
    LOG_FILE,
    api_error,
    refused_method,
    retry_delay,
    retryable,
    short_reason,
)
from compare.analysis.server_errors import server_text as _response_text
from compare.analysis.structured import (
    MEMORY_FILE,
    SETTING_VALUES,
    Method,
    MethodMemory,
    Refusal,
    capability_refusal,
    describe,
    methods_to_try,
    structured_runnable,
)
from compare.chunking import get_encoding, sentence_spans
from compare.embedding import CachedEmbedder, Embedder
from compare.errors import ConfigError, LLMOutputError
from compare.retrieval import DocumentEvidence, Retrieved
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

#: Sent as the API key to openai-compatible servers when OPENAI_API_KEY is unset (local servers need none).
PLACEHOLDER_API_KEY = "not-needed"
BASE_URL_ENV = "OPENAI_BASE_URL"
#: A stance under this confidence is flagged low_confidence.
LOW_CONFIDENCE = 0.5
#: Models whose tokenizer is o200k_base; everything else (incl. unknown local models) is counted with cl100k.
_O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "gpt-oss")

#: Evidence ranking. A sentence scores its chunk's retrieval score (cosine; averaged with the sentence's own
#: cosine with the question when the backend has an embedder), plus LEXICAL_WEIGHT x the share of the
#: target's content words it contains, plus LEDE_BONUS when it opens its article (ledes carry the framing).
LEXICAL_WEIGHT = 0.3
LEDE_BONUS = 0.05
#: Each sentence taken from an article lowers that article's other sentences by this much, so a source with
#: several articles shows more than its single best one (positions over time need several dates).
ARTICLE_DECAY = 0.03
#: When not everything fits, sentences scoring more than this below the source's best one are not shown,
#: nor fragments shorter than MIN_SENTENCE_TOKENS ('"It...'): filler that costs a fence and says nothing.
RELEVANCE_WINDOW = 0.3
MIN_SENTENCE_TOKENS = 4
#: A source's best sentence, when longer than its whole budget, is cut to fit, but not under this.
MIN_CUT_TOKENS = 20
#: Marks text left out between two passages of one article.
GAP = "\n[…]\n"
#: Tokens (o200k_base) of one source's compact analysis in the reduce prompt: the median over every source
#: analysis in the recorded replies of tests/fixtures/llm (map and single answers), rendered by
#: compact_analysis with all the claims and positions the model gave, ids <source>-<n>/-p<n> and a dated
#: position (tests/test_llm_backend.py::test_typical_analysis_size_is_measured_on_recorded_replies recomputes
#: it). The typical reduce prompt is its instructions plus this per analysed source; the upper bound takes
#: every map answer at max_output_tokens instead.
TYPICAL_ANALYSIS_TOKENS = 87

# -- response schemas (flat: strings, lists, enums; converted into compare.types below) ------------------
# Every field is required: LangChain sends json_schema answers as OpenAI strict structured outputs, which
# refuse a schema with an optional property.


class ProposedQuote(BaseModel):
    doc_id: str = Field(description="doc_id of the passage, exactly as in its fence")
    text: str = Field(description="verbatim span copied from that passage")


class ProposedClaim(BaseModel):
    id: str = Field(description="<source>-<n>, unique in the answer")
    claim: str = Field(description="the claim in one sentence of your own")
    quotes: list[ProposedQuote] = Field(description="one or two verbatim quotes stating it")


class DatedPosition(BaseModel):
    id: str = Field(description="<source>-p<n>, unique in the answer")
    doc_id: str = Field(description="doc_id of the article")
    stance: StanceLabel
    position: str = Field(description="the position in a few words")
    quote: str = Field(description="verbatim span from that article showing it")


class SourceAnalysis(BaseModel):
    """One source's analysis (an item of MapAnswer and SingleAnswer)."""

    source: str = Field(description="the source's name, as given")
    summary: str = Field(description="one to three sentences on how this source tells the story")
    stance: StanceLabel = Field(description="stance toward the target")
    confidence: float = Field(description="0 to 1")
    stance_quotes: list[ProposedQuote] = Field(description="one or two verbatim quotes showing the stance")
    claims: list[ProposedClaim] = Field(description="up to five key claims")
    positions: list[DatedPosition] = Field(description="positions on the target per article, oldest first")


class MapAnswer(BaseModel):
    """The answer of a map call: one analysis per source of the call."""

    sources: list[SourceAnalysis]


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
    ref: str = Field(description="id of a position or claim of the shifting source")
    stance: StanceLabel


class ShiftItem(BaseModel):
    topic: str
    description: str = Field(description="one line: what changed")
    before: ShiftPointItem
    after: ShiftPointItem
    confidence: float = Field(description="0 to 1")


class CrossSourceAnalysis(BaseModel):
    """The reduce answer; every item cites claim or position ids, never quote text."""

    agreements: list[AgreementItem]
    differences: list[DifferenceItem]
    omissions: list[OmissionItem]
    shifts: list[ShiftItem]


class SingleAnswer(BaseModel):
    """The answer of a call that analyses every source and compares them."""

    sources: list[SourceAnalysis]
    agreements: list[AgreementItem]
    differences: list[DifferenceItem]
    omissions: list[OmissionItem]
    shifts: list[ShiftItem]

    def cross_source(self) -> CrossSourceAnalysis:
        return CrossSourceAnalysis(
            agreements=self.agreements,
            differences=self.differences,
            omissions=self.omissions,
            shifts=self.shifts,
        )


Answer = TypeVar("Answer", bound=BaseModel)
#: The answer schema of each prompt part.
PART_SCHEMAS: dict[str, type[BaseModel]] = {
    "single": SingleAnswer,
    "map": MapAnswer,
    "reduce": CrossSourceAnalysis,
}
_TYPE_WORDS = {"string": "str", "number": "num", "integer": "int", "boolean": "bool", "null": "null"}


def _display(name: str) -> str:
    """A schema class's name as the outline shows it: ProposedQuote -> Quote, ShiftPointItem -> ShiftPoint."""
    return name.removeprefix("Proposed").removesuffix("Item")


@lru_cache(maxsize=8)
def schema_outline(model: type[BaseModel]) -> str:
    """The answer's shape for the prompt, compact (json_mode sends no schema, so the prompt must): keys
    without quotes, a bare key is a string, `key:[T]` a list, enums as "a|b|c", no descriptions (the
    instructions say what the fields mean). An object or enum used in more than one place is written once, as
    `Name=...` on a line of its own. E.g. `{claims:[{id,claim,quotes:[Quote]}]}` and `Quote={doc_id,text}`."""
    schema = model.model_json_schema()
    definitions: dict[str, Any] = schema.get("$defs", {})
    uses: Counter[str] = Counter()
    enums: dict[tuple[str, ...], list[str]] = {}

    def survey(node: dict[str, Any], key: str) -> None:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            uses[name] += 1
            if uses[name] == 1:
                survey(definitions[name], key)
        elif "enum" in node:
            enums.setdefault(tuple(str(v) for v in node["enum"]), []).append(key)
        for child_key, child in node.get("properties", {}).items():
            survey(child, child_key)
        if isinstance(node.get("items"), dict):
            survey(node["items"], key)

    survey(schema, "")
    named_enums: dict[tuple[str, ...], str] = {}
    for values, keys in enums.items():
        name = keys[0].capitalize() or "Enum"
        if len(keys) > 1 and name not in definitions and name not in named_enums.values():
            named_enums[values] = name

    def shape(node: dict[str, Any]) -> str:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _display(name) if uses[name] > 1 else shape(definitions[name])
        if "enum" in node:
            values = tuple(str(v) for v in node["enum"])
            return named_enums.get(values) or json.dumps("|".join(values))
        if node.get("type") == "object":
            fields = (_field(key, shape(value)) for key, value in node.get("properties", {}).items())
            return "{" + ",".join(fields) + "}"
        if node.get("type") == "array":
            return f"[{shape(node.get('items', {}))}]"
        if "anyOf" in node:
            return "|".join(shape(option) for option in node["anyOf"])
        return _TYPE_WORDS.get(str(node.get("type")), "str")

    lines = [shape(schema)]
    lines += [f"{_display(name)}={shape(definitions[name])}" for name, count in uses.items() if count > 1]
    lines += [f"{name}={json.dumps('|'.join(values))}" for values, name in named_enums.items()]
    return "\n".join(lines)


def _field(key: str, shape: str) -> str:
    return key if shape == "str" else f"{key}:{shape}"


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


def resolve_api_key(target: LLMTarget, given: str | None = None) -> str:
    """A key given for this backend (typed into the app; never stored), else OPENAI_API_KEY from the
    environment; openai-compatible servers get a placeholder when neither is set."""
    key = (given or os.environ.get(API_KEY_ENV, "")).strip()
    if key:
        return key
    if target.provider == "openai-compatible":
        return PLACEHOLDER_API_KEY
    raise ConfigError(
        f"{API_KEY_ENV} is not set: the {target.spec} backend needs an OpenAI API key",
        hint=f"export {API_KEY_ENV}=sk-...; or use a local server (openai-compatible:MODEL@http://127.0.0.1:8080/v1) "
        "or the offline backend",
    )


def _structured_method(value: str) -> str:
    if value not in SETTING_VALUES:
        raise ConfigError(
            f"unknown structured-output method {value!r}",
            hint=f"set NCOMPARE_LLM__STRUCTURED_METHOD to one of {', '.join(SETTING_VALUES)}",
        )
    return value


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

    def prefix(self, text: str, tokens: int) -> str:
        """The longest start of `text` that ends at a word boundary and has at most `tokens` tokens."""
        ids = self._encoding.encode(text, disallowed_special=())
        if len(ids) <= tokens:
            return text
        head = self._encoding.decode(ids[: max(0, tokens)])
        head = head if text.startswith(head) else ""
        cut = head.rstrip().rfind(" ")
        return head[:cut].rstrip() if cut > 0 else ""


# -- evidence ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    """A span of a stored document shown to the model: adjacent chosen sentences, or merged chunks."""

    doc_id: str
    source: str
    date: str | None
    title: str | None
    start: int
    end: int
    text: str
    score: float

    def fenced(self) -> str:
        return fence(EVIDENCE_OPEN, EVIDENCE_CLOSE, fence_attributes(self), self.text)


def fence_attributes(item: DocumentEvidence | Passage) -> dict[str, str | None]:
    return {"doc_id": item.doc_id, "source": item.source, "date": item.date, "title": item.title}


def source_passages(evidence: Sequence[DocumentEvidence], documents: dict[str, Document]) -> list[Passage]:
    """The retrieved chunks of one source, overlapping ones merged, by document (as retrieved: by date), then
    by offset: what whole-chunk evidence would show (reported as evidence_tokens_retrieved)."""
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


@dataclass(frozen=True)
class Sentence:
    """A sentence of a retrieved chunk, clipped to the chunk: one candidate unit of evidence.
    Invariant: text == document.text[start:end] (or the chunk's text, for a document not stored)."""

    doc_id: str
    start: int
    end: int
    text: str
    chunk_score: float
    lede: bool = False
    tokens: int = 0
    score: float = 0.0


@lru_cache(maxsize=256)
def _sentences_of(text: str) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """Sentence spans of a stored text and their starts (for bisect); a repeated question splits nothing."""
    spans = tuple(sentence_spans(text))
    return spans, tuple(start for start, _ in spans)


def retrieved_sentences(item: DocumentEvidence, doc: Document | None) -> list[Sentence]:
    """The sentences that the retrieved chunks of one document cover, in text order, each clipped to its
    chunks and scored with the best of them."""
    if doc is None:
        return _chunk_sentences(item)
    spans, starts = _sentences_of(doc.text)
    found: dict[int, tuple[int, int, float]] = {}  # sentence index -> start, end, best chunk score
    for hit in item.hits:
        index = max(0, bisect_right(starts, hit.char_start) - 1)
        while index < len(spans) and spans[index][0] < hit.char_end:
            start, end = max(spans[index][0], hit.char_start), min(spans[index][1], hit.char_end)
            seen = found.get(index, (start, end, hit.score))
            if start < end:
                found[index] = (min(seen[0], start), max(seen[1], end), max(seen[2], hit.score))
            index += 1
    sentences = []
    for index in sorted(found):
        start, end, score = found[index]
        start, end = _strip_span(doc.text, start, end)
        if start < end:
            sentences.append(Sentence(item.doc_id, start, end, doc.text[start:end], score, lede=index == 0))
    return sentences


def _chunk_sentences(item: DocumentEvidence) -> list[Sentence]:
    """Without the stored document: the sentences of the chunks' own texts (copies counted once)."""
    found: dict[tuple[int, int], Sentence] = {}
    for hit in item.hits:
        for start, end in sentence_spans(hit.text):
            key = (hit.char_start + start, hit.char_start + end)
            if key not in found or found[key].chunk_score < hit.score:
                found[key] = Sentence(item.doc_id, *key, hit.text[start:end], hit.score)
    return [found[key] for key in sorted(found)]


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


_WORD = re.compile(r"[^\W\d_]{3,}|\d+")
_STOPWORDS = frozenset(
    "the and for with that this from have has had was were are been its their they them than then what when "
    "where which who whom whose why how did does not but about into over after before also said says would "
    "could should will can may might more most other some such only very just sources source outlets "
    "describe described report reported cover covered".split()
)
_STEM = 5


def content_terms(text: str) -> set[str]:
    """Content words of a text as 5-letter stems ("withdrawal" and "withdrew" share "withd")."""
    return {w.lower()[:_STEM] for w in _WORD.findall(text) if w.lower() not in _STOPWORDS}


def lexical_relevance(query: str, texts: Sequence[str]) -> list[float]:
    """The share of the query's content words (stems) that each text contains, 0 to 1."""
    wanted = content_terms(query)
    if not wanted:
        return [0.0] * len(texts)
    return [len(wanted & content_terms(text)) / len(wanted) for text in texts]


def select_sentences(
    candidates: Sequence[Sentence], budget: int, header_tokens: Mapping[str, int], gap_tokens: int
) -> list[Sentence]:
    """The best-scored sentences whose tokens, gaps and article fences fit `budget`, in their input order.

    Everything is kept when everything fits. Otherwise greedy by score, each sentence taken from an article
    lowering the rest of that article by ARTICLE_DECAY; a sentence that does not fit is passed over for
    smaller ones, but fragments (under MIN_SENTENCE_TOKENS) and sentences scoring more than RELEVANCE_WINDOW
    below the best are never used as filler."""

    def cost(sentence: Sentence, opened: bool) -> int:
        return sentence.tokens + gap_tokens + (0 if opened else header_tokens[sentence.doc_id])

    if _evidence_cost(candidates, header_tokens, gap_tokens) <= budget:
        return list(candidates)
    floor = max(s.score for s in candidates) - RELEVANCE_WINDOW
    pool = sorted(
        (i for i, s in enumerate(candidates) if s.score >= floor and s.tokens >= MIN_SENTENCE_TOKENS),
        key=lambda i: -candidates[i].score,
    )
    taken: Counter[str] = Counter()
    chosen: list[int] = []
    used = 0
    while pool:
        pick = max(range(len(pool)), key=lambda k: (_decayed(candidates[pool[k]], taken), -k))
        index = pool.pop(pick)
        sentence = candidates[index]
        needed = cost(sentence, taken[sentence.doc_id] > 0)
        if used + needed <= budget:
            chosen.append(index)
            used += needed
            taken[sentence.doc_id] += 1
    return [candidates[i] for i in sorted(chosen)]


def _evidence_cost(sentences: Sequence[Sentence], header_tokens: Mapping[str, int], gap_tokens: int) -> int:
    """Tokens of showing every sentence: their text, the gaps and one fence per article."""
    docs = {s.doc_id for s in sentences}
    return sum(s.tokens + gap_tokens for s in sentences) + sum(header_tokens[d] for d in docs)


def _decayed(sentence: Sentence, taken: Counter[str]) -> float:
    return sentence.score - ARTICLE_DECAY * taken[sentence.doc_id]


def merge_sentences(
    item: DocumentEvidence, sentences: Sequence[Sentence], doc: Document | None
) -> list[Passage]:
    """Chosen sentences of one article as passages: adjacent ones (only whitespace between) merged, the text
    read from the stored document by offset."""
    spans: list[list[Any]] = []  # [start, end, score, text]
    for sentence in sorted(sentences, key=lambda s: s.start):
        if spans and doc is not None and not doc.text[spans[-1][1] : sentence.start].strip():
            spans[-1][1] = max(spans[-1][1], sentence.end)
            spans[-1][2] = max(spans[-1][2], sentence.score)
            spans[-1][3] = doc.text[spans[-1][0] : spans[-1][1]]
        else:
            spans.append([sentence.start, sentence.end, sentence.score, sentence.text])
    return [
        Passage(item.doc_id, item.source, item.date, item.title, start, end, text, score)
        for start, end, score, text in spans
    ]


@dataclass
class SourceEvidence:
    """What one source can show: its retrieved articles, their candidate sentences, and the chosen ones."""

    source: str
    documents: list[DocumentEvidence]
    candidates: list[Sentence]
    chosen: list[Sentence]

    def passages(self, chosen: Sequence[Sentence], stored: Mapping[str, Document]) -> list[Passage]:
        passages: list[Passage] = []
        for item in self.documents:
            mine = [s for s in chosen if s.doc_id == item.doc_id]
            passages += merge_sentences(item, mine, stored.get(item.doc_id)) if mine else []
        return passages

    def render(self, chosen: Sequence[Sentence], stored: Mapping[str, Document]) -> str:
        """One fence per article shown (as retrieved: by date), its passages in text order."""
        passages = self.passages(chosen, stored)
        blocks = []
        for item in self.documents:
            texts = [p.text for p in passages if p.doc_id == item.doc_id]
            if texts:
                blocks.append(fence(EVIDENCE_OPEN, EVIDENCE_CLOSE, fence_attributes(item), GAP.join(texts)))
        return "\n\n".join(blocks)


def pick_sources(retrieved: Retrieved, max_sources: int, margin: float) -> tuple[list[str], list[str]]:
    """(analysed, left out): every source when there are at most `max_sources`; else the `max_sources` with
    the best top passage, none scoring more than `margin` below the best. Analysed ones keep their order."""
    names = list(retrieved.by_source)
    if len(names) <= max_sources:
        return names, []
    best = {name: max((d.best_score for d in retrieved.by_source[name]), default=0.0) for name in names}
    ranked = sorted(names, key=lambda name: -best[name])
    floor = best[ranked[0]] - margin
    kept = {name for name in ranked[:max_sources] if best[name] >= floor}
    return [n for n in names if n in kept], [n for n in ranked if n not in kept]


def call_groups(sources: Sequence[str], per_call: int) -> list[list[str]]:
    """Sources split into the fewest groups of at most `per_call`, as even in size as possible, in order."""
    if not sources:
        return []
    count = -(-len(sources) // per_call)
    size, extra = divmod(len(sources), count)
    groups, at = [], 0
    for index in range(count):
        step = size + (1 if index < extra else 0)
        groups.append(list(sources[at : at + step]))
        at += step
    return groups


def compact_analysis(
    source: str,
    stance: str,
    claims: Sequence[tuple[str, str]],
    positions: Sequence[tuple[str, str | None, str, str]],
) -> str:
    """One source's analysis as the reduce call sees it: `id: claim` and `id (date, stance): position`
    lines in a fence; no summary and no quotes (ids resolve to quotes already verified)."""
    lines = [f"{claim_id}: {_one_line(text)}" for claim_id, text in claims]
    lines += [
        f"{pid} ({date or 'undated'}, {label}): {_one_line(text)}" for pid, date, label, text in positions
    ]
    body = "\n".join(lines) or "(nothing quoted)"
    return fence(ANALYSIS_OPEN, ANALYSIS_CLOSE, {"source": source, "stance": stance}, body)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass
class CallPlan:
    """One rendered call: its messages, their token count, and the evidence that made it in."""

    part: str
    label: str
    messages: list[Message]
    prompt_tokens: int
    sources: list[str] = field(default_factory=list)
    chosen: dict[str, list[Sentence]] = field(default_factory=dict)
    trimmed: int = 0

    @property
    def shown_docs(self) -> dict[str, set[str]]:
        """Per source, the articles shown: a quote may only cite one of these."""
        return {source: {s.doc_id for s in sentences} for source, sentences in self.chosen.items()}


@dataclass
class CallSet:
    """The analysis calls of one request, before anything is sent."""

    plans: list[CallPlan]
    evidence: dict[str, SourceEvidence]
    skipped: list[str]
    retrieved_sources: int

    @property
    def single(self) -> bool:
        """One call analyses every source and compares them: no reduce call."""
        return len(self.plans) == 1 and self.plans[0].part == "single"


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
    methods: list[str] = field(default_factory=list)  # how each answered call was asked for JSON

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


@dataclass(frozen=True)
class MappedPosition:
    """A position whose quote passed the gate."""

    text: str
    stance: StanceLabel
    quote: Quote


@dataclass
class MappedSource:
    """A source after analysis: its view (verified quotes only), its claims and positions by the backend's
    ids, and `aliases` from the ids the model gave them to those ids."""

    view: SourceView
    claims: dict[str, Claim]
    positions: dict[str, MappedPosition]
    aliases: dict[str, str]
    shown_docs: set[str]


@dataclass
class RefIndex:
    """The ids a cross-source answer may cite, resolved to verified claims and quotes (with their source)."""

    claims: dict[str, tuple[str, Claim]]
    points: dict[str, tuple[str, Quote]]

    @classmethod
    def of(cls, mapped: Sequence[MappedSource], *, model_ids: bool) -> RefIndex:
        """`model_ids`: the ids the model gave (a `single` call cites its own); else the backend's."""
        claims: dict[str, tuple[str, Claim]] = {}
        points: dict[str, tuple[str, Quote]] = {}
        for item in mapped:
            source = item.view.source
            names = item.aliases if model_ids else {own: own for own in [*item.claims, *item.positions]}
            for ref, own in names.items():
                if own in item.claims:
                    claims.setdefault(ref, (source, item.claims[own]))
                    points.setdefault(ref, (source, item.claims[own].quotes[0]))
                elif own in item.positions:
                    points.setdefault(ref, (source, item.positions[own].quote))
        return cls(claims, points)


# -- the backend ---------------------------------------------------------------------------------------


class LLMBackend(Backend):
    """Sources analysed in as few calls as fit, compared by claim ids; every quote checked against the store."""

    def __init__(
        self,
        target: LLMTarget,
        settings: Settings,
        *,
        chat_model: BaseChatModel | None = None,
        embedder: Embedder | None = None,
        api_key: str | None = None,
    ) -> None:
        self.target = target
        self._api_key = api_key
        self.settings = settings
        self.llm: LLMSettings = settings.llm
        self.name = target.provider
        self.model = target.model
        self.method = _structured_method(self.llm.structured_method)
        self.prompt: Prompt = load_prompt(self.llm.prompt, prompt_directories(self.llm.prompts_dir))
        for part in PART_SCHEMAS:
            self.prompt.part(part)  # a ConfigError naming the file when the prompt lacks one
        self.tokens = TokenCounter(target.model)
        self.prices: PriceTable = load_price_table(self.llm.price_table)
        self.cache = ResponseCache(settings.data_dir / CACHE_FILE) if self.llm.cache else None
        self.embedder = embedder
        # Sentence vectors are memoised: the engine's memo (cleared per question) when it built this backend,
        # else one of our own, so a repeated plan of the same question embeds nothing twice.
        self._memo = (
            embedder if embedder is None or isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
        )
        self._chat = chat_model
        self.methods = MethodMemory(settings.data_dir / MEMORY_FILE if self.llm.cache else None)
        self.error_log = settings.data_dir / LOG_FILE
        self._gap_tokens = self.tokens.text(GAP)

    @classmethod
    def from_spec(
        cls,
        spec: str,
        settings: Settings,
        *,
        chat_model: BaseChatModel | None = None,
        embedder: Embedder | None = None,
        api_key: str | None = None,
    ) -> LLMBackend:
        target = parse_llm_spec(spec, settings)
        return cls(target, settings, chat_model=chat_model, embedder=embedder, api_key=api_key)

    @property
    def budget(self) -> int:
        """Prompt tokens allowed per call: the context minus the room kept for the answer."""
        return self.llm.context_tokens - self.llm.max_output_tokens

    # -- entry points ----------------------------------------------------------------------------------

    def compare(self, request: AnalysisRequest) -> Comparison:
        if self._chat is None:
            resolve_api_key(self.target, self._api_key)  # a missing key fails before any work
        ledger = RunLedger(request.documents)
        calls = self.plan_calls(request)
        ledger.warnings += self._plan_notes(calls)
        mapped, cross = self._analyse(calls, request, ledger)
        if not calls.single:
            cross = self._reduce(request, mapped, ledger)
        comparison = Comparison(
            question=request.question,
            target=request.target,
            sources=[m.view for m in mapped],
            meta=self._meta(ledger),
        )
        if cross is not None:
            refs = RefIndex.of(mapped, model_ids=calls.single)
            self._apply_cross(comparison, cross, refs, [m.view.source for m in mapped], ledger)
        comparison.meta.quotes = ledger.quote_counts()
        comparison.meta.warnings = self._warnings(ledger)
        return comparison

    def estimate(self, request: AnalysisRequest) -> Estimate:
        """An upper bound, nothing sent: the prompt tokens of every analysis call counted with tiktoken, the
        reduce prompt with every map answer at its maximum, every answer at max_output_tokens, the cost of
        that at list price, and the number of calls."""
        calls = self.plan_calls(request)
        upper, typical = self._reduce_sizes(request, calls)
        count = len(calls.plans) + (0 if calls.single else 1)
        prompt_tokens = sum(p.prompt_tokens for p in calls.plans) + upper
        completion = count * self.llm.max_output_tokens
        cost = self.prices.cost(self.model or "", prompt_tokens, completion)
        notes = [self._calls_note(calls), self._evidence_note(calls)]
        if not calls.single:
            notes.append(
                f"upper bound: the reduce prompt is counted with every map answer at its maximum "
                f"({self.llm.max_output_tokens} tokens); typically it is about {typical} tokens "
                f"({TYPICAL_ANALYSIS_TOKENS} per source analysis, measured on recorded answers)"
            )
        notes.append(
            f"cost at most (every answer at {self.llm.max_output_tokens} tokens), at list prices as of "
            f"{self.prices.as_of}"
        )
        notes += self._plan_notes(calls)
        notes += [cost.warning] if cost.warning else []
        cached = sum(1 for p in calls.plans if self._cached(p, PART_SCHEMAS[p.part]))
        if cached:
            notes.append(
                f"{cached} of {len(calls.plans)} analysis call(s) are in the response cache and would cost nothing"
            )
        if self._chat is None and self.target.provider == "openai" and not os.environ.get(API_KEY_ENV):
            notes.append(f"{API_KEY_ENV} is not set: a real run would stop with an error")
        return Estimate(self.target.spec, self.model, prompt_tokens, completion, cost.usd, count, notes)

    def prompt_token_comparison(self, request: AnalysisRequest) -> dict[str, Any]:
        """Prompt tokens of this backend's calls vs one prompt stuffed with every retrieved article, whole
        (the `single` instructions). `backend_prompt_tokens` is the typical figure (the reduce prompt from
        TYPICAL_ANALYSIS_TOKENS per source); `backend_prompt_tokens_upper_bound` is what estimate() counts."""
        calls = self.plan_calls(request)
        analysis_tokens = sum(p.prompt_tokens for p in calls.plans)
        upper, typical = self._reduce_sizes(request, calls)
        stuffed = self.tokens.messages(self._stuffed_messages(request))
        ours = analysis_tokens + typical
        shown = [s for p in calls.plans for sentences in p.chosen.values() for s in sentences]
        candidates = [s for e in calls.evidence.values() for s in e.candidates]
        retrieved = [
            p.text
            for docs in request.retrieved.by_source.values()
            for p in source_passages(docs, request.documents)
        ]
        return {
            "model": self.model,
            "encoding": self.tokens.encoding_name,
            "strategy": "single" if calls.single else "map_reduce",
            "sources": sum(len(p.sources) for p in calls.plans),
            "sources_retrieved": calls.retrieved_sources,
            "sources_skipped": list(calls.skipped),
            "documents": len(request.documents),
            "calls": len(calls.plans) + (0 if calls.single else 1),
            "map_prompt_tokens": analysis_tokens,
            "reduce_prompt_tokens_estimated": typical,
            "reduce_prompt_tokens_upper_bound": upper,
            "backend_prompt_tokens": ours,
            "backend_prompt_tokens_upper_bound": analysis_tokens + upper,
            "largest_call_prompt_tokens": max([p.prompt_tokens for p in calls.plans] + [upper]),
            "sentences_shown": len(shown),
            "sentences_retrieved": len(candidates),
            "evidence_tokens_shown": sum(s.tokens for s in shown),
            "evidence_tokens_retrieved": sum(self.tokens.text(text) for text in retrieved),
            "stuffed_prompt_tokens": stuffed,
            "stuffed_over_backend": round(stuffed / ours, 3) if ours else None,
            "budget_per_call": self.budget,
            "stuffed_fits_budget": stuffed <= self.budget,
        }

    # -- planning: sources, evidence, calls ------------------------------------------------------------

    def plan_calls(self, request: AnalysisRequest) -> CallSet:
        """Which sources, which sentences of each, in which calls; rendered and counted, nothing sent."""
        sources, skipped = pick_sources(request.retrieved, self.llm.max_sources, self.llm.weak_source_margin)
        groups = call_groups(sources, self.llm.sources_per_call)
        budgets = {source: self.evidence_budget(len(group)) for group in groups for source in group}
        evidence = self._select_evidence(request, budgets)
        part = "single" if len(groups) == 1 else "map"
        plans = [self._plan_group(part, group, evidence, request) for group in groups]
        return CallSet(plans, evidence, skipped, len(request.retrieved.by_source))

    def evidence_budget(self, sources_in_call: int) -> int:
        """Evidence tokens per source: evidence_tokens_per_source, more when a call has few sources so that
        the call shows at least min_evidence_tokens_per_call."""
        shared = self.llm.min_evidence_tokens_per_call // max(1, sources_in_call)
        return max(self.llm.evidence_tokens_per_source, shared)

    def _select_evidence(
        self, request: AnalysisRequest, budgets: Mapping[str, int]
    ) -> dict[str, SourceEvidence]:
        """Each source's candidate sentences, scored, and the ones its evidence budget takes."""
        evidence: dict[str, SourceEvidence] = {}
        headers: dict[str, int] = {}
        for source in budgets:
            items = request.retrieved.by_source.get(source, [])
            candidates = [
                replace(sentence, tokens=self.tokens.text(defang(sentence.text)))
                for item in items
                for sentence in retrieved_sentences(item, request.documents.get(item.doc_id))
            ]
            for item in items:  # the fence lines and the blank line between fences
                headers[item.doc_id] = (
                    self.tokens.text(fence(EVIDENCE_OPEN, EVIDENCE_CLOSE, fence_attributes(item), "")) + 2
                )
            evidence[source] = SourceEvidence(source, list(items), candidates, [])
        over = {
            s
            for s, e in evidence.items()
            if _evidence_cost(e.candidates, headers, self._gap_tokens) > budgets[s]
        }
        ranked = [sentence for s in over for sentence in evidence[s].candidates]
        scored = self._scored([s for e in evidence.values() for s in e.candidates], ranked, request)
        for source, shown in evidence.items():
            budget = budgets[source]
            shown.candidates = [scored[(s.doc_id, s.start, s.end)] for s in shown.candidates]
            shown.chosen = select_sentences(shown.candidates, budget, headers, self._gap_tokens)
            if not shown.chosen and shown.candidates:  # the best sentence alone is longer than the budget
                shown.chosen = self._cut_to_fit(shown.candidates, budget, headers)
        return evidence

    def _scored(
        self, sentences: Sequence[Sentence], ranked: Sequence[Sentence], request: AnalysisRequest
    ) -> dict[tuple[str, int, int], Sentence]:
        """Every sentence scored (see LEXICAL_WEIGHT); the embedder only sees `ranked`, the sentences of
        sources that have more than their budget (the others are shown whole, whatever their scores)."""
        lexical = lexical_relevance(request.target or request.question, [s.text for s in sentences])
        semantic = self._semantic_relevance(request.question, [s.text for s in ranked])
        cosine = dict(zip([(s.doc_id, s.start, s.end) for s in ranked], semantic or [], strict=False))
        scored = {}
        for sentence, overlap in zip(sentences, lexical, strict=True):
            key = (sentence.doc_id, sentence.start, sentence.end)
            base = (sentence.chunk_score + cosine[key]) / 2 if key in cosine else sentence.chunk_score
            bonus = LEXICAL_WEIGHT * overlap + (LEDE_BONUS if sentence.lede else 0.0)
            scored[key] = replace(sentence, score=base + bonus)
        return scored

    def _semantic_relevance(self, question: str, texts: Sequence[str]) -> list[float] | None:
        """Cosine of each text with the question by the backend's embedder (None without one)."""
        if self._memo is None or not texts:
            return None
        vectors = self._memo.embed([question, *texts])
        return [float(vector @ vectors[0]) for vector in vectors[1:]]

    def _cut_to_fit(
        self, candidates: Sequence[Sentence], budget: int, headers: Mapping[str, int]
    ) -> list[Sentence]:
        """The best sentence, cut at a word boundary to fit the budget (a long run-on "sentence"); never cut
        under MIN_CUT_TOKENS, even when the article's fence leaves less room (a budget set very low)."""
        best = max(candidates, key=lambda s: s.score)
        room = budget - headers[best.doc_id] - self._gap_tokens
        text = self.tokens.prefix(best.text, max(room, MIN_CUT_TOKENS))
        if not text:
            return []
        return [replace(best, end=best.start + len(text), text=text, tokens=self.tokens.text(defang(text)))]

    def _plan_group(
        self, part: str, group: list[str], evidence: dict[str, SourceEvidence], request: AnalysisRequest
    ) -> CallPlan:
        """One call over `group`; when it is over the per-call budget, its lowest-ranked sentences go first."""
        chosen = {source: list(evidence[source].chosen) for source in group}

        def render() -> list[Message]:
            blocks = [evidence[s].render(chosen[s], request.documents) for s in group]
            text = "\n\n".join(block for block in blocks if block) or "(no passages)"
            return self.prompt.render(part, self._call_values(part, request, group, text))

        base = self.tokens.messages(self.prompt.render(part, self._call_values(part, request, group, "")))
        if base > self.budget:
            raise ConfigError(
                f"the {self.prompt.id} instructions alone take {base} tokens, more than the per-call budget "
                f"({self.llm.context_tokens} context - {self.llm.max_output_tokens} output = {self.budget})",
                hint="raise NCOMPARE_LLM__CONTEXT_TOKENS or lower NCOMPARE_LLM__MAX_OUTPUT_TOKENS",
            )
        messages = render()
        tokens, trimmed = self.tokens.messages(messages), 0
        while tokens > self.budget:
            ranked = sorted(
                ((source, s) for source in group for s in chosen[source]), key=lambda p: p[1].score
            )
            freed = 0
            for source, sentence in ranked:
                if freed >= tokens - self.budget:
                    break
                chosen[source].remove(sentence)
                freed, trimmed = freed + sentence.tokens + self._gap_tokens, trimmed + 1
            if not any(chosen.values()):
                raise ConfigError(
                    f"{_sources_label(group)}: not even the best passage fits the per-call budget of "
                    f"{self.budget} tokens",
                    hint="raise NCOMPARE_LLM__CONTEXT_TOKENS",
                )
            messages = render()
            tokens = self.tokens.messages(messages)
        return CallPlan(part, ", ".join(group), messages, tokens, list(group), chosen, trimmed)

    def _call_values(
        self, part: str, request: AnalysisRequest, sources: Sequence[str], evidence: str
    ) -> dict[str, str]:
        return {
            "question": request.question,
            "target": request.target,
            "sources": ", ".join(sources),
            "evidence": evidence,
            "output_format": schema_outline(PART_SCHEMAS[part]),
        }

    def _plan_notes(self, calls: CallSet) -> list[str]:
        notes = [_trim_note(plan) for plan in calls.plans if plan.trimmed]
        if calls.skipped:
            notes.insert(
                0,
                f"{len(calls.skipped)} of {calls.retrieved_sources} sources left out as the most weakly related "
                f"to the question (at most {self.llm.max_sources} are analysed, none more than "
                f"{self.llm.weak_source_margin:g} below the best source's top passage score): "
                f"{', '.join(calls.skipped)}; narrow the question with --source or filters, or raise "
                "NCOMPARE_LLM__MAX_SOURCES",
            )
        return notes

    def _calls_note(self, calls: CallSet) -> str:
        sources = sum(len(p.sources) for p in calls.plans)
        if calls.single:
            return f"1 call: {sources} source(s) analysed and compared together"
        return (
            f"{len(calls.plans)} map call(s) of up to {self.llm.sources_per_call} sources each "
            f"({sources} sources), then 1 reduce call"
        )

    def _evidence_note(self, calls: CallSet) -> str:
        shown = [s for p in calls.plans for sentences in p.chosen.values() for s in sentences]
        candidates = [s for e in calls.evidence.values() for s in e.candidates]
        return (
            f"evidence: {len(shown)} of {len(candidates)} retrieved sentences "
            f"({sum(s.tokens for s in shown)} of {sum(s.tokens for s in candidates)} tokens), "
            f"at most {self.llm.evidence_tokens_per_source} tokens per source"
        )

    # -- analysis calls --------------------------------------------------------------------------------

    def _analyse(
        self, calls: CallSet, request: AnalysisRequest, ledger: RunLedger
    ) -> tuple[list[MappedSource], CrossSourceAnalysis | None]:
        mapped: list[MappedSource] = []
        failures: list[LLMOutputError] = []
        cross: CrossSourceAnalysis | None = None
        for plan in calls.plans:
            try:
                answer = self._ask(plan, PART_SCHEMAS[plan.part], ledger)
            except LLMOutputError as error:
                failures.append(error)
                ledger.warnings.append(f"{_sources_label(plan.sources)} left out: {error.message}")
                continue
            assert isinstance(answer, MapAnswer | SingleAnswer)
            mapped += self._mapped_sources(answer.sources, plan, request, ledger)
            if isinstance(answer, SingleAnswer):
                cross = answer.cross_source()
        if failures and not mapped:
            raise failures[-1]
        return mapped, cross

    def _mapped_sources(
        self, analyses: Sequence[SourceAnalysis], plan: CallPlan, request: AnalysisRequest, ledger: RunLedger
    ) -> list[MappedSource]:
        found = _match_analyses(analyses, plan.sources, ledger)
        mapped = []
        for source in plan.sources:
            if source not in found:
                ledger.warnings.append(f"source {source!r} left out: the answer has no analysis of it")
                continue
            mapped.append(self._mapped_source(source, found[source], plan, request, ledger))
        return mapped

    def _mapped_source(
        self,
        source: str,
        analysis: SourceAnalysis,
        plan: CallPlan,
        request: AnalysisRequest,
        ledger: RunLedger,
    ) -> MappedSource:
        allowed = plan.shown_docs.get(source, set())
        claims: dict[str, Claim] = {}
        aliases: dict[str, str] = {}
        for proposed in analysis.claims:
            quotes = ledger.verify_all(proposed.quotes, allowed)
            if not quotes:
                ledger.count("claims_dropped_unquoted")
                continue
            claim_id = f"{source}-{len(claims) + 1}"
            claims[claim_id] = Claim(id=claim_id, text=proposed.claim.strip(), quotes=quotes)
            aliases.setdefault(proposed.id.strip() or claim_id, claim_id)
        positions: dict[str, MappedPosition] = {}
        for position in analysis.positions:
            quote = ledger.verify(position.doc_id, position.quote, allowed)
            if quote is None:
                ledger.count("positions_dropped_unquoted")
                continue
            position_id = f"{source}-p{len(positions) + 1}"
            positions[position_id] = MappedPosition(position.position.strip(), position.stance, quote)
            aliases.setdefault(position.id.strip() or position_id, position_id)
        view = self._source_view(source, analysis, list(claims.values()), allowed, request, ledger)
        return MappedSource(view, claims, positions, aliases, allowed)

    def _source_view(
        self,
        source: str,
        analysis: SourceAnalysis,
        claims: list[Claim],
        allowed: set[str],
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
            summary_quotes=ledger.verify_all(analysis.stance_quotes, allowed),
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
        return compact_analysis(
            mapped.view.source,
            mapped.view.stance.label,
            [(claim_id, claim.text) for claim_id, claim in list(mapped.claims.items())[:claims]],
            [
                (position_id, p.quote.date, p.stance, p.text)
                for position_id, p in list(mapped.positions.items())[:positions]
            ],
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
        return CallPlan("reduce", "reduce", messages, self.tokens.messages(messages), sources)

    def _reduce_sizes(self, request: AnalysisRequest, calls: CallSet) -> tuple[int, int]:
        """(upper bound, typical) prompt tokens of the reduce call; (0, 0) when one call does everything.

        The compact analysis of a source is shorter than the JSON answer it comes from, so every map answer
        at max_output_tokens bounds the reduce prompt; typically each source adds TYPICAL_ANALYSIS_TOKENS."""
        if calls.single or not calls.plans:
            return 0, 0
        sources = [source for plan in calls.plans for source in plan.sources]
        empty = self.prompt.render("reduce", self._reduce_values(request, sources, ""))
        base = self.tokens.messages(empty)
        upper = base + len(calls.plans) * self.llm.max_output_tokens
        typical = base + len(sources) * (TYPICAL_ANALYSIS_TOKENS + 2)  # 2: the blank line between fences
        return min(self.budget, upper), min(self.budget, typical)

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

    def _apply_cross(
        self,
        comparison: Comparison,
        cross: CrossSourceAnalysis,
        refs: RefIndex,
        sources: list[str],
        ledger: RunLedger,
    ) -> None:
        comparison.agreements = _agreements(cross.agreements, refs, ledger)
        comparison.differences = _differences(cross.differences, refs, sources, ledger)
        comparison.omissions = _omissions(cross.omissions, sources, ledger)
        comparison.shifts = _shifts(cross.shifts, refs, comparison.target, ledger)

    # -- calls -----------------------------------------------------------------------------------------

    def _chat_model(self) -> BaseChatModel:
        if self._chat is None:
            self._chat = ChatOpenAI(
                model=self.target.model,
                api_key=SecretStr(resolve_api_key(self.target, self._api_key)),
                base_url=self.target.base_url,
                temperature=self.llm.temperature,
                timeout=self.llm.timeout_s,
                max_retries=0,  # retried in _call, which knows a refused method is not worth retrying
                max_completion_tokens=self.llm.max_output_tokens,
                # llama-cpp-python (and older servers) read only the legacy max_tokens: without it a reply runs
                # until the context is full. OpenAI itself takes max_completion_tokens alone.
                extra_body=(
                    {"max_tokens": self.llm.max_output_tokens}
                    if self.target.provider == "openai-compatible"
                    else None
                ),
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
        answer, tokens_in, tokens_out, method = self._invoke(plan, schema)
        ledger.record(tokens_in, tokens_out, cached=False)
        if method not in ledger.methods:
            ledger.methods.append(method)
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

    def _invoke(self, plan: CallPlan, schema: type[Answer]) -> tuple[Answer, int, int, Method]:
        """One call, by the configured structured-output method or, under `auto`, by the first the server
        accepts (the remembered one first); what worked is remembered for this server and model."""
        remembered = self.methods.get(self.target.base_url, self.target.model)
        refused: list[Refusal] = []
        for method in methods_to_try(self.method, remembered):
            probing = self.method == "auto" and method != remembered
            try:
                answer = self._invoke_with(method, plan, schema, probing=probing)
            except Refusal as refusal:
                refused.append(refusal)
                continue
            if self.method == "auto" and method != remembered:
                self.methods.remember(self.target.base_url, self.target.model, method, refused)
            return (*answer, method)
        raise refused_method(self.target, "; ".join(map(str, refused)), self.method)

    def _invoke_with(
        self, method: Method, plan: CallPlan, schema: type[Answer], *, probing: bool
    ) -> tuple[Answer, int, int]:
        """The answer by one method, re-asked after an unusable reply. Raises Refusal when the server refuses
        the method (any setting), or when a method being tried under `auto` gives nothing usable."""
        messages: list[BaseMessage] = [
            SystemMessage(content) if role == "system" else HumanMessage(content)
            for role, content in plan.messages
        ]
        tokens_in = tokens_out = 0
        problem = ""
        attempts = 1 if probing and method != "prompt" else 1 + self.llm.output_retries
        for _ in range(attempts):
            try:
                result = self._call(method, schema, messages)
            except ValidationError as error:  # json_schema: the openai client validates the reply itself
                problem = f"the reply does not match the {schema.__name__} schema ({_first_error(error)})"
            else:
                raw = result.get("raw")
                usage = getattr(raw, "usage_metadata", None) or {}
                tokens_in += int(usage.get("input_tokens", 0))
                tokens_out += int(usage.get("output_tokens", 0))
                if isinstance(result.get("parsed"), schema):
                    return result["parsed"], tokens_in, tokens_out
                problem = output_problem(raw, result.get("parsing_error"), schema)
            messages = [*messages, HumanMessage(_REASK.format(problem=problem[:400]))]
        if probing and method != "prompt":
            raise Refusal(method, f"no usable answer ({problem[:200]})")
        raise LLMOutputError(
            f"{self.target.spec} gave no usable {plan.part} answer for {plan.label!r} "
            f"after {attempts} attempt(s) with {describe(method)}: {problem}",
            hint="the model did not write the asked JSON: use a stronger model or raise "
            "NCOMPARE_LLM__OUTPUT_RETRIES"
            + (
                ""
                if self.method == "auto"
                else "; NCOMPARE_LLM__STRUCTURED_METHOD=auto lets the tool pick how to ask"
            ),
        )

    def _call(self, method: Method, schema: type[Answer], messages: list[BaseMessage]) -> dict[str, Any]:
        """One request, retried here (not in the openai client) so that a refusal of the method is never
        retried: it becomes Refusal; other failures are retried with backoff, then a message for people."""
        runnable = structured_runnable(self._chat_model(), schema, method)
        for attempt in range(self.llm.max_retries + 1):
            try:
                with (
                    warnings.catch_warnings()
                ):  # LangChain's advice on methods: our errors carry it as a hint
                    warnings.filterwarnings("ignore", category=UserWarning, module="langchain_openai")
                    return cast(dict[str, Any], runnable.invoke(messages))
            except openai.APIStatusError as error:
                text = _response_text(error)
                if method != "prompt" and capability_refusal(
                    error.status_code, text
                ):  # prompt asks nothing special
                    raise Refusal(method, f"HTTP {error.status_code}: {short_reason(text, 120)}") from error
                if not retryable(error) or attempt == self.llm.max_retries:
                    raise api_error(error, self.target, self.llm, self.error_log) from error
                time.sleep(retry_delay(error, attempt))
            except openai.APITimeoutError as error:  # asking again re-runs the same slow generation
                raise api_error(error, self.target, self.llm, self.error_log) from error
            except openai.APIConnectionError as error:
                if attempt == self.llm.max_retries:
                    raise api_error(error, self.target, self.llm, self.error_log) from error
                time.sleep(retry_delay(None, attempt))
            except openai.OpenAIError as error:
                raise api_error(error, self.target, self.llm, self.error_log) from error
            except (AttributeError, TypeError, ValueError) as error:  # a reply that is not an API response
                if isinstance(error, ValidationError) or not raised_in_llm_client(error.__traceback__):
                    raise
                raise foreign_reply(error, self.target.where) from error
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- meta ------------------------------------------------------------------------------------------

    def _meta(self, ledger: RunLedger) -> ComparisonMeta:
        cost = self.prices.cost(self.model or "", ledger.billed_in, ledger.billed_out)
        if cost.warning:
            ledger.warnings.append(cost.warning)
        return ComparisonMeta(
            backend=self.target.spec,
            model=self.model,
            prompt=self.prompt.id,
            structured_output=_structured_note(self.method, ledger.methods),
            settings_hash=self.settings.settings_hash(),
            package_version=__version__,
            tokens_in=ledger.tokens_in,
            tokens_out=ledger.tokens_out,
            cost_usd=cost.usd,
            cached_calls=ledger.cached_calls,
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
        """The baseline: every retrieved article, whole, in one prompt with the `single` instructions."""
        blocks = [
            Passage(doc.id, doc.source, doc.date, doc.title, 0, len(doc.text), doc.text, 1.0).fenced()
            for doc in request.documents.values()
        ]
        sources = list(request.retrieved.by_source)
        return self.prompt.render(
            "single", self._call_values("single", request, sources, "\n\n".join(blocks))
        )


_REASK = (
    "Your previous reply could not be used: {problem}. Reply again with only the JSON object in the shape "
    "asked for, and nothing else."
)


def _structured_note(setting: str, used: Sequence[str]) -> str:
    """How the model was asked for JSON, e.g. 'auto: json_object_schema' (nothing asked: the setting)."""
    if not used:
        return f"{setting} (all answers from the cache)" if setting == "auto" else setting
    return f"auto: {', '.join(used)}" if setting == "auto" else ", ".join(used)


def _sources_label(sources: Sequence[str]) -> str:
    if len(sources) == 1:
        return f"source {sources[0]!r}"
    return "sources " + ", ".join(repr(s) for s in sources)


def _trim_note(plan: CallPlan) -> str:
    return (
        f"{_sources_label(plan.sources)}: {plan.trimmed} evidence sentence(s) left out to fit the token budget "
        "of one call (lowest-ranked first)"
    )


def _match_analyses(
    analyses: Sequence[SourceAnalysis], sources: Sequence[str], ledger: RunLedger
) -> dict[str, SourceAnalysis]:
    """Each source's analysis by name (exact, else ignoring case and spaces); the only analysis of a
    one-source call is that source's whatever name it gives. Analyses of unknown sources are counted."""
    if len(sources) == 1 and len(analyses) == 1:
        return {sources[0]: analyses[0]}
    folded = {_fold(source): source for source in sources}
    found: dict[str, SourceAnalysis] = {}
    for analysis in analyses:
        source = analysis.source if analysis.source in sources else folded.get(_fold(analysis.source))
        if source is None:
            ledger.count("analyses_of_unknown_sources")
        else:
            found.setdefault(source, analysis)
    return found


def _fold(name: str) -> str:
    return "".join(name.split()).casefold()


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


# -- cross-source answer -> domain types ---------------------------------------------------------------


def _agreements(items: Sequence[AgreementItem], refs: RefIndex, ledger: RunLedger) -> list[Agreement]:
    agreements = []
    for item in items:
        backing: dict[str, Claim] = {}
        for claim_id in item.claim_ids:
            if claim_id.strip() in refs.claims:
                source, claim = refs.claims[claim_id.strip()]
                backing.setdefault(source, claim)
        if len(backing) < 2:
            ledger.count("agreements_dropped")
            continue
        quotes = [claim.quotes[0] for claim in backing.values()]
        agreements.append(Agreement(claim=item.claim.strip(), sources=sorted(backing), quotes=quotes))
    return agreements


def _differences(
    items: Sequence[DifferenceItem], refs: RefIndex, sources: list[str], ledger: RunLedger
) -> list[Difference]:
    differences = []
    for item in items:
        positions: dict[str, Position] = {}
        for stated in item.positions:
            if stated.source not in sources or stated.source in positions:
                continue
            own = [
                refs.claims[c.strip()] for c in dict.fromkeys(stated.claim_ids) if c.strip() in refs.claims
            ]
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


def _shifts(items: Sequence[ShiftItem], refs: RefIndex, target: str, ledger: RunLedger) -> list[Shift]:
    """Shifts between two cited positions/claims of one source, with their verified quotes and stored dates."""
    shifts = []
    for item in items:
        before = refs.points.get(item.before.ref.strip())
        after = refs.points.get(item.after.ref.strip())
        if before is None or after is None or before[0] != after[0] or _same_span(before[1], after[1]):
            ledger.count("shifts_dropped")
            continue
        (source, before_quote), (_, after_quote) = before, after
        same_doc = before_quote.doc_id == after_quote.doc_id
        before_date = None if same_doc else before_quote.date
        if before_date and after_quote.date and before_date > after_quote.date:
            ledger.count("shifts_dropped")
            continue
        shifts.append(
            Shift(
                source=source,
                topic=item.topic.strip() or target,
                before=ShiftPoint(date=before_date, stance=item.before.stance, quote=before_quote),
                after=ShiftPoint(date=after_quote.date, stance=item.after.stance, quote=after_quote),
                description=item.description.strip(),
                score=round(min(1.0, max(0.0, item.confidence)), 3),
            )
        )
    return shifts


def _same_span(one: Quote, other: Quote) -> bool:
    return (one.doc_id, one.char_start) == (other.doc_id, other.char_start)


# -- registration and helpers for the CLI and benchmarks -----------------------------------------------


@register_backend("openai")
def _openai(rest: str, settings: Settings, embedder: Embedder, api_key: str | None = None) -> Backend:
    return LLMBackend.from_spec(f"openai:{rest}", settings, embedder=embedder, api_key=api_key)


@register_backend("openai-compatible")
def _openai_compatible(
    rest: str, settings: Settings, embedder: Embedder, api_key: str | None = None
) -> Backend:
    return LLMBackend.from_spec(f"openai-compatible:{rest}", settings, embedder=embedder, api_key=api_key)


def prompt_token_comparison(
    request: AnalysisRequest,
    settings: Settings,
    spec: str = "openai:gpt-4o-mini",
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """For benchmarks: this backend's prompt tokens vs stuffing every retrieved article whole into one prompt.
    Counted with tiktoken; nothing is sent and no key is needed. Without `embedder`, evidence sentences are
    ranked without their own embedding (chunk score and word overlap): the token counts hardly change, since
    the per-source budget, not the ranking, sets them."""
    return LLMBackend.from_spec(spec, settings, embedder=embedder).prompt_token_comparison(request)
