"""Evaluation metrics: small pure functions over a Comparison and the expected values of one case.

Every metric returns None when the case gives nothing to measure it against (no expected stances, no
reference summary, ...): "not measured" is never reported as 0 or 1.

- quote validity: verified quotes / quotes proposed, where proposed = presented + dropped (quotes the gate
  refused: not found in the stored text, a doc_id that was not shown, or failing the final verbatim check).
  A fabricated quote is dropped, so it lowers validity even though it is never shown. Presented quotes are
  checked again here against the stored documents (`slice_mismatches` must stay 0).
- citation support: for each claim, agreement and difference position, the cosine similarity between the
  claim's words and each quote attached to it, with the local embedder; a quote "supports" its claim when the
  cosine reaches CITATION_SUPPORT_THRESHOLD, calibrated on FNC-1 headline/body pairs (see eval/README.md).
- source coverage: expected sources that the comparison shows / expected sources.
- stance: accuracy and macro-F1 of the per-source stance labels against the expected ones, beside the
  majority baseline (always answering the most frequent expected label).
- shifts: recall of expected shifts and, among those found, the share reported in the right order.
- span overlap: precision and recall at span level against the spans the answer should cite (any shared
  character counts), beside the same figures for sentences drawn at random from the same documents.
- summary similarity: ROUGE-L F1 (longest common subsequence of lower-cased word tokens, no stemming) and
  embedding cosine against a reference summary.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import numpy as np

from compare.types import Comparison, Document, Quote

#: Cosine (all-MiniLM-L6-v2 int8) at or above which a quote counts as being about its claim. Calibrated by
#: eval/calibrate_citation.py on FNC-1 pairs (related: agree/disagree/discuss, vs unrelated) with the best
#: body sentence as the quote; eval/calibration/citation_support.json holds the run and its accuracy.
CITATION_SUPPORT_THRESHOLD = 0.45

Span = tuple[str, int, int]  # (doc_id, char_start, char_end)
Embed = Callable[[Sequence[str]], np.ndarray]
_TOKEN = re.compile(r"\w+")

# -- walking a comparison --------------------------------------------------------------------------------


def claim_quote_pairs(comparison: Comparison) -> list[tuple[str, Quote]]:
    """(claim text, quote) for every quote attached to a claim in words: claims, agreements, differences."""
    pairs = [(c.text, q) for v in comparison.sources for c in v.claims for q in c.quotes]
    pairs += [(a.claim, q) for a in comparison.agreements for q in a.quotes]
    pairs += [(d.claim, q) for d in comparison.differences for p in d.positions for q in p.quotes]
    return [(claim, quote) for claim, quote in pairs if claim.strip()]


# -- quote validity --------------------------------------------------------------------------------------


@dataclass
class QuoteValidity:
    presented: int
    verified: int
    repaired: int
    dropped: int
    slice_mismatches: int

    @property
    def proposed(self) -> int:
        return self.presented + self.dropped

    @property
    def validity(self) -> float | None:
        return self.verified / self.proposed if self.proposed else None


def dropped_quotes(meta_quotes: dict[str, int]) -> int:
    """Quotes the gate refused: unverified proposals (LLM backends) and the engine's final check."""
    unverified = meta_quotes.get("unverified_dropped", meta_quotes.get("unverified", 0))
    return int(unverified) + int(meta_quotes.get("dropped_by_final_check", 0))


def quote_validity(comparison: Comparison, documents: dict[str, Document]) -> QuoteValidity:
    """Counts over the presented quotes, each re-checked against the stored text, plus the dropped ones."""
    quotes = comparison.presented_quotes()
    mismatches = 0
    verified = repaired = 0
    for quote in quotes:
        doc = documents.get(quote.doc_id)
        exact = doc is not None and doc.text[quote.char_start : quote.char_end] == quote.text and quote.text
        if not exact or quote.status == "unverified":
            mismatches += 1
        elif quote.status == "verified":
            verified += 1
        else:
            repaired += 1
    return QuoteValidity(len(quotes), verified, repaired, dropped_quotes(comparison.meta.quotes), mismatches)


# -- citation support ------------------------------------------------------------------------------------


@dataclass
class CitationSupport:
    pairs: int
    supported: int
    mean_cosine: float | None

    @property
    def rate(self) -> float | None:
        return self.supported / self.pairs if self.pairs else None


