"""The judgement gate: labels a model gave, read again by the local claim-stance model on their own quotes.

An LLM labels what sources do with a claim: a source backs, disputes or only reports it (a position, a side of a
difference), several sources back it (an agreement), a source's position moved (a shift), a source states it (a
per-source claim). Each of these that is shown rests on quotes that passed the quote gate; here the stance model
(`stance_model.py`) reads every such quote, with a sentence either side from the stored document, against the
label's claim, and the label is
- confirmed: the model is sure the quote reads as the label says;
- contested: the model reads it otherwise, at a confidence where that reading was rare for quotes the label
  fits (`CONTEST_AT`, measured by eval/calibrate_judgement_gate.py on FNC-1 stories the model never saw). The
  label stays where it was and says so ("model: disputes; its quote reads as reporting"); its confidence drops
  to the local model's probability of it, and a position becomes "not enough evidence";
- unchecked: the model is not sure, or no verified quote is left to read.
`meta.labels` counts them. It runs after the quote gate, so only verified (or repaired) quotes are read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from compare.analysis.judgements import is_proposition
from compare.analysis.stance_model import Judged, StanceModel
from compare.chunking import sentence_spans
from compare.types import (
    POSITION_OF_STANCE,
    READS_AS,
    Agreement,
    CheckStatus,
    Comparison,
    Document,
    LabelCheck,
    Position,
    PositionLabel,
    Quote,
    Shift,
    SourcePosition,
)

#: Sentences either side of a quote read with it (CONTEST_AT was measured with 1).
CONTEXT_SENTENCES = 1
#: What a label says its quotes read as; "states": the source states the claim, backing or reporting it (an
#: agreement's quotes, a per-source claim's quotes).
Claimed = Literal["backs", "disputes", "reports", "not_addressed", "states"]
ACCEPTED: dict[Claimed, frozenset[str]] = {
    "backs": frozenset({"backs"}),
    "disputes": frozenset({"disputes"}),
    "reports": frozenset({"reports"}),
    "not_addressed": frozenset({"not_addressed"}),
    "states": frozenset({"backs", "reports"}),
}
#: (claimed, reading) -> the lowest confidence of a sure reading that contests the label: the lowest at which,
#: on quotes of FNC-1 validation stories whose true label is the claimed one, at most 3% read so
#: (eval/calibrate_judgement_gate.py; eval/calibration/judgement_gate.json has the run and its figures on the
#: unseen fnc1 subset: 0.4-1.8% false contests per pair). 0.0: any sure reading. Reading a backing or disputing
#: quote as reporting is the model's commonest confusion, so it contests those labels only when very sure; a
#: disputing quote it reads as backing never does (disputes -> backs is not listed: it stays unchecked).
CONTEST_AT: dict[tuple[Claimed, PositionLabel], float] = {
    ("backs", "disputes"): 0.0,
    ("backs", "reports"): 0.88,
    ("backs", "not_addressed"): 0.87,
    ("disputes", "reports"): 0.87,
    ("disputes", "not_addressed"): 0.0,
    ("reports", "backs"): 0.0,
    ("reports", "disputes"): 0.0,
    ("reports", "not_addressed"): 0.0,
    ("states", "disputes"): 0.0,
    ("states", "not_addressed"): 0.0,
}
#: An LLM's tone label at a shift's end, as the position it stands for on a proposition ("mixed" has none).
TONE_AS_POSITION: dict[str, PositionLabel] = {
    "positive": "backs",
    "negative": "disputes",
    "neutral": "reports",
    "not_addressed": "not_addressed",
}


@dataclass(frozen=True)
class QuoteCheck:
    """One quote read against one claim: its status for the claimed label, what it reads as, how sure the model
    is of that, and the model's probability of the claimed label (`support`)."""

    status: CheckStatus
    claimed: Claimed
    reading: PositionLabel
    confidence: float
    support: float
    part: str | None = None


@dataclass
class GateCounts:
    """Labels read (`checked`: at least one quote read), and how each came out."""

    checked: int = 0
    confirmed: int = 0
    contested: int = 0
    unchecked: int = 0

    def add(self, check: LabelCheck) -> LabelCheck:
        self.checked += check.reading is not None
        self.confirmed += check.status == "confirmed"
        self.contested += check.status == "contested"
        self.unchecked += check.status == "unchecked"
        return check

    def as_dict(self) -> dict[str, int]:
        return {
            "checked": self.checked,
            "confirmed": self.confirmed,
            "contested": self.contested,
            "unchecked": self.unchecked,
        }


