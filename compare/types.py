"""Domain types shared by every stage: ingest -> chunk -> embed -> store -> retrieve."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MetadataValue = str | int | float | bool
IngestStatus = Literal["added", "unchanged", "replaced", "duplicate", "skipped", "failed"]


def content_hash(text: str) -> str:
    """Stable id for a text: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Document(BaseModel):
    """One article, cleaned. `text` is the exact text that offsets and quotes refer to."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Given id, or a content hash of the clean text.")
    source: str = Field(description="Who published it, as a short key (e.g. 'nyt', 'whitehouse').")
    outlet: str | None = Field(default=None, description="Human-readable outlet name.")
    title: str | None = None
    date: str | None = Field(default=None, description="ISO date YYYY-MM-DD, or None when unknown.")
    url: str | None = None
    text: str = Field(description="Clean article text; every offset points into this string.")
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict, description="Any other input fields (e.g. event_id); scalars only."
    )
    duplicate_of: str | None = Field(default=None, description="Id of the document this one duplicates.")
    origin: str = Field(default="", description="Where it came from: file path, path:line, or URL.")

    @property
    def content_hash(self) -> str:
        return content_hash(self.text)


class Chunk(BaseModel):
    """A token window of a document. Invariant: text == document.text[char_start:char_end]."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str
    index: int
    char_start: int
    char_end: int
    text: str
    n_tokens: int

    @property
    def id(self) -> str:
        return f"{self.doc_id}::{self.index}"


class SearchHit(BaseModel):
    """A chunk returned by a search, with the document fields needed to show it."""

    chunk_id: str
    doc_id: str
    source: str
    outlet: str | None
    title: str | None
    date: str | None
    url: str | None
    char_start: int
    char_end: int
    text: str
    score: float = Field(description="Cosine similarity to the query, 1 is identical.")
    duplicate_of: str | None = None


class SourceSummary(BaseModel):
    source: str
    outlet: str | None
    documents: int
    duplicates: int
    undated: int
    first_date: str | None
    last_date: str | None


class IngestItemResult(BaseModel):
    """What happened to one input item."""

    origin: str
    status: IngestStatus
    doc_id: str | None = None
    chunks: int = 0
    duplicate_of: str | None = None
    reason: str | None = None
    hint: str | None = None
    warnings: list[str] = Field(default_factory=list)


class IngestReport(BaseModel):
    items: list[IngestItemResult] = Field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: IngestStatus) -> int:
        return sum(1 for item in self.items if item.status == status)

    @property
    def failed(self) -> list[IngestItemResult]:
        return [item for item in self.items if item.status == "failed"]

    @property
    def undated(self) -> list[str]:
        return [item.doc_id or item.origin for item in self.items if "no date" in " ".join(item.warnings)]


QuoteStatus = Literal["verified", "repaired", "unverified"]


class Quote(BaseModel):
    """A span of a stored document. `text` is always read from the store, never taken from a model."""

    doc_id: str
    source: str
    date: str | None = None
    char_start: int
    char_end: int
    text: str
    status: QuoteStatus = Field(
        description="verified: exact or whitespace/quote-normalised match; repaired: fuzzy match, stored text "
        "substituted; unverified: not found, never presented as a quote."
    )
    proposed: str | None = Field(default=None, description="What was proposed, when it differs from `text`.")
    similarity: float | None = Field(default=None, description="Fuzzy-match score for repaired quotes.")


# -- comparison results (published as JSON Schema by `ncompare schema`) ---------------------------------

StanceLabel = Literal["positive", "negative", "neutral", "mixed", "not_addressed"]
ClaimStanceLabel = Literal["agree", "disagree", "discuss", "unrelated"]
#: A source's position toward a claim, in a reader's words: it backs the claim, disputes it, reports it
#: without taking a side, or does not address it at all.
PositionLabel = Literal["backs", "disputes", "reports", "not_addressed"]
POSITION_OF_STANCE: dict[str, PositionLabel] = {
    "agree": "backs",
    "disagree": "disputes",
    "discuss": "reports",
    "unrelated": "not_addressed",
}
#: What a quote reads as, in words: the judgement gate's notes and every renderer say it alike.
READS_AS: dict[str, str] = {
    "backs": "backing",
    "disputes": "disputing",
    "reports": "reporting",
    "not_addressed": "not addressing it",
}


#: What the judgement gate made of a label a model gave: the local claim-stance model read its quotes the same
#: way (confirmed), read them otherwise with confidence (contested), or could not tell (unchecked).
CheckStatus = Literal["confirmed", "contested", "unchecked"]


class LabelCheck(BaseModel):
    """A model-given label read again by the local claim-stance model on the label's own verified quotes
    (compare/analysis/judgement_gate.py)."""

    status: CheckStatus
    label: PositionLabel | None = Field(
        default=None,
        description="The label as the model gave it, as a position; None for a per-source claim (the source "
        "states it: backing or reporting both fit).",
    )
    reading: PositionLabel | None = Field(
        default=None, description="What the quote reads as to the local model; None when nothing was read."
    )
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="The local model's probability of `reading`."
    )
    part: str | None = Field(
        default=None,
        description="Which quote decided it: a source key (agreement) or 'before'/'after' (shift); None when "
        "the label has one side.",
    )
    note: str = Field(
        default="", description="In words, e.g. 'model: disputes; its quote reads as reporting'."
    )


