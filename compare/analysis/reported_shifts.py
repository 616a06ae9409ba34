"""Shifts a document reports in words: "a shift from X to Y", or "previously resisted …" beside what replaced it.

Only changes whose scope is a position count: a change noun or verb ("shift", "pivot", "moved away from")
governing "from X to Y", or an earlier stance verb ("had resisted", "previously refused", "once opposed")
paired with the closest sentence of the same document that states the new line with an action or reversal verb
("authorized", "approved", "reversed"). A sentence that merely mentions the past ("Previously, I had
recommended …") is not one. Found only among the sentences relevant to the question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from compare.types import Document, Quote, Shift, ShiftPoint

_CHANGE = re.compile(
    r"\b(shift(?:ed|s|ing)?|pivot(?:ed|s)?|transition(?:ed)?|u-turn|about-face|turnaround|evolution|"
    r"move(?:d)? (?:away )?from|chang(?:e|ed|es|ing) (?:course|tack|its|their|his|her))\b",
    re.IGNORECASE,
)
_FROM_TO = re.compile(
    r"\bfrom\s+(?P<before>[^,;]{8,160}?)\s+to\s+(?P<after>[^,;]{8,160}?)(?=[,;.]|\s+(?:and|as|in|amid)\b|$)"
)
_OLD_STANCE = re.compile(
    r"\b(?:previously|formerly|initially|at first|long|once|had)\s+(?:\w+\s+)?"
    r"(resisted|refused|opposed|rejected|withheld|insisted|ruled out|declined|balked at|hesitated|"
    r"resisting|refusing|opposing|rejecting|withholding)\b|\bused to (?:oppose|resist|refuse|reject)\b",
    re.IGNORECASE,
)
_NEW_LINE = re.compile(
    r"\b(authori[sz]ed|approved|agreed|allowed|permitted|lifted|granted|reversed|relented|dropped|"
    r"now (?:supports?|backs?|opposes?|allows?|says?)|no longer|began|started|announced)\b",
    re.IGNORECASE,
)
#: The partner of an earlier stance must be at least this similar to it (cosine of sentence vectors).
PARTNER_SIMILARITY = 0.35
FROM_TO_CONFIDENCE = 0.9
PAIRED_CONFIDENCE = 0.75


def states_a_change(text: str) -> bool:
    """Does the sentence report a change of position, or an earlier stance that was replaced?"""
    return bool(_OLD_STANCE.search(text) or (_CHANGE.search(text) and _FROM_TO.search(text)))


class SentenceLike(Protocol):
    source: str
    doc_id: str
    start: int
    end: int
    text: str
    vector: np.ndarray


QuoteOf = Callable[[Document, int, int], Quote]


def reported_shifts(
    sentences: Sequence[SentenceLike], documents: dict[str, Document], quote_of: QuoteOf
) -> list[Shift]:
    by_doc: dict[str, list[SentenceLike]] = {}
    for sentence in sentences:
        by_doc.setdefault(sentence.doc_id, []).append(sentence)
    shifts: list[Shift] = []
    for doc_id, doc_sentences in by_doc.items():
        doc = documents[doc_id]
        for sentence in doc_sentences:
            shift = _from_to(doc, sentence, quote_of)
            if shift is not None:
                shifts.append(shift)
        for old in (s for s in doc_sentences if _OLD_STANCE.search(s.text)):
            partner = _partner(old, doc_sentences)
            if partner is not None:
                shifts.append(_paired(doc, old, partner, quote_of))
    return _one_per_span(shifts)


def _from_to(doc: Document, sentence: SentenceLike, quote_of: QuoteOf) -> Shift | None:
    cue = _CHANGE.search(sentence.text)
    span = _FROM_TO.search(sentence.text)
    if not (cue and span and cue.start() - 40 <= span.start() <= cue.end() + 40):
        return None
    before = quote_of(doc, sentence.start + span.start("before"), sentence.start + span.end("before"))
    after = quote_of(doc, sentence.start + span.start("after"), sentence.start + span.end("after"))
    return Shift(
        source=sentence.source,
        topic=sentence.text,
        kind="reported",
        before=ShiftPoint(date=None, stance="reports", quote=before),
        after=ShiftPoint(date=doc.date, stance="reports", quote=after),
        description=f"Reports a {cue.group(0).lower()}: from “{before.text}” to “{after.text}”",
        cues=[cue.group(0).lower()],
        score=FROM_TO_CONFIDENCE,
    )


def _partner(old: SentenceLike, candidates: Sequence[SentenceLike]) -> SentenceLike | None:
    scored = [
        (float(old.vector @ c.vector), c)
        for c in candidates
        if c is not old and _NEW_LINE.search(c.text) and not _OLD_STANCE.search(c.text)
    ]
    scored = [(score, c) for score, c in scored if score >= PARTNER_SIMILARITY]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def _paired(doc: Document, old: SentenceLike, new: SentenceLike, quote_of: QuoteOf) -> Shift:
    before, after = quote_of(doc, old.start, old.end), quote_of(doc, new.start, new.end)
    old_cue = _OLD_STANCE.search(old.text)
    new_cue = _NEW_LINE.search(new.text)
    cues = [m.group(0).lower() for m in (old_cue, new_cue) if m]
    return Shift(
        source=new.source,
        topic=new.text,
        kind="reported",
        before=ShiftPoint(date=None, stance="reports", quote=before),
        after=ShiftPoint(date=doc.date, stance="reports", quote=after),
        description=f"Reports an earlier position (“{cues[0]}”) and what replaced it (“{cues[-1]}”)",
        cues=cues,
        score=PAIRED_CONFIDENCE,
    )


def _one_per_span(shifts: list[Shift]) -> list[Shift]:
    best: dict[tuple[str, int, int], Shift] = {}
    for shift in shifts:
        key = (shift.source, shift.before.quote.char_start, shift.after.quote.char_start)
        if key not in best or shift.score > best[key].score:
            best[key] = shift
    return sorted(best.values(), key=lambda s: -s.score)
