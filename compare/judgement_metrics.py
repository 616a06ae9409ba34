"""Metrics of the judgement layer: each source's position toward the question's proposition (the `target`
claim), and the differences, agreements, shifts and omissions derived from positions.

Pure functions over a Comparison and a case's expected values (see eval/README.md, "fnc1_judgements"):

- positions, per document: the label of the target claim's `by_date` entry for that document, else the
  source's overall label; a source with no position counts as `not_addressed` (and not sure). Accuracy and
  macro-F1 over the four labels; precision and coverage of the `sure` positions only.
- differences: strong differences on the target as unordered (backs, disputes) source pairs.
- agreements: pairs of sources listed together in an agreement on the target.
- shifts: sources with a `kind == "position"` shift on the target; precision counts every such source that
  is not expected to shift, recall the expected ones found; false shifts = steady sources with one.
- omissions: sources named in an omission of the target, or whose position is a sure `not_addressed`.

Pairs involving a source expected to shift are not judged (its overall position is not defined). Every
score is None when the case gives nothing to measure it against; counts are returned so that datasets can be
aggregated by pooling them (micro), not by averaging per-case ratios.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol, get_args

from compare.metrics import accuracy, macro_f1
from compare.types import POSITION_OF_STANCE, ClaimJudgement, Comparison, PositionLabel, SourcePosition

TARGET_CLAIM = "target"
POSITION_LABELS: tuple[str, ...] = get_args(PositionLabel)
Pair = tuple[str, str]


class ExpectedPositionLike(Protocol):
    # read-only, so that a model whose `position` is a Literal of labels satisfies it
    @property
    def source(self) -> str: ...
    @property
    def doc_id(self) -> str: ...
    @property
    def position(self) -> str: ...
    @property
    def date(self) -> str | None: ...


def as_position(label: str) -> str:
    """Claim-stance labels (agree, disagree, ...) in position words (backs, disputes, ...)."""
    return POSITION_OF_STANCE.get(label, label)


def pair(first: str, second: str) -> Pair:
    return (first, second) if first <= second else (second, first)


# -- positions -------------------------------------------------------------------------------------------


def target_claim(comparison: Comparison) -> ClaimJudgement | None:
    return next((c for c in comparison.claims if c.is_target or c.id == TARGET_CLAIM), None)


def target_positions(comparison: Comparison) -> dict[str, SourcePosition]:
    """source -> position toward the target: the target claim's, else the source view's."""
    found = {v.source: v.position for v in comparison.sources if v.position is not None}
    claim = target_claim(comparison)
    return found | ({p.source: p for p in claim.positions} if claim else {})


def document_position(position: SourcePosition | None, doc_id: str) -> tuple[str, bool]:
    """(label, sure) of one document: its dated entry, else the source's overall position. A dated entry
    takes the source's `sure` unless it carries its own."""
    if position is None:
        return "not_addressed", False
    dated = next((d for d in position.by_date if d.doc_id == doc_id), None)
    if dated is None:
        return position.label, position.sure
    return dated.label, bool(getattr(dated, "sure", position.sure))


@dataclass
class PositionRow:
    source: str
    doc_id: str
    expected: str
    predicted: str
    sure: bool


def position_rows(expected: Sequence[ExpectedPositionLike], comparison: Comparison) -> list[PositionRow]:
    positions = target_positions(comparison)
    rows = []
    for want in expected:
        label, sure = document_position(positions.get(want.source), want.doc_id)
        rows.append(PositionRow(want.source, want.doc_id, as_position(want.position), label, sure))
    return rows


@dataclass
class PositionScores:
    documents: int
    accuracy: float | None
    macro_f1: float | None
    sure: int
    sure_correct: int

    @property
    def sure_precision(self) -> float | None:
        """When it says a label (sure), how often it is right."""
        return self.sure_correct / self.sure if self.sure else None

    @property
    def sure_coverage(self) -> float | None:
        return self.sure / self.documents if self.documents else None


def position_scores(rows: Sequence[tuple[str, str, bool]]) -> PositionScores:
    """rows of (expected, predicted, sure); macro-F1 over the four position labels."""
    pairs = [(e, p) for e, p, _ in rows]
    sure = [(e, p) for e, p, s in rows if s]
    return PositionScores(
        len(rows),
        accuracy(pairs),
        macro_f1(pairs, POSITION_LABELS),
        len(sure),
        sum(1 for e, p in sure if e == p),
    )