class Stance(BaseModel):
    """Tone toward a stated target (lexicon-based): shown as tone, never as a position. Low confidence is
    shown as such, not as a guess."""

    label: StanceLabel
    target: str = Field(description="What the stance is about, e.g. 'US military aid to Ukraine'.")
    confidence: float = Field(ge=0, le=1)
    low_confidence: bool = Field(
        default=False, description="True when confidence is under the shown threshold."
    )
    method: str = Field(
        default="", description="How it was decided, e.g. 'lexicon+claim-stance@1' or a model id."
    )


class DocRef(BaseModel):
    doc_id: str
    title: str | None = None
    date: str | None = None
    url: str | None = None


class Claim(BaseModel):
    """A statement found in one or more sources, with the quotes that back it."""

    id: str
    text: str = Field(description="The claim in words (a representative sentence or a model's paraphrase).")
    quotes: list[Quote] = Field(default_factory=list)
    check: LabelCheck | None = Field(
        default=None, description="The judgement gate's reading of this model-given label; None: not checked."
    )


class DatedPosition(BaseModel):
    """A source's position in one of its documents."""

    date: str | None
    doc_id: str
    label: PositionLabel
    confidence: float = Field(ge=0, le=1)
    sure: bool = True
    quote: Quote | None = None


class SourcePosition(BaseModel):
    """One source's position toward one claim, with its calibrated confidence and the sentence that shows it.
    `sure` is False when the confidence is under the label's measured threshold: shown as "not enough
    evidence", never as the label."""

    source: str
    label: PositionLabel
    confidence: float = Field(ge=0, le=1, description="Calibrated probability of `label`.")
    sure: bool = Field(default=True, description="Confidence at or above the label's measured threshold.")
    quote: Quote | None = Field(default=None, description="The sentence that shows the position, verified.")
    doc_id: str | None = None
    date: str | None = None
    checked_documents: int = Field(
        default=0, description="Stored documents of the source read for this claim (not only retrieved ones)."
    )
    by_date: list[DatedPosition] = Field(
        default_factory=list, description="The position in each dated document read, oldest first."
    )
    check: LabelCheck | None = Field(
        default=None, description="The judgement gate's reading of this model-given label; None: not checked."
    )


class ClaimJudgement(BaseModel):
    """A claim (a statement sources can be measured against) and every source's position toward it."""

    id: str = Field(description="'target' for the question's own proposition, else c1, c2, ...")
    text: str
    is_target: bool = Field(
        default=False, description="The question's proposition, not a claim found in text."
    )
    origin: Quote | None = Field(default=None, description="Where the claim is stated (None for the target).")
    positions: list[SourcePosition] = Field(default_factory=list)

    def position(self, source: str) -> SourcePosition | None:
        return next((p for p in self.positions if p.source == source), None)


class AnswerSentence(BaseModel):
    """One sentence of the answer at the top, built from judgements; every clause rests on its quotes."""

    text: str
    quotes: list[Quote] = Field(default_factory=list)


class SourceView(BaseModel):
    source: str
    outlet: str | None = None
    documents: list[DocRef] = Field(default_factory=list)
    first_date: str | None = None
    last_date: str | None = None
    summary: str = Field(default="", description="Per-source summary; offline: made of verified quotes.")
    summary_quotes: list[Quote] = Field(default_factory=list)
    stance: Stance = Field(
        description="Tone toward the target (lexicon), shown as tone, never as a position."
    )
    position: SourcePosition | None = Field(
        default=None, description="Position toward the question's proposition, when the question states one."
    )
    claims: list[Claim] = Field(default_factory=list)


class ShiftPoint(BaseModel):
    date: str | None
    stance: PositionLabel | StanceLabel | ClaimStanceLabel
    quote: Quote


class Shift(BaseModel):
    source: str
    topic: str = Field(description="The claim or subject on which the position moved.")
    before: ShiftPoint
    after: ShiftPoint
    description: str = Field(description="One line: what changed.")
    cues: list[str] = Field(default_factory=list, description="Change cue phrases found, e.g. 'no longer'.")
    score: float = Field(
        default=0.0, description="Confidence in the shift, 0..1 (calibrated for 'position')."
    )
    kind: Literal["position", "reported"] = Field(
        default="position",
        description="position: the source's position on the claim changed between its documents; reported: "
        "a document states that a position changed ('reversed', 'a shift from X to Y').",
    )
    claim_id: str | None = Field(default=None, description="The claim the position moved on, if one.")
    check: LabelCheck | None = Field(
        default=None, description="The judgement gate's reading of this model-given label; None: not checked."
    )