def citation_support(
    pairs: Sequence[tuple[str, str]], embed: Embed, threshold: float = CITATION_SUPPORT_THRESHOLD
) -> CitationSupport:
    """Share of (claim, quote) pairs whose embedding cosine reaches the threshold."""
    if not pairs:
        return CitationSupport(0, 0, None)
    texts = sorted({t for pair in pairs for t in pair})
    vectors = dict(zip(texts, embed(texts), strict=True))
    cosines = [float(vectors[claim] @ vectors[quote]) for claim, quote in pairs]
    supported = sum(1 for c in cosines if c >= threshold)
    return CitationSupport(len(pairs), supported, round(sum(cosines) / len(cosines), 4))


# -- sources and stances ---------------------------------------------------------------------------------


def source_coverage(expected: Sequence[str], shown: Iterable[str]) -> float | None:
    wanted = set(expected)
    return len(wanted & set(shown)) / len(wanted) if wanted else None


def accuracy(pairs: Sequence[tuple[str, str]]) -> float | None:
    """pairs of (expected, predicted)."""
    return sum(1 for e, p in pairs if e == p) / len(pairs) if pairs else None


def macro_f1(pairs: Sequence[tuple[str, str]], labels: Iterable[str] | None = None) -> float | None:
    """Mean F1 over `labels` (default: every label expected or predicted); a label never expected nor
    predicted is left out, one predicted but never expected scores 0."""
    if not pairs:
        return None
    classes = sorted(set(labels) if labels is not None else {x for pair in pairs for x in pair})
    scores = []
    for label in classes:
        tp = sum(1 for e, p in pairs if e == label and p == label)
        fp = sum(1 for e, p in pairs if e != label and p == label)
        fn = sum(1 for e, p in pairs if e == label and p != label)
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else None


def majority_baseline(expected: Sequence[str]) -> tuple[str | None, float | None, float | None]:
    """(label, accuracy, macro-F1) of always answering the most frequent expected label (ties: a-z first)."""
    if not expected:
        return None, None, None
    counts = Counter(expected)
    label = min(counts, key=lambda k: (-counts[k], k))
    pairs = [(e, label) for e in expected]
    return label, accuracy(pairs), macro_f1(pairs)


# -- shifts ----------------------------------------------------------------------------------------------


class ExpectedShiftLike(Protocol):
    source: str
    before_date: str | None
    after_date: str | None
    before_text: str | None
    after_text: str | None
    tolerance_days: int


@dataclass
class ShiftPointView:
    date: str | None
    text: str


@dataclass
class ShiftView:
    source: str
    before: ShiftPointView
    after: ShiftPointView


def shift_views(comparison: Comparison) -> list[ShiftView]:
    """A point's date is its own, else the date of the document its quote is from."""
    return [
        ShiftView(
            s.source,
            ShiftPointView(s.before.date or s.before.quote.date, s.before.quote.text),
            ShiftPointView(s.after.date or s.after.quote.date, s.after.quote.text),
        )
        for s in comparison.shifts
    ]


def _date_ok(expected: str | None, found: str | None, tolerance_days: int) -> bool:
    if expected is None:
        return True
    if found is None:
        return False
    try:
        return abs((date.fromisoformat(found) - date.fromisoformat(expected)).days) <= tolerance_days
    except ValueError:
        return False


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def text_matches(hint: str | None, found: str, minimum: float = 0.6) -> bool:
    """The quote contains the hint, the hint contains the quote, or the quote has most of the hint's words."""
    if not hint:
        return True
    hint_tokens, found_tokens = tokens(hint), tokens(found)
    if not hint_tokens or not found_tokens:
        return False
    joined_hint, joined_found = " ".join(hint_tokens), " ".join(found_tokens)
    if joined_hint in joined_found or joined_found in joined_hint:
        return True
    shared = sum((Counter(hint_tokens) & Counter(found_tokens)).values())
    return shared / len(hint_tokens) >= minimum


def _point_ok(date_: str | None, text: str | None, point: ShiftPointView, tolerance: int) -> bool:
    return _date_ok(date_, point.date, tolerance) and text_matches(text, point.text)