# -- sets of sources and of pairs ------------------------------------------------------------------------


@dataclass
class SetScores:
    predicted: int
    expected: int
    matched: int

    @property
    def precision(self) -> float | None:
        return self.matched / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.matched / self.expected if self.expected else None


def set_scores(predicted: Iterable[object], expected: Iterable[object]) -> SetScores:
    found, wanted = set(predicted), set(expected)
    return SetScores(len(found), len(wanted), len(found & wanted))


def judged_pairs(pairs: Iterable[Pair], unjudged: Iterable[str]) -> set[Pair]:
    """Pairs without a source whose overall position is undefined (one expected to shift)."""
    skip = set(unjudged)
    return {p for p in pairs if not skip & set(p)}


def predicted_differences(comparison: Comparison) -> set[Pair]:
    """(backs, disputes) source pairs of the strong differences on the target."""
    pairs: set[Pair] = set()
    for difference in comparison.differences:
        if difference.claim_id != TARGET_CLAIM or difference.strength != "strong":
            continue
        labels = [(p.source, as_position(p.position)) for p in difference.positions]
        backs = {source for source, label in labels if label == "backs"}
        disputes = {source for source, label in labels if label == "disputes"}
        pairs |= {pair(a, b) for a in backs for b in disputes if a != b}
    return pairs


def predicted_agreements(comparison: Comparison) -> set[Pair]:
    return {
        pair(a, b)
        for agreement in comparison.agreements
        if agreement.claim_id == TARGET_CLAIM
        for a, b in combinations(sorted(set(agreement.sources)), 2)
    }


def predicted_omissions(comparison: Comparison) -> set[str]:
    """Sources named in an omission of the target, or with a sure `not_addressed` position toward it."""
    listed = {s for o in comparison.omissions if o.claim_id == TARGET_CLAIM for s in o.not_reported_by}
    unaddressed = {
        source for source, p in target_positions(comparison).items() if p.label == "not_addressed" and p.sure
    }
    return listed | unaddressed


# -- shifts of position ----------------------------------------------------------------------------------


def position_shifts(comparison: Comparison) -> dict[str, set[tuple[str, str]]]:
    """source -> its (before, after) labels, for every position shift on the target."""
    found: dict[str, set[tuple[str, str]]] = {}
    for shift in comparison.shifts:
        if shift.kind == "position" and shift.claim_id == TARGET_CLAIM:
            moves = found.setdefault(shift.source, set())
            moves.add((as_position(shift.before.stance), as_position(shift.after.stance)))
    return found


def expected_moves(expected: Sequence[ExpectedPositionLike]) -> dict[str, tuple[str, str]]:
    """source -> (first, last) position of its dated documents, where they differ."""
    dated: dict[str, list[tuple[str, str]]] = {}
    for want in expected:
        if want.date:
            dated.setdefault(want.source, []).append((want.date, as_position(want.position)))
    moves = {}
    for source, points in dated.items():
        points.sort()
        if points[0][1] != points[-1][1]:
            moves[source] = (points[0][1], points[-1][1])
    return moves


@dataclass
class ShiftJudgement:
    sources: SetScores  # predicted shifting sources vs expected shifting sources
    directed: int  # expected shifting sources found with the right (before, after) labels
    steady: int
    steady_shifted: int

    @property
    def direction(self) -> float | None:
        return self.directed / self.sources.matched if self.sources.matched else None

    @property
    def false_shift_rate(self) -> float | None:
        return self.steady_shifted / self.steady if self.steady else None


def shift_judgement(
    shifting: Sequence[str],
    steady: Sequence[str],
    expected: Sequence[ExpectedPositionLike],
    comparison: Comparison,
) -> ShiftJudgement:
    found = position_shifts(comparison)
    moves = expected_moves(expected)
    directed = sum(1 for s in set(shifting) & set(found) if moves.get(s) in found[s])
    steady_shifted = len(set(steady) & set(found))
    return ShiftJudgement(set_scores(found, shifting), directed, len(set(steady)), steady_shifted)