class Agreement(BaseModel):
    """Two or more sources back the claim."""

    claim: str
    sources: list[str]
    quotes: list[Quote]
    claim_id: str | None = None
    confidence: float = Field(default=0.0, ge=0, le=1)
    check: LabelCheck | None = Field(
        default=None, description="The judgement gate's reading of this model-given label; None: not checked."
    )


class Position(BaseModel):
    source: str
    position: PositionLabel | ClaimStanceLabel | StanceLabel
    quotes: list[Quote] = Field(default_factory=list)
    confidence: float = Field(default=0.0, ge=0, le=1)
    check: LabelCheck | None = Field(
        default=None, description="The judgement gate's reading of this model-given label; None: not checked."
    )


class Difference(BaseModel):
    """Sources take different positions on one claim: strong when one backs and another disputes it, weak
    when one takes a side and another only reports it."""

    claim: str
    positions: list[Position]
    claim_id: str | None = None
    strength: Literal["strong", "weak"] = "strong"
    confidence: float = Field(default=0.0, ge=0, le=1)


class Omission(BaseModel):
    """Sources whose stored documents (not only the retrieved passages) do not address the claim."""

    claim: str
    reported_by: list[str]
    not_reported_by: list[str]
    claim_id: str | None = None
    confidence: float = Field(default=0.0, ge=0, le=1)


class ComparisonMeta(BaseModel):
    backend: str
    model: str | None = None
    prompt: str | None = Field(default=None, description="prompt id@version, for LLM backends.")
    structured_output: str | None = Field(
        default=None, description="How the LLM was asked for JSON, e.g. 'auto: json_object_schema'."
    )
    judgement_model: str | None = Field(
        default=None, description="The model that judged positions, when another backend wrote the summaries."
    )
    settings_hash: str
    package_version: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached_calls: int = Field(default=0, description="LLM calls answered from the response cache (cost 0).")
    retrieval: dict[str, object] = Field(default_factory=dict)
    quotes: dict[str, int] = Field(default_factory=dict, description="Quote gate counts, incl. unverified.")
    labels: dict[str, int] = Field(
        default_factory=dict,
        description="Judgement gate counts: labels a model gave, read again by the local stance model "
        "(checked: read on a quote; confirmed, contested; unchecked: not sure or no quote to read).",
    )
    label_checker: str | None = Field(
        default=None, description="The local model that read the model-given labels (judgement gate)."
    )
    warnings: list[str] = Field(default_factory=list)
    created_at: str = ""


class Comparison(BaseModel):
    question: str
    target: str = Field(description="The subject every stance is measured toward.")
    target_is_proposition: bool = Field(
        default=False,
        description="The target is a statement sources can back or dispute; otherwise a topic (no position).",
    )
    filters: dict[str, object] = Field(default_factory=dict)
    answer: list[AnswerSentence] = Field(default_factory=list, description="Two to four sentences, first.")
    claims: list[ClaimJudgement] = Field(
        default_factory=list, description="Claims and every source's position toward each (target first)."
    )
    sources: list[SourceView] = Field(default_factory=list)
    shifts: list[Shift] = Field(default_factory=list)
    agreements: list[Agreement] = Field(default_factory=list)
    differences: list[Difference] = Field(default_factory=list)
    omissions: list[Omission] = Field(default_factory=list)
    meta: ComparisonMeta

    def presented_quotes(self) -> list[Quote]:
        """Every quote shown anywhere, per source (summary, then claims), then agreements, differences and
        shifts; a span shown twice counts twice."""
        quotes = [q for sentence in self.answer for q in sentence.quotes]
        quotes += [q for view in self.sources for q in [*view.summary_quotes, *_claim_quotes(view)]]
        quotes += [q for claim in self.claims for q in _judgement_quotes(claim)]
        quotes += [q for agreement in self.agreements for q in agreement.quotes]
        quotes += [q for difference in self.differences for p in difference.positions for q in p.quotes]
        return quotes + [q for shift in self.shifts for q in (shift.before.quote, shift.after.quote)]


def _claim_quotes(view: SourceView) -> list[Quote]:
    return [q for claim in view.claims for q in claim.quotes]


def _judgement_quotes(claim: ClaimJudgement) -> list[Quote]:
    quotes = [claim.origin] if claim.origin else []
    for position in claim.positions:
        quotes += [position.quote] if position.quote else []
        quotes += [d.quote for d in position.by_date if d.quote]
    return quotes


class ClaimStanceResult(BaseModel):
    """One document's stance toward a claim (agree / disagree / discuss / unrelated), with its evidence."""

    claim: str
    doc_id: str
    source: str
    date: str | None = None
    title: str | None = None
    label: ClaimStanceLabel
    confidence: float = Field(ge=0, le=1)
    probabilities: dict[str, float] = Field(default_factory=dict)
    evidence: Quote | None = Field(default=None, description="The sentence that shows the stance, verified.")
    sure: bool = Field(
        default=True,
        description="Confidence at or above the label's measured threshold; else not enough evidence.",
    )
    method: str = Field(default="", description="Model id, e.g. 'claim-stance-xenc@fnc1-train.minilm-l6.v1'.")
