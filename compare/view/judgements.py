"""Judgements in words: a source's position on a claim, the claims x sources matrix, agreements, differences
(opposed first) and omissions in one state model (addresses it / does not address it / not enough evidence)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from compare.types import (
    READS_AS,
    Agreement,
    ClaimJudgement,
    Comparison,
    Difference,
    LabelCheck,
    Omission,
    SourcePosition,
)
from compare.view.model import (
    AgreementView,
    ClaimRow,
    DifferenceView,
    Judgement,
    OmissionCell,
    OmissionRow,
    Side,
    SourceColumn,
)
from compare.view.quotes import QuoteMaker
from compare.view.words import (
    CONTESTED,
    NOT_ENOUGH,
    OMISSION_WORDS,
    POSITION_WORDS,
    as_position,
    confidence_text,
    human_date,
    human_join,
    label_words,
    plural,
)


def judgement(position: SourcePosition | None, quote: QuoteMaker) -> Judgement:
    """A position in words; unsure or missing -> "not enough evidence", never the label, never its quote."""
    if position is None:
        return Judgement("unsure", NOT_ENOUGH, NOT_ENOUGH)
    contested = check_text(position.check, quote.name)
    if not position.sure:  # the label under its threshold is a guess: not shown, not even as a hint
        text = f"{NOT_ENOUGH} ({position.confidence:.2f})"
        return Judgement("unsure", NOT_ENOUGH, text, position.confidence, check_text=contested)
    words = POSITION_WORDS[position.label]
    detail = _checked(position.checked_documents) if position.label == "not_addressed" else ""
    detail = detail or (human_date(position.date) if position.date else "")
    shown = quote(position.quote) if position.quote and position.quote.status != "unverified" else None
    text = f"{words} · {position.confidence:.2f}"
    return Judgement(position.label, words, text, position.confidence, detail, shown, contested)


def check_text(check: LabelCheck | None, name: Callable[[str], str]) -> str:
    """ "contested by the local model: its quote reads as reporting (0.88)"; "" unless the judgement gate
    contested the label. `name` turns a source key into its name (whose quote, for an agreement)."""
    if check is None or check.status != "contested" or check.reading is None:
        return ""
    whose = {None: "its quote", "before": "its earlier quote", "after": "its later quote"}.get(check.part)
    whose = whose or f"{name(check.part or '')}'s quote"
    confidence = f" ({check.confidence:.2f})" if check.confidence is not None else ""
    return f"{CONTESTED}: {whose} reads as {READS_AS[check.reading]}{confidence}"


def _checked(documents: int) -> str:
    return f"checked {plural(documents, 'stored document')}" if documents else ""


def ordered_claims(claims: Sequence[ClaimJudgement]) -> list[ClaimJudgement]:
    return sorted(claims, key=lambda c: not c.is_target)  # the question's proposition first, else as given


def claim_row(claim: ClaimJudgement, columns: Sequence[SourceColumn], quote: QuoteMaker) -> ClaimRow:
    heading = "The question" if claim.is_target else "Claim"
    origin = quote(claim.origin) if claim.origin and claim.origin.status != "unverified" else None
    cells = [judgement(claim.position(column.key), quote) for column in columns]
    return ClaimRow(claim.id, claim.text, claim.is_target, heading, origin, cells)


def agreement_view(agreement: Agreement, quote: QuoteMaker) -> AgreementView:
    names = [quote.name(s) for s in agreement.sources]
    return AgreementView(
        claim=agreement.claim,
        sources=names,
        sources_text=f"{human_join(names)} back it",
        confidence_text=confidence_text(agreement.confidence),
        quotes=quote.many(agreement.quotes),
        check_text=check_text(agreement.check, quote.name),
    )


def difference_view(difference: Difference, quote: QuoteMaker) -> DifferenceView:
    labels = {as_position(p.position) for p in difference.positions}
    strong = difference.strength == "strong" and {"backs", "disputes"} <= labels
    sides = [
        Side(
            key=p.source,
            name=quote.name(p.source),
            state=as_position(p.position) or "tone",
            words=label_words(p.position),
            confidence_text=confidence_text(p.confidence),
            quotes=quote.many(p.quotes),
            check_text=check_text(p.check, quote.name),
        )
        for p in difference.positions
    ]
    return DifferenceView(
        claim=difference.claim,
        strong=strong,
        strength_text="opposed" if strong else "weaker contrast",
        confidence=difference.confidence,
        confidence_text=confidence_text(difference.confidence),
        sides=sides,
    )


def rank_differences(differences: Sequence[DifferenceView]) -> list[DifferenceView]:
    """Opposed (one backs, another disputes) first, then weaker contrasts; most confident first in each."""
    return sorted(differences, key=lambda d: (not d.strong, -d.confidence))


def omission_row(omission: Omission, comparison: Comparison, columns: Sequence[SourceColumn]) -> OmissionRow:
    judged = _find_claim(comparison.claims, omission)
    cells = [
        omission_cell(judged.position(c.key)) if judged else listed_cell(omission, c.key) for c in columns
    ]
    return OmissionRow(omission.claim, confidence_text(omission.confidence), cells)


def _find_claim(claims: Sequence[ClaimJudgement], omission: Omission) -> ClaimJudgement | None:
    if omission.claim_id:
        return next((c for c in claims if c.id == omission.claim_id), None)
    return next((c for c in claims if c.text == omission.claim), None)


def omission_cell(position: SourcePosition | None) -> OmissionCell:
    """From a judged position: addresses it / does not address it (checked N) / not enough evidence."""
    if position is None or not position.sure:
        return OmissionCell("unknown", OMISSION_WORDS["unknown"])
    if position.label == "not_addressed":
        return OmissionCell(
            "not_addressed", OMISSION_WORDS["not_addressed"], _checked(position.checked_documents)
        )
    return OmissionCell("addresses", OMISSION_WORDS["addresses"])


def listed_cell(omission: Omission, source: str) -> OmissionCell:
    """From an older omission's lists, which were read in the retrieved passages only."""
    if source in omission.reported_by:
        return OmissionCell("addresses", OMISSION_WORDS["addresses"])
    if source in omission.not_reported_by:
        return OmissionCell("not_addressed", OMISSION_WORDS["not_addressed"], "in the retrieved passages")
    return OmissionCell("unknown", OMISSION_WORDS["unknown"])
