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
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from compare.chunking import sentence_spans
from compare.types import Document, Quote, Shift, ShiftPoint

_CHANGE = re.compile(
    r"\b(shift(?:ed|s|ing)?|pivot(?:ed|s)?|transition(?:ed)?|u-turn|about-face|turnaround|evolution|"
    r"move(?:d)? (?:away )?from|chang(?:e|ed|es|ing) (?:course|tack|its|their|his|her))\b",
    re.IGNORECASE,
)
_FROM_TO = re.compile(
    r"\bfrom\s+(?P<before>[^,;]{8,160}?)\s+to\s+(?P<after>[^,;]{8,160}?)(?=[,;.]|\s+(?:and|as|in|amid)\b|$)"
)
#: Each side of "from X to Y" must read as a position: an action ("seeking a decisive victory") or a
#: position noun ("its earlier policy"); "from a failed counteroffensive to defensive lines" is not one.
_POSITION_SIDE = re.compile(
    r"^\W*(?:\w+ly\s+)?\w+ing\b|\b(?:policy|policies|position|stance|support|opposition|strategy|goal|aim|"
    r"approach|objective|demand|insistence|refusal|ban|commitment)\b",
    re.IGNORECASE,
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
#: The act that replaced an earlier stance ("authorized ATACMS strikes") is a better "after" than a summary
#: of the change ("reversed key policies"): it says what the new position is.
_ACT = re.compile(r"\b(authori[sz]ed|approved|allowed|permitted|lifted|granted|agreed)\b", re.IGNORECASE)
#: The partner of an earlier stance must be at least this similar to it (cosine of sentence vectors).
PARTNER_SIMILARITY = 0.35
#: An act ("authorized …") carries its own evidence of a new line, so it may be a little less similar.
ACT_SIMILARITY = 0.3
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
Embed = Callable[[list[str]], np.ndarray]


@dataclass
class _Span:
    """A sentence of a document outside the evidence, as a partner candidate."""

    source: str
    doc_id: str
    start: int
    end: int
    text: str
    vector: np.ndarray


def reported_shifts(
    sentences: Sequence[SentenceLike],
    documents: dict[str, Document],
    quote_of: QuoteOf,
    embed: Embed | None = None,
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
        olds = [s for s in doc_sentences if _OLD_STANCE.search(s.text)]
        candidates: list[SentenceLike] = list(doc_sentences)
        if olds and embed is not None:
            candidates += _act_sentences(doc, doc_sentences, embed)
        for old in olds:
            partner = _partner(old, candidates)
            if partner is not None:
                shifts.append(_paired(doc, old, partner, quote_of))
    return _one_per_span(shifts)


def _from_to(doc: Document, sentence: SentenceLike, quote_of: QuoteOf) -> Shift | None:
    cue = _CHANGE.search(sentence.text)
    span = _FROM_TO.search(sentence.text)
    if not (cue and span and cue.start() - 40 <= span.start() <= cue.end() + 40):
        return None
    if not (_POSITION_SIDE.search(span.group("before")) and _POSITION_SIDE.search(span.group("after"))):
        return None
    before = quote_of(doc, sentence.start + span.start("before"), sentence.start + span.end("before"))
    after = quote_of(doc, sentence.start + span.start("after"), sentence.start + span.end("after"))
    description = f"Reports a {cue.group(0).lower()}: from “{before.text}” to “{after.text}”"
    return _reported(doc, sentence, before, after, description, [cue.group(0).lower()], FROM_TO_CONFIDENCE)


def _act_sentences(doc: Document, known: Sequence[SentenceLike], embed: Embed) -> list[SentenceLike]:
    """Sentences of the whole document that state a new line (the evidence holds only the most relevant)."""
    seen = {s.start for s in known}
    spans = [(a, b) for a, b in sentence_spans(doc.text) if a not in seen and _NEW_LINE.search(doc.text[a:b])]
    if not spans:
        return []
    vectors = embed([doc.text[a:b] for a, b in spans])
    return [
        _Span(doc.source, doc.id, a, b, doc.text[a:b], v) for (a, b), v in zip(spans, vectors, strict=True)
    ]


def _partner(old: SentenceLike, candidates: Sequence[SentenceLike]) -> SentenceLike | None:
    """The sentence that states what replaced the earlier stance: an act ("authorized …") when one is close
    enough, else a summary of the change ("has reversed key policies …")."""
    scored = [
        (float(old.vector @ c.vector), c)
        for c in candidates
        if c is not old and _NEW_LINE.search(c.text) and not _OLD_STANCE.search(c.text)
    ]
    acts = [(score, c) for score, c in scored if score >= ACT_SIMILARITY and _ACT.search(c.text)]
    pool = acts or [(score, c) for score, c in scored if score >= PARTNER_SIMILARITY]
    return max(pool, key=lambda pair: pair[0])[1] if pool else None


def _paired(doc: Document, old: SentenceLike, new: SentenceLike, quote_of: QuoteOf) -> Shift:
    before, after = quote_of(doc, old.start, old.end), quote_of(doc, new.start, new.end)
    old_cue = _OLD_STANCE.search(old.text)
    new_cue = _NEW_LINE.search(new.text)
    cues = [m.group(0).lower() for m in (old_cue, new_cue) if m]
    description = f"Reports an earlier position (“{cues[0]}”) and what replaced it (“{cues[-1]}”)"
    return _reported(doc, new, before, after, description, cues, PAIRED_CONFIDENCE)


def _reported(
    doc: Document,
    told: SentenceLike,
    before: Quote,
    after: Quote,
    description: str,
    cues: list[str],
    score: float,
) -> Shift:
    """A change the document tells: the earlier side is undated (the article does not say when)."""
    return Shift(
        source=told.source,
        topic=told.text,
        kind="reported",
        before=ShiftPoint(date=None, stance="reports", quote=before),
        after=ShiftPoint(date=doc.date, stance="reports", quote=after),
        description=description,
        cues=cues,
        score=score,
    )


def _one_per_span(shifts: list[Shift]) -> list[Shift]:
    best: dict[tuple[str, int, int], Shift] = {}
    for shift in shifts:
        key = (shift.source, shift.before.quote.char_start, shift.after.quote.char_start)
        if key not in best or shift.score > best[key].score:
            best[key] = shift
    return sorted(best.values(), key=lambda s: -s.score)