@dataclass
class QuoteReader:
    """Reads quotes with the stance model against claims, each (claim, span) once."""

    model: StanceModel
    documents: Mapping[str, Document]
    _sentences: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _read: dict[tuple[str, str, int, int], Judged] = field(default_factory=dict)

    def read(self, claim: str, quote: Quote) -> Judged | None:
        """The model's reading of the quote (a sentence either side); None when it cannot be read."""
        doc = self.documents.get(quote.doc_id)
        if doc is None or not claim.strip() or quote.status == "unverified":
            return None
        key = (claim, quote.doc_id, quote.char_start, quote.char_end)
        if key not in self._read:
            spans = quote_window(self._spans(doc), quote.char_start, quote.char_end)
            self._read[key] = self.model.judge(claim, doc.text, spans)
        return self._read[key]

    def _spans(self, doc: Document) -> list[tuple[int, int]]:
        if doc.id not in self._sentences:
            self._sentences[doc.id] = sentence_spans(doc.text)
        return self._sentences[doc.id]


def quote_window(
    sentences: Sequence[tuple[int, int]], start: int, end: int, context: int = CONTEXT_SENTENCES
) -> list[tuple[int, int]]:
    """The sentences a quote overlaps, with `context` sentences either side; the quote itself if none."""
    inside = [i for i, (s, e) in enumerate(sentences) if s < end and e > start]
    if not inside:
        return [(start, end)]
    return list(sentences[max(0, inside[0] - context) : inside[-1] + context + 1])


# -- one quote, one label ------------------------------------------------------------------------------------


def check_quote(judged: Judged, claimed: Claimed, part: str | None = None) -> QuoteCheck:
    reading = POSITION_OF_STANCE[judged.label]
    accepted = ACCEPTED[claimed]
    support = sum(p for stance, p in judged.probabilities.items() if POSITION_OF_STANCE[stance] in accepted)
    status = quote_status(judged, reading, claimed)
    return QuoteCheck(status, claimed, reading, round(judged.confidence, 3), round(support, 3), part)


def quote_status(judged: Judged, reading: PositionLabel, claimed: Claimed) -> CheckStatus:
    if not judged.sure:
        return "unchecked"
    if reading in ACCEPTED[claimed]:
        return "confirmed"
    bar = CONTEST_AT.get((claimed, reading))
    return "contested" if bar is not None and judged.confidence >= bar else "unchecked"


def combine(checks: Sequence[QuoteCheck], *, every: bool) -> QuoteCheck | None:
    """The check that decides a label. `every`: each quote carries a part of the label (an agreement's
    sources, a shift's ends), so one contested quote contests it and all must confirm it. Otherwise the
    quotes are alternatives: one confirming quote confirms it; else one contesting quote contests it."""
    if not checks:
        return None
    contested = [c for c in checks if c.status == "contested"]
    confirmed = [c for c in checks if c.status == "confirmed"]
    if confirmed and not every:
        return max(confirmed, key=lambda c: c.support)
    if contested:
        return min(contested, key=lambda c: c.support)
    if len(confirmed) == len(checks):
        return min(confirmed, key=lambda c: c.support)
    return next(c for c in checks if c.status == "unchecked")


def label_check(found: QuoteCheck | None, label: PositionLabel | None, said: str) -> LabelCheck:
    """The label's check, with a note in words; `said` is the label as the model gave it ("backs")."""
    if found is None:
        return LabelCheck(status="unchecked", label=label, note="no verified quote to read")
    return LabelCheck(
        status=found.status,
        label=label,
        reading=found.reading,
        confidence=found.confidence,
        part=found.part,
        note=check_note(found, said),
    )


def check_note(found: QuoteCheck, said: str) -> str:
    """ "model: disputes; its quote reads as reporting", and the like for the other outcomes."""
    whose = quote_owner(found.part)
    reads = f"{whose} reads as {READS_AS[found.reading]}"
    if found.status == "contested":
        return f"model: {said}; {reads}"
    if found.status == "confirmed":
        return f"the local model agrees: {reads}"
    return f"the local model cannot tell: {reads} at {found.confidence:.2f}"


def quote_owner(part: str | None) -> str:
    """Whose quote a check speaks of: "its quote", "its earlier quote", "fox's quote"."""
    if part is None:
        return "its quote"
    return {"before": "its earlier quote", "after": "its later quote"}.get(part, f"{part}'s quote")


def lowered(confidence: float, found: QuoteCheck | None) -> float:
    """A contested label's confidence: at most the local model's probability of it."""
    if found is None or found.status != "contested":
        return confidence
    return round(min(confidence, found.support), 3)


def as_position(label: str) -> PositionLabel | None:
    """A position or claim-stance label as a position; None for a tone label."""
    if label in READS_AS:
        return label  # type: ignore[return-value]
    return POSITION_OF_STANCE.get(label)


