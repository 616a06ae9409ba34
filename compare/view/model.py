"""The view of one comparison: what to show, in which order, with which words. Plain data, no markup.

Built once by `compare.view.build.build_view`; the terminal, Markdown, HTML, CSV, the app, batch reports and
the eval drill-down only lay it out. Text here is plain (unescaped): each renderer escapes it its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: A judgement cell: a position in words, or "not enough evidence" (unsure, or no judgement at all).
JudgementState = Literal["backs", "disputes", "reports", "not_addressed", "unsure"]
OmissionState = Literal["addresses", "not_addressed", "unknown"]
SectionKey = Literal["answer", "sources", "claims", "time", "agreements", "differences", "omissions"]


@dataclass(frozen=True)
class Context:
    """A quote's paragraph split around the quoted span; `cut_*` says whether the paragraph was shortened."""

    before: str
    span: str
    after: str
    cut_before: bool
    cut_after: bool


@dataclass(frozen=True)
class DocumentLine:
    """Where a quote comes from. `missing`: a documents mapping was given and no longer holds it."""

    doc_id: str
    title: str = ""
    date_text: str = ""
    source_name: str = ""
    url: str | None = None
    missing: bool = False


@dataclass(frozen=True)
class QuoteView:
    text: str
    preview: str
    status: str
    status_text: str
    date_text: str
    source: str
    source_name: str
    doc_id: str
    char_start: int
    char_end: int
    context: Context | None = None
    document: DocumentLine | None = None

    @property
    def where(self) -> str:
        return f"{self.doc_id} [{self.char_start}:{self.char_end}]"


@dataclass(frozen=True)
class Judgement:
    """One source's position toward one claim, in words. `text` is what a cell shows: "backs it · 0.86",
    "not enough evidence (0.41)"; the quote is kept only when the position is sure."""

    state: JudgementState
    words: str
    text: str
    confidence: float | None = None
    detail: str = ""
    quote: QuoteView | None = None
    #: "contested by the local model: its quote reads as reporting (0.88)" for a model-given label the
    #: judgement gate contested; "" otherwise.
    check_text: str = ""


@dataclass(frozen=True)
class AnswerLine:
    text: str
    quotes: list[QuoteView] = field(default_factory=list)


@dataclass(frozen=True)
class SourceColumn:
    key: str
    name: str
    colour: str
    documents: int
    documents_text: str
    dates_text: str
    #: Toward the question's proposition; None when the question states none.
    position: Judgement | None
    tone_text: str
    tone_low: bool
    #: A written summary, or None when the summary is only the key quotes joined.
    summary: str | None
    quotes: list[QuoteView]
    quotes_verified: int = 0
    quotes_repaired: int = 0
    shifts: int = 0

    @property
    def show_key(self) -> bool:
        """Show the key beside the name only when they differ beyond case and separators."""
        return self.key.replace("_", " ").replace("-", " ").lower() != self.name.lower()


@dataclass(frozen=True)
class ClaimRow:
    """A row of the claims x sources matrix: the question's proposition first, then the claims found."""

    claim_id: str
    text: str
    is_target: bool
    heading: str
    origin: QuoteView | None
    cells: list[Judgement]


@dataclass(frozen=True)
class AgreementView:
    claim: str
    sources: list[str]
    sources_text: str
    confidence_text: str
    quotes: list[QuoteView]
    check_text: str = ""


@dataclass(frozen=True)
class Side:
    """One source's side of a difference."""

    key: str
    name: str
    #: A position label (backs, disputes, reports, not_addressed), or "tone" for an older tone label.
    state: str
    words: str
    confidence_text: str
    quotes: list[QuoteView]
    check_text: str = ""


@dataclass(frozen=True)
class DifferenceView:
    claim: str
    strong: bool
    strength_text: str
    confidence: float
    confidence_text: str
    sides: list[Side]

    def side(self, key: str) -> Side | None:
        return next((s for s in self.sides if s.key == key), None)


@dataclass(frozen=True)
class OmissionCell:
    state: OmissionState
    words: str
    detail: str = ""

    @property
    def text(self) -> str:
        return f"{self.words} ({self.detail})" if self.detail else self.words


@dataclass(frozen=True)
class OmissionRow:
    claim: str
    confidence_text: str
    cells: list[OmissionCell]


@dataclass(frozen=True)
class ShiftEnd:
    date: str | None
    date_text: str
    label: str
    words: str
    quote: QuoteView


@dataclass(frozen=True)
class ShiftView:
    source: str
    name: str
    colour: str
    kind: str
    kind_text: str
    #: What changed, in a reader's words, without the source's name ("backed “X” on 5 Jan 2024; ...").
    sentence: str
    topic: str
    confidence: float
    confidence_text: str
    cues: list[str]
    before: ShiftEnd
    after: ShiftEnd
    check_text: str = ""


@dataclass(frozen=True)
class TimelineBand:
    """A source's position toward the question (or its tone) over the dates of its documents."""

    source: str
    name: str
    colour: str
    start: str
    end: str
    row: str
    dashed: bool
    tip: str


@dataclass(frozen=True)
class TimelineDot:
    """One dated end of a shift."""

    source: str
    name: str
    colour: str
    date: str
    row: str
    shift: int
    end: Literal["before", "after"]
    tip: str
    change: str
    quote: str


@dataclass(frozen=True)
class TimelineView:
    rows: list[str]
    bands: list[TimelineBand]
    dots: list[TimelineDot]
    undated: int
    notes: list[str]
    legend: list[tuple[str, str]]

    @property
    def empty(self) -> bool:
        return not self.bands and not self.dots


@dataclass(frozen=True)
class Section:
    key: SectionKey
    title: str
    note: str = ""
    #: Shown instead of the content when there is none; "" when the section has content.
    empty: str = ""


@dataclass(frozen=True)
class Footer:
    meta_line: str
    quotes_line: str
    filters_line: str
    warnings: list[str]
    missing_sources: list[str]
    #: How the model's labels fared in the judgement gate ("" when none was checked).
    labels_line: str = ""


@dataclass(frozen=True)
class ComparisonView:
    question: str
    target: str
    target_is_proposition: bool
    #: One line under the question: what positions are measured toward, or why there is no position.
    target_line: str
    sections: list[Section]
    answer: list[AnswerLine]
    columns: list[SourceColumn]
    claims: list[ClaimRow]
    agreements: list[AgreementView]
    differences: list[DifferenceView]
    omissions: list[OmissionRow]
    shifts: list[ShiftView]
    timeline: TimelineView
    footer: Footer
    verified_quotes: int = 0

    def section(self, key: SectionKey) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)
