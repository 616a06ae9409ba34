"""Claims and every source's position toward each, read by the stance model from the stored documents.

1. Claims: the question's own proposition first (when it states one), then the most relevant statements the
   sources make, diverse (a near-restatement of a chosen claim is not listed again), up to `max_claims`.
2. For each claim and source, the source's documents closest to the claim (by their retrieved sentences) are
   read whole by the stance model: backs / disputes / reports / not addressed per document, with the sentence
   that shows it. A source none of whose retrieved documents addresses the claim has further stored documents
   read (within the question's filters) before it is said not to address it; sources the retrieval found
   nothing for are checked the same way.
3. A source's position is its latest dated document's sure position that addresses the claim (else its most
   confident one); `by_date` keeps every document's, which is what shifts are made of.
The work is bounded: at most `max_pairs` claim-document pairs per question.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from compare.analysis.judgements import ADDRESSED
from compare.analysis.stance_model import Judged, StanceModel
from compare.settings import JudgementSettings
from compare.types import (
    POSITION_OF_STANCE,
    ClaimJudgement,
    DatedPosition,
    Document,
    Quote,
    SourcePosition,
)

#: (claim, source, how many, doc ids to skip) -> further stored documents of that source about the claim.
RelatedDocuments = Callable[[str, str, int, set[str]], list[Document]]
#: (document, start, end) -> a verified quote of that span.
QuoteOf = Callable[[Document, int, int], Quote]


@dataclass
class Candidate:
    """A claim to judge: its text, vector, and where it is stated (None for the question's proposition)."""

    id: str
    text: str
    vector: np.ndarray
    origin: tuple[Document, int, int] | None = None
    is_target: bool = False


@dataclass
class SourceDocs:
    """A source's retrieved documents and, per document, the vectors of its retrieved sentences."""

    source: str
    documents: list[Document]
    sentence_vectors: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Reading:
    claim: int
    source: str
    document: Document
    judged: Judged | None = None


def choose_claims(
    sentences: Sequence[tuple[Document, int, int, float, np.ndarray]], settings: JudgementSettings
) -> list[Candidate]:
    """The most relevant statements, skipping near-restatements of ones already chosen."""
    chosen: list[Candidate] = []
    for doc, start, end, _, vector in sorted(sentences, key=lambda s: -s[3]):
        if len(chosen) >= settings.max_claims:
            break
        if any(float(c.vector @ vector) >= settings.duplicate_claim_similarity for c in chosen):
            continue
        chosen.append(Candidate(f"c{len(chosen) + 1}", doc.text[start:end], vector, (doc, start, end)))
    return chosen


def closest_documents(candidate: Candidate, docs: SourceDocs, limit: int) -> list[Document]:
    """The source's documents whose retrieved sentences come closest to the claim (its origin first)."""

    def closeness(doc: Document) -> float:
        if candidate.origin is not None and candidate.origin[0].id == doc.id:
            return 2.0
        vectors = docs.sentence_vectors.get(doc.id)
        return float(np.max(vectors @ candidate.vector)) if vectors is not None and len(vectors) else -1.0

    return sorted(docs.documents, key=lambda d: -closeness(d))[:limit]


def plan_readings(
    candidates: list[Candidate], sources: list[SourceDocs], settings: JudgementSettings
) -> tuple[list[Reading], list[str]]:
    """Claim-document pairs to read, within the pair budget; claims that do not fit are dropped (warned)."""
    readings: list[Reading] = []
    warnings: list[str] = []
    for index, candidate in enumerate(candidates):
        planned = [
            Reading(index, docs.source, doc)
            for docs in sources
            for doc in closest_documents(candidate, docs, settings.docs_per_source)
        ]
        if readings and len(readings) + len(planned) > settings.max_pairs:
            warnings.append(
                f"{len(candidates) - index} claim(s) not judged: the pair budget ({settings.max_pairs}) is spent"
            )
            break
        readings += planned
    return readings, warnings


def read_all(model: StanceModel, candidates: list[Candidate], readings: list[Reading]) -> None:
    judged = model.judge_many([(candidates[r.claim].text, r.document.text, None) for r in readings])
    for reading, result in zip(readings, judged, strict=True):
        reading.judged = result


def check_silent_sources(
    model: StanceModel,
    candidates: list[Candidate],
    readings: list[Reading],
    all_sources: list[str],
    related: RelatedDocuments | None,
    settings: JudgementSettings,
) -> list[Reading]:
    """For each claim, sources with no document addressing it get further stored documents read."""
    if related is None or settings.omission_docs == 0:
        return []
    extra: list[Reading] = []
    for index, candidate in enumerate(candidates):
        for source in all_sources:
            mine = [r for r in readings if r.claim == index and r.source == source]
            if any(r.judged is not None and r.judged.label != "unrelated" for r in mine):
                continue
            seen = {r.document.id for r in mine}
            for doc in related(candidate.text, source, settings.omission_docs, seen):
                extra.append(Reading(index, source, doc))
    if extra:
        read_all(model, candidates, extra)
    return extra


def judgements(
    candidates: list[Candidate],
    readings: list[Reading],
    all_sources: list[str],
    quote_of: QuoteOf,
) -> list[ClaimJudgement]:
    out = []
    for index, candidate in enumerate(candidates):
        positions = []
        for source in all_sources:
            mine = [r for r in readings if r.claim == index and r.source == source and r.judged is not None]
            positions.append(source_position(source, mine, quote_of))
        origin = quote_of(*candidate.origin) if candidate.origin else None
        out.append(
            ClaimJudgement(
                id=candidate.id,
                text=candidate.text,
                is_target=candidate.is_target,
                origin=origin,
                positions=positions,
            )
        )
    return out


def dated_position(reading: Reading, quote_of: QuoteOf) -> DatedPosition:
    judged = reading.judged
    assert judged is not None
    label = POSITION_OF_STANCE[judged.label]
    quote = None
    if label != "not_addressed" and judged.evidence is not None:
        quote = quote_of(reading.document, *judged.evidence)
    return DatedPosition(
        date=reading.document.date,
        doc_id=reading.document.id,
        label=label,
        confidence=round(judged.confidence, 3),
        sure=judged.sure,
        quote=quote if quote is not None and quote.status != "unverified" else None,
    )


def source_position(source: str, readings: list[Reading], quote_of: QuoteOf) -> SourcePosition:
    if not readings:
        return SourcePosition(source=source, label="not_addressed", confidence=0.0, sure=False)
    dated = sorted(
        (dated_position(r, quote_of) for r in readings),
        key=lambda d: (d.date is None, d.date or "", d.doc_id),
    )
    addressing = [d for d in dated if d.label in ADDRESSED and d.quote is not None]
    if addressing:
        sure = [d for d in addressing if d.sure]
        undated = all(d.date is None for d in addressing)
        pool = sure or addressing
        best = max(pool, key=lambda d: d.confidence) if undated else pool[-1]
        return SourcePosition(
            source=source,
            label=best.label,
            confidence=best.confidence,
            sure=best.sure,
            quote=best.quote,
            doc_id=best.doc_id,
            date=best.date,
            checked_documents=len(dated),
            by_date=dated,
        )
    # Only when every document read says so, and is sure of it, is the source said not to address the claim.
    silent = [d for d in dated if d.label == "not_addressed"]
    return SourcePosition(
        source=source,
        label="not_addressed",
        confidence=min(d.confidence for d in silent) if silent else 0.0,
        sure=len(silent) == len(dated) and all(d.sure for d in silent),
        checked_documents=len(dated),
        by_date=dated,
    )