def match_shift(expected: ExpectedShiftLike, found: ShiftView) -> str | None:
    """'forward' when the found shift matches in the expected order, 'reversed' when only swapped, else None."""
    if found.source != expected.source:
        return None
    tol = expected.tolerance_days

    def matches(first: ShiftPointView, second: ShiftPointView) -> bool:
        return _point_ok(expected.before_date, expected.before_text, first, tol) and _point_ok(
            expected.after_date, expected.after_text, second, tol
        )

    if matches(found.before, found.after):
        return "forward"
    return "reversed" if matches(found.after, found.before) else None


@dataclass
class ShiftScores:
    expected: int
    found: int
    matched: int
    in_order: int

    @property
    def recall(self) -> float | None:
        return self.matched / self.expected if self.expected else None

    @property
    def ordering(self) -> float | None:
        return self.in_order / self.matched if self.matched else None


def shift_scores(expected: Sequence[ExpectedShiftLike], found: Sequence[ShiftView]) -> ShiftScores:
    """Each expected shift is matched by its best found shift (in order beats reversed)."""
    matched = in_order = 0
    for wanted in expected:
        outcomes = {match_shift(wanted, shift) for shift in found}
        if "forward" in outcomes:
            matched, in_order = matched + 1, in_order + 1
        elif "reversed" in outcomes:
            matched += 1
    return ShiftScores(len(expected), len(found), matched, in_order)


# -- span overlap ----------------------------------------------------------------------------------------


def overlaps(a: Span, b: Span) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


@dataclass
class SpanScores:
    predicted: int
    expected: int
    precision: float | None
    recall: float | None
    base_precision: float | None
    base_recall: float | None


def span_scores(predicted: Sequence[Span], expected: Sequence[Span], sentences: Sequence[Span]) -> SpanScores:
    """Precision over the distinct predicted spans in documents that have expected spans; recall over the
    expected spans. The base rates are those of len(predicted) sentences drawn at random, without
    replacement, from `sentences` (the sentences of those documents): computed exactly, not sampled."""
    judged_docs = {doc for doc, _, _ in expected}
    judged = sorted({p for p in predicted if p[0] in judged_docs})
    precision = (
        sum(1 for p in judged if any(overlaps(p, e) for e in expected)) / len(judged) if judged else None
    )
    recall = (
        sum(1 for e in expected if any(overlaps(p, e) for p in judged)) / len(expected) if expected else None
    )
    base_precision, base_recall = random_sentence_base_rate(expected, sentences, len(judged))
    return SpanScores(len(judged), len(expected), precision, recall, base_precision, base_recall)


def random_sentence_base_rate(
    expected: Sequence[Span], sentences: Sequence[Span], draws: int
) -> tuple[float | None, float | None]:
    """(precision, recall) expected from `draws` random sentences: precision is the share of sentences that
    overlap an expected span; recall averages, over the expected spans, 1 - C(n - m, k) / C(n, k), with m the
    sentences overlapping that span."""
    n = len(sentences)
    if not n or not expected:
        return None, None
    hits = sum(1 for s in sentences if any(overlaps(s, e) for e in expected))
    precision = hits / n
    k = min(max(draws, 1), n)
    per_span = []
    for span in expected:
        m = sum(1 for s in sentences if overlaps(s, span))
        per_span.append(1.0 - math.comb(n - m, k) / math.comb(n, k))
    return precision, sum(per_span) / len(per_span)


# -- summaries -------------------------------------------------------------------------------------------


@dataclass
class RougeScore:
    precision: float
    recall: float
    f1: float


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, O(len(a) * len(b)) time, O(len(b)) memory."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> RougeScore:
    """ROUGE-L (Lin 2004, summary level as one sequence, beta = 1) on lower-cased word tokens."""
    cand, ref = tokens(candidate), tokens(reference)
    lcs = lcs_length(cand, ref)
    if not lcs:
        return RougeScore(0.0, 0.0, 0.0)
    precision, recall = lcs / len(cand), lcs / len(ref)
    return RougeScore(precision, recall, 2 * precision * recall / (precision + recall))


def cosine(embed: Embed, first: str, second: str) -> float | None:
    if not first.strip() or not second.strip():
        return None
    vectors = embed([first, second])
    return float(vectors[0] @ vectors[1])


def lead_sentences(text: str, count: int = 3) -> str:
    """The first `count` sentences of a text: the classic lead baseline for summaries."""
    from compare.chunking import sentence_spans

    return " ".join(text[start:end] for start, end in sentence_spans(text)[:count])


# -- distributions ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolation percentile (numpy's default), q in 0..100."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
