"""Shifts in a reader's words, ranked by confidence: "backed “X” on 5 Jan 2024; disputed it on 5 Mar 2024", or
"reports a change: from “…” to “…”"; an older shift labelled with tone says so, never "positive -> negative"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from compare.types import Comparison, Shift, ShiftPoint
from compare.view.judgements import check_text
from compare.view.model import ShiftEnd, ShiftView
from compare.view.quotes import QuoteMaker
from compare.view.words import (
    as_position,
    clip,
    confidence_text,
    human_date,
    label_words,
    on_date,
    past_words,
)

TOPIC_CHARS = 140
REPORTED_QUOTE_CHARS = 110
SHIFT_KIND_TEXT = {"position": "change of position", "reported": "reported change", "tone": "change of tone"}


def shift_view(
    comparison: Comparison,
    shift: Shift,
    names: Mapping[str, str],
    colours: Mapping[str, str],
    quote: QuoteMaker,
) -> ShiftView:
    topic = _shift_topic(comparison, shift)
    kind = shift_kind(shift)
    before, after = (_shift_end(point, quote, kind) for point in (shift.before, shift.after))
    return ShiftView(
        source=shift.source,
        name=names.get(shift.source, shift.source),
        colour=colours.get(shift.source, "#57606a"),
        kind=kind,
        kind_text=SHIFT_KIND_TEXT[kind],
        sentence=shift_sentence(shift, topic),
        topic=topic,
        confidence=shift.score,
        confidence_text=confidence_text(shift.score),
        cues=list(shift.cues),
        before=before,
        after=after,
        check_text=check_text(shift.check, quote.name),
    )


def _shift_end(point: ShiftPoint, quote: QuoteMaker, kind: str) -> ShiftEnd:
    """One end of a shift. A reported change is told by its two quotes: its ends carry no label of their own
    (the document reports the old position, it does not take it)."""
    day = point.date or point.quote.date
    words = "" if kind == "reported" else label_words(point.stance)
    return ShiftEnd(day, human_date(day), point.stance, words, quote(point.quote))


def _shift_topic(comparison: Comparison, shift: Shift) -> str:
    claim = next((c for c in comparison.claims if shift.claim_id and c.id == shift.claim_id), None)
    return clip(claim.text if claim else shift.topic, TOPIC_CHARS)


def shift_kind(shift: Shift) -> str:
    """reported, position, or tone (an older shift whose ends carry tone labels, not positions)."""
    if shift.kind == "reported":
        return "reported"
    positions = as_position(shift.before.stance) and as_position(shift.after.stance)
    return "position" if positions else "tone"


def shift_sentence(shift: Shift, topic: str) -> str:
    """What changed, in a reader's words: "backed “X” on 5 Jan 2024; disputed it on 5 Mar 2024"."""
    before, after = shift.before, shift.after
    if shift.kind == "reported":
        was = clip(before.quote.text, REPORTED_QUOTE_CHARS)
        now = clip(after.quote.text, REPORTED_QUOTE_CHARS)
        return f"reports a change: from “{was}” to “{now}”"
    first = f"{past_words(before.stance, f'“{topic}”')} {on_date(before.date or before.quote.date)}"
    if shift_kind(shift) == "tone":
        then = f"in a {after.stance.replace('_', ' ')} tone {on_date(after.date or after.quote.date)}"
    else:
        then = f"{past_words(after.stance, 'it')} {on_date(after.date or after.quote.date)}"
    return f"{first}; {then}"


def rank_shifts(shifts: Sequence[ShiftView]) -> list[ShiftView]:
    """By confidence, highest first; changes of position before reported ones, then tone, on ties."""
    order = {"position": 0, "reported": 1, "tone": 2}
    return sorted(shifts, key=lambda s: (-s.confidence, order.get(s.kind, 3)))