def claimed_position(label: str, topic: str) -> PositionLabel | None:
    """A shift end's label as a position: a tone label stands for one only when the topic is a statement
    one can back or dispute ("positive" toward "Microsoft to buy Mojang" backs it); "mixed" for none."""
    position = as_position(label)
    if position is not None or not is_proposition(topic, explicit=True):
        return position
    return TONE_AS_POSITION.get(label)


# -- the gate over a comparison ------------------------------------------------------------------------------


def gate_labels(
    comparison: Comparison, documents: Mapping[str, Document], model: StanceModel, *, cross_source: bool
) -> GateCounts:
    """Checks every model-given label of `comparison` in place: its per-source claims always, and with
    `cross_source` its positions, agreements, differences and shifts (off when the measured judgement layer
    made those). Records the counts and the checking model in `meta`."""
    reader = QuoteReader(model, documents)
    counts = GateCounts()
    for view in comparison.sources:
        for claim in view.claims:
            found = combine(_checks(reader, claim.text, claim.quotes, "states"), every=False)
            claim.check = counts.add(label_check(found, None, "states it"))
    if cross_source:
        _gate_cross_source(comparison, reader, counts)
    comparison.meta.labels = counts.as_dict()
    comparison.meta.label_checker = model.method
    return counts


def _gate_cross_source(comparison: Comparison, reader: QuoteReader, counts: GateCounts) -> None:
    for claim_text, position in _shown_positions(comparison):
        gate_position(position, claim_text, reader, counts)
    for agreement in comparison.agreements:
        gate_agreement(agreement, reader, counts)
    for difference in comparison.differences:
        for side in difference.positions:
            found = gate_side(side, difference.claim, reader, counts)
            difference.confidence = lowered(difference.confidence, found)
    for shift in comparison.shifts:
        if shift.kind == "position":
            gate_shift(shift, _shift_topic(comparison, shift), reader, counts)


def _checks(reader: QuoteReader, claim: str, quotes: Iterable[Quote], claimed: Claimed) -> list[QuoteCheck]:
    return [check_quote(judged, claimed) for q in quotes if (judged := reader.read(claim, q)) is not None]


def _shown_positions(comparison: Comparison) -> list[tuple[str, SourcePosition]]:
    """Every sure position (the ones shown as labels), each object once, with the claim it is toward."""
    held = [(claim.text, p) for claim in comparison.claims for p in claim.positions]
    held += [(comparison.target, v.position) for v in comparison.sources if v.position is not None]
    seen: set[int] = set()
    shown = []
    for text, position in held:
        if position.sure and id(position) not in seen:
            seen.add(id(position))
            shown.append((text, position))
    return shown


def gate_position(position: SourcePosition, claim: str, reader: QuoteReader, counts: GateCounts) -> None:
    quotes = [position.quote] if position.quote is not None else []
    found = combine(_checks(reader, claim, quotes, position.label), every=False)
    position.check = counts.add(label_check(found, position.label, position.label))
    position.confidence = lowered(position.confidence, found)
    position.sure = position.sure and position.check.status != "contested"


def gate_agreement(agreement: Agreement, reader: QuoteReader, counts: GateCounts) -> None:
    checks = [
        check_quote(judged, "states", q.source)
        for q in agreement.quotes
        if (judged := reader.read(agreement.claim, q)) is not None
    ]
    found = combine(checks, every=True)
    agreement.check = counts.add(label_check(found, "backs", "backs"))
    agreement.confidence = lowered(agreement.confidence, found)


def gate_side(side: Position, claim: str, reader: QuoteReader, counts: GateCounts) -> QuoteCheck | None:
    """One source's side of a difference; a tone label is not a side the stance model can read."""
    label = as_position(side.position)
    if label is None:
        return None
    found = combine(_checks(reader, claim, side.quotes, label), every=False)
    side.check = counts.add(label_check(found, label, label))
    side.confidence = lowered(side.confidence, found)
    return found


def gate_shift(shift: Shift, topic: str, reader: QuoteReader, counts: GateCounts) -> None:
    """Both ends read against the topic; a shift whose ends carry no position (tone on a topic) is left."""
    before, after = (claimed_position(end.stance, topic) for end in (shift.before, shift.after))
    if before is None or after is None:
        return
    ends = (("before", shift.before, before), ("after", shift.after, after))
    checks = [
        check_quote(judged, label, part)
        for part, end, label in ends
        if (judged := reader.read(topic, end.quote)) is not None
    ]
    found = combine(checks, every=True)
    label = after if found is not None and found.part == "after" else before
    shift.check = counts.add(label_check(found, label, f"{before} then {after}"))
    shift.score = lowered(shift.score, found)


def _shift_topic(comparison: Comparison, shift: Shift) -> str:
    claim = next((c for c in comparison.claims if shift.claim_id and c.id == shift.claim_id), None)
    return claim.text if claim is not None else (shift.topic or comparison.target)
