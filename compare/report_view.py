"""One view of a batch report: the run, the executive overview and one comparison view per question.

Built once from a `Report` and the stored documents; `compare.report_render` lays it out as Markdown, HTML
and CSV. The overview speaks the comparisons' words: each source's position toward a question's proposition
and its tone (labelled as tone), the most confident shifts, and only opposed differences as disagreements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from compare.types import Comparison, Document
from compare.view import ComparisonView, build_view, filters_line, merge_timelines, source_names
from compare.view.model import DifferenceView, QuoteView, ShiftView, TimelineView
from compare.view.quotes import QuoteMaker, safe_url, shown, unique_quotes
from compare.view.words import date_range, human_date, readable_key, source_colours

if TYPE_CHECKING:
    from compare.reports import ItemResult, Report

TOP_SHIFTS = 8
TOP_DISAGREEMENTS = 8
CHRONOLOGY_QUOTES = 3
#: A timeline item follows one source: nothing to agree or differ with, so its documents instead.
SINGLE_SOURCE_SKIP = ("agreements", "differences", "omissions")


@dataclass(frozen=True)
class DocRow:
    date_text: str
    source_name: str
    doc_id: str
    title: str
    url: str | None
    missing: bool = False


@dataclass(frozen=True)
class ChronologyRow:
    document: DocRow
    quotes: list[QuoteView]


@dataclass(frozen=True)
class ItemView:
    number: int
    id: str
    kind: str
    heading: str
    status: str
    facts: list[str]
    error: str | None
    hint: str | None
    view: ComparisonView | None
    skip: tuple[str, ...]
    chronology: list[ChronologyRow]
    quoted: list[DocRow]


@dataclass(frozen=True)
class GlanceRow:
    """One question in the overview table: positions toward its proposition, tone, counts."""

    number: int
    id: str
    heading: str
    error: str | None
    positions: list[str]
    tones: list[str]
    shifts: int
    opposed: int


@dataclass(frozen=True)
class RankedShift:
    item_id: str
    heading: str
    shift: ShiftView


@dataclass(frozen=True)
class Disagreement:
    item_id: str
    heading: str
    difference: DifferenceView


@dataclass(frozen=True)
class CorpusRow:
    source: str
    outlet: str
    documents: int
    first: str
    last: str


@dataclass(frozen=True)
class ReportView:
    title: str
    description: str
    summary_line: str
    facts: list[tuple[str, str]]
    corpus: list[CorpusRow]
    notes: list[str]
    items: list[ItemView]
    glance: list[GlanceRow]
    overview: TimelineView | None
    overview_title: str
    shifts: list[RankedShift]
    disagreements: list[Disagreement]
    failed: list[ItemView]
    footer: str


def build_report_view(report: Report, documents: Mapping[str, Document]) -> ReportView:
    run = report.run
    keys = [v.source for res in report.ok if res.comparison for v in res.comparison.sources]
    colours = source_colours(list(dict.fromkeys(keys)))  # one colour per source across every question
    items = [item_view(number, res, documents, colours) for number, res in enumerate(report.items, 1)]
    overview = overview_timeline(items)
    return ReportView(
        title=run.title,
        description=run.description,
        summary_line=summary_line(report),
        facts=run_facts(report),
        corpus=[
            CorpusRow(
                s.source,
                s.outlet or "",
                s.documents,
                human_date(s.first_date) if s.first_date else "—",
                human_date(s.last_date) if s.last_date else "—",
            )
            for s in run.corpus.sources
        ],
        notes=list(run.notes),
        items=items,
        glance=[glance_row(item) for item in items],
        overview=overview,
        overview_title=overview_title(overview),
        shifts=biggest_shifts(items),
        disagreements=disagreements(items),
        failed=[item for item in items if item.view is None],
        footer=f"narrative-compare {run.package_version} · settings {run.settings_hash} · {run.created_at}",
    )


def summary_line(report: Report) -> str:
    run = report.run
    return (
        f"{run.questions} question(s), {run.ok} answered, {run.failed} failed · backend {run.backend}"
        f" · {run.created_at}"
    )


def run_facts(report: Report) -> list[tuple[str, str]]:
    """(label, plain text) rows describing how the report was made."""
    run = report.run
    corpus = run.corpus
    return [
        ("backend", run.backend),
        ("model", run.model or "—"),
        ("prompt", run.prompt or "— (no prompt: offline analysis)"),
        ("settings hash", run.settings_hash),
        ("chunks per source", str(run.k_per_source)),
        ("narrative-compare", run.package_version),
        ("generated", run.created_at),
        ("spec", f"{run.spec_path} (sha256 {run.spec_hash})"),
        (
            "corpus",
            f"{corpus.documents} documents from {len(corpus.sources)} source(s), "
            f"{date_range(corpus.first_date, corpus.last_date)} (fingerprint {corpus.fingerprint})",
        ),
        (
            "questions",
            f"{run.questions}: {run.ok} answered, {run.failed} failed; {run.computed} computed in this run, "
            f"{run.from_checkpoint} from checkpoints",
        ),
        (
            "tokens",
            f"{run.tokens_in} in + {run.tokens_out} out (this run: {run.tokens_in_this_run} + "
            f"{run.tokens_out_this_run}, {run.cached_calls} cached call(s))",
        ),
        ("cost", f"${run.cost_usd:.4f} for the report; this run spent ${run.cost_usd_this_run:.4f}"),
        ("time", f"{run.seconds:.1f} s (concurrency {run.concurrency})"),
    ]


# -- items ---------------------------------------------------------------------------------------------------


def item_view(
    number: int, res: ItemResult, documents: Mapping[str, Document], colours: Mapping[str, str]
) -> ItemView:
    item, comparison = res.item, res.comparison
    view = build_view(comparison, documents, colours) if comparison is not None else None
    timeline = item.kind == "timeline"
    return ItemView(
        number=number,
        id=item.id,
        kind=item.kind,
        heading=item.heading,
        status=res.status,
        facts=_item_facts(res, view),
        error=res.error,
        hint=res.hint,
        view=view,
        skip=SINGLE_SOURCE_SKIP if timeline else (),
        chronology=chronology(comparison, documents) if comparison is not None and timeline else [],
        quoted=quoted_documents(comparison, documents) if comparison is not None else [],
    )


def _item_facts(res: ItemResult, view: ComparisonView | None) -> list[str]:
    facts = [f"Question: {res.item.question}"]
    if scope := filters_line(res.item.filters):
        facts.append(f"Filters: {scope}")
    if view is not None:
        facts.append(view.footer.meta_line + (" · from checkpoint" if res.from_checkpoint else ""))
    return facts


def _doc_row(document: Document | None, doc_id: str, day: str | None = None) -> DocRow:
    if document is None:
        return DocRow(human_date(day), "", doc_id, doc_id, None, missing=True)
    source = document.outlet or readable_key(document.source)
    return DocRow(
        human_date(document.date), source, document.id, document.title or document.id, safe_url(document.url)
    )


def quoted_documents(comparison: Comparison, documents: Mapping[str, Document]) -> list[DocRow]:
    ids = {quote.doc_id for quote in comparison.presented_quotes()}
    docs = sorted((documents[i] for i in ids if i in documents), key=lambda d: (d.date or "9999", d.id))
    return [_doc_row(d, d.id) for d in docs]


def chronology(comparison: Comparison, documents: Mapping[str, Document]) -> list[ChronologyRow]:
    """Every document of the sources in date order, with (up to three of) its quotes."""
    quote = QuoteMaker(documents, source_names(comparison, documents))
    by_doc: dict[str, list[QuoteView]] = {}
    for q in unique_quotes(shown(comparison.presented_quotes())):
        by_doc.setdefault(q.doc_id, []).append(quote(q))
    refs = {ref.doc_id: ref for view in comparison.sources for ref in view.documents}
    ordered = sorted(refs.values(), key=lambda ref: (ref.date or "9999", ref.doc_id))
    return [
        ChronologyRow(
            _doc_row(documents.get(ref.doc_id), ref.doc_id, ref.date),
            by_doc.get(ref.doc_id, [])[:CHRONOLOGY_QUOTES],
        )
        for ref in ordered
    ]


# -- the executive overview ---------------------------------------------------------------------------------


def glance_row(item: ItemView) -> GlanceRow:
    view = item.view
    if view is None:
        return GlanceRow(item.number, item.id, item.heading, item.error or "failed", [], [], 0, 0)
    positions = [f"{c.name}: {c.position.text}" for c in view.columns if c.position is not None]
    return GlanceRow(
        number=item.number,
        id=item.id,
        heading=item.heading,
        error=None,
        positions=positions if view.target_is_proposition else [],
        tones=[f"{c.name}: {c.tone_text}" for c in view.columns],
        shifts=len(view.shifts),
        opposed=sum(1 for d in view.differences if d.strong),
    )


def biggest_shifts(items: Sequence[ItemView], limit: int = TOP_SHIFTS) -> list[RankedShift]:
    """Changes of position and reported changes across questions, most confident first. A change of tone is
    not a change of position: it stays in its question's section."""
    ranked = [
        RankedShift(item.id, item.heading, shift)
        for item in items
        if item.view is not None
        for shift in item.view.shifts
        if shift.kind in ("position", "reported")
    ]
    order = {"position": 0, "reported": 1}
    return sorted(ranked, key=lambda r: (-r.shift.confidence, order[r.shift.kind]))[:limit]


def disagreements(items: Sequence[ItemView], limit: int = TOP_DISAGREEMENTS) -> list[Disagreement]:
    """Opposed differences only (one source backs a claim, another disputes it), most confident first."""
    found = [
        Disagreement(item.id, item.heading, difference)
        for item in items
        if item.view is not None
        for difference in item.view.differences
        if difference.strong
    ]
    return sorted(found, key=lambda d: -d.difference.confidence)[:limit]


def overview_title(overview: TimelineView | None) -> str:
    """Say what the overview's bands are: positions, tone, or both (tone where a question states no proposition)."""
    rows = {band.row.startswith("tone: ") for band in overview.bands} if overview else set()
    if rows == {True}:
        return "Tone per source, question by question (tone, not a position)"
    return "Position per source, question by question" + (" (tone where none)" if True in rows else "")


def overview_timeline(items: Sequence[ItemView]) -> TimelineView | None:
    """Every question's bands on one chart, when they span at least two date ranges."""
    timelines = [item.view.timeline for item in items if item.view is not None and item.kind != "timeline"]
    merged = merge_timelines(timelines)
    return merged if len({(b.start, b.end) for b in merged.bands}) >= 2 else None
