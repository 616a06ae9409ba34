"""Comparison (+ stored documents) -> ComparisonView: order, labels and wording, decided once.

Old comparisons (no answer, no claim judgements, shifts labelled with tone) still build a sensible view: the
answer and claims sections are left out, tone stays labelled as tone, omissions fall back to the sources the
backend listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from compare.types import Comparison, Document, SourceView
from compare.view.judgements import (
    agreement_view,
    claim_row,
    difference_view,
    judgement,
    omission_row,
    ordered_claims,
    rank_differences,
)
from compare.view.model import AnswerLine, ComparisonView, Footer, Section, SourceColumn
from compare.view.quotes import QuoteMaker, key_quotes, quote_counts
from compare.view.shifts import rank_shifts, shift_view
from compare.view.timeline import build_timeline
from compare.view.words import date_range, plural, readable_key, source_colours, tone_text

#: Every section in the order every renderer follows, with its note and what it says when it has nothing.
SECTIONS = (
    Section("answer", "Answer"),
    Section("sources", "Sources side by side", empty="No source had a passage matching the question."),
    Section(
        "claims",
        "Positions on each claim",
        "Each source's position toward the question's statement and the claims found; below the measured "
        "threshold a cell says “not enough evidence” rather than guess.",
    ),
    Section("time", "Change over time", empty="No shift found."),
    Section(
        "agreements",
        "Agreements",
        "Claims that two or more sources back.",
        empty="No claim backed by two or more sources.",
    ),
    Section(
        "differences",
        "Differences",
        "Opposed: one source backs the claim, another disputes it. Weaker contrast: one takes a side, another "
        "only reports it.",
        empty="No claim on which the sources take different positions.",
    ),
    Section(
        "omissions",
        "Omissions",
        "For each claim and source: addresses it, does not address it (the source's stored documents were "
        "checked), or not enough evidence.",
        empty="No claim that some sources address and others do not.",
    ),
)


def source_names(comparison: Comparison, documents: Mapping[str, Document] | None = None) -> dict[str, str]:
    """Each source key's name for people: the outlet, else a stored document's outlet, else the key made
    readable (never a raw key like `department_of_defense` when an outlet name exists)."""
    outlets = {d.source: d.outlet for d in (documents or {}).values() if d.outlet}
    outlets |= {v.source: v.outlet for v in comparison.sources if v.outlet}
    keys = [v.source for v in comparison.sources] + [s.source for s in comparison.shifts]
    keys += [p.source for claim in comparison.claims for p in claim.positions]
    return {key: outlets.get(key) or readable_key(key) for key in keys}


def build_view(
    comparison: Comparison,
    documents: Mapping[str, Document] | None = None,
    colours: Mapping[str, str] | None = None,
) -> ComparisonView:
    """The view of one comparison. `colours` (source key -> colour) lets a report colour every question alike;
    by default each source gets its hashed colour."""
    names = source_names(comparison, documents)
    colours = {**source_colours(list(names)), **(colours or {})}
    quote = QuoteMaker(documents, names)
    columns = [_column(comparison, v, names[v.source], colours[v.source], quote) for v in comparison.sources]
    shifts = rank_shifts([shift_view(comparison, s, names, colours, quote) for s in comparison.shifts])
    view = ComparisonView(
        question=comparison.question,
        target=comparison.target,
        target_is_proposition=comparison.target_is_proposition,
        target_line=target_line(comparison),
        sections=[],
        answer=[AnswerLine(s.text, quote.many(s.quotes)) for s in comparison.answer],
        columns=columns,
        claims=[claim_row(claim, columns, quote) for claim in ordered_claims(comparison.claims)],
        agreements=[
            agreement_view(a, quote) for a in sorted(comparison.agreements, key=lambda a: -a.confidence)
        ],
        differences=rank_differences([difference_view(d, quote) for d in comparison.differences]),
        omissions=[omission_row(o, comparison, columns) for o in comparison.omissions],
        shifts=shifts,
        timeline=build_timeline(comparison, columns, shifts),
        footer=_footer(comparison, names),
        verified_quotes=int(comparison.meta.quotes.get("presented_verified", 0)),
    )
    return replace(view, sections=sections(view))


def target_line(comparison: Comparison) -> str:
    """What positions are measured toward, or why there is none (a topic question, or an older comparison)."""
    if comparison.target_is_proposition:
        return f"Each source's position toward: “{comparison.target}”"
    if comparison.claims:
        return (
            f"The question states no proposition to back or dispute (its subject: “{comparison.target}”), "
            "so no source is given a position on it: the positions below are on the claims the sources make."
        )
    return f"Tone toward: “{comparison.target}” (tone, not a position)"


def sections(view: ComparisonView) -> list[Section]:
    """SECTIONS that apply (no answer or claims section for comparisons without them); a section with nothing
    to show keeps its `empty` message, one with content has none."""
    applies = {"answer": bool(view.answer), "claims": bool(view.claims)}
    content = {
        "sources": view.columns,
        "time": view.shifts or view.timeline.bands,
        "agreements": view.agreements,
        "differences": view.differences,
        "omissions": view.omissions,
    }
    return [
        replace(s, empty="" if content.get(s.key, True) else s.empty)
        for s in SECTIONS
        if applies.get(s.key, True)
    ]


# -- sources ---------------------------------------------------------------------------------------------


def _column(
    comparison: Comparison, view: SourceView, name: str, colour: str, quote: QuoteMaker
) -> SourceColumn:
    counts = quote_counts(comparison, view.source)
    position = judgement(view.position, quote) if comparison.target_is_proposition else None
    stance = view.stance
    return SourceColumn(
        key=view.source,
        name=name,
        colour=colour,
        documents=len(view.documents),
        documents_text=plural(len(view.documents), "document"),
        dates_text=date_range(view.first_date, view.last_date),
        position=position,
        tone_text=tone_text(stance.label, stance.confidence, stance.low_confidence),
        tone_low=stance.low_confidence,
        summary=None if summary_is_quotes(view) else (view.summary.strip() or None),
        quotes=quote.many(key_quotes(view)),
        quotes_verified=counts["verified"],
        quotes_repaired=counts["repaired"],
        shifts=sum(1 for s in comparison.shifts if s.source == view.source),
    )


def summary_is_quotes(view: SourceView) -> bool:
    """True when the summary is only the summary quotes joined (extractive): show the quotes, not both."""
    return view.summary.strip() == " … ".join(q.text for q in view.summary_quotes).strip()


# -- footer ------------------------------------------------------------------------------------------------


def _footer(comparison: Comparison, names: Mapping[str, str]) -> Footer:
    retrieval = comparison.meta.retrieval
    missing = retrieval.get("sources_without_matches") if isinstance(retrieval, dict) else None
    missing_names = (
        [names.get(str(s), readable_key(str(s))) for s in missing] if isinstance(missing, list) else []
    )
    return Footer(
        meta_line=meta_line(comparison),
        quotes_line=quotes_line(comparison),
        filters_line=filters_line(comparison.filters),
        warnings=list(comparison.meta.warnings),
        missing_sources=missing_names,
        labels_line=labels_line(comparison),
    )


def meta_line(comparison: Comparison) -> str:
    """Plain text: how the result was made (backend, model, prompt, settings hash, version, time)."""
    meta = comparison.meta
    parts = [f"backend {meta.backend}"]
    parts += [f"model {meta.model}"] if meta.model else []
    parts += [f"prompt {meta.prompt}"] if meta.prompt else []
    parts += [f"settings {meta.settings_hash}", f"narrative-compare {meta.package_version}"]
    parts += [f"{meta.latency_s:.2f} s"] if meta.latency_s else []
    parts += [f"{meta.tokens_in}+{meta.tokens_out} tokens, ${meta.cost_usd:.4f}"] if meta.tokens_in else []
    parts += [meta.created_at] if meta.created_at else []
    return " · ".join(parts)


def quotes_line(comparison: Comparison) -> str:
    quotes = comparison.meta.quotes
    line = (
        f"{quotes.get('presented', 0)} quotes shown ({quotes.get('presented_verified', 0)} verified, "
        f"{quotes.get('presented_repaired', 0)} repaired)"
    )
    dropped = sum(v for k, v in quotes.items() if k.startswith(("unverified", "dropped")))
    return line + (f" · {dropped} unverifiable quote(s) dropped" if dropped else "")


def labels_line(comparison: Comparison) -> str:
    """How the model's labels fared in the judgement gate; "" when none was read."""
    labels = comparison.meta.labels
    if not labels.get("checked"):
        return ""
    return (
        f"{plural(labels['checked'], 'model label')} read by the local stance model: "
        f"{labels.get('confirmed', 0)} confirmed, {labels.get('contested', 0)} contested, "
        f"{labels['checked'] - labels.get('confirmed', 0) - labels.get('contested', 0)} not sure"
    )


def filters_line(filters: Mapping[str, object]) -> str:
    """Plain text summary of the filters a comparison was made with ('' when none)."""
    parts = []
    sources = filters.get("sources")
    if isinstance(sources, list | tuple) and sources:
        parts.append("sources: " + ", ".join(map(str, sources)))
    if filters.get("since") or filters.get("until"):
        parts.append(f"dates: {filters.get('since') or '…'} – {filters.get('until') or '…'}")
    where = filters.get("where") or {}
    if isinstance(where, dict) and where:
        parts.append("where " + ", ".join(f"{k}={v}" for k, v in where.items()))
    return "; ".join(parts)
