"""Each eval metric on hand-made cases whose answers are known."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from compare.metrics import (
    ShiftPointView,
    ShiftView,
    citation_support,
    claim_quote_pairs,
    lcs_length,
    macro_f1,
    majority_baseline,
    percentile,
    quote_validity,
    random_sentence_base_rate,
    rouge_l,
    shift_scores,
    source_coverage,
    span_scores,
    text_matches,
)
from compare.types import Claim, Comparison, ComparisonMeta, Document, Quote, SourceView, Stance

TEXT = (
    "The administration shifted from seeking a decisive victory to strengthening Ukraine's negotiating "
    "position. Officials denied any change. Aid faces threats in Congress."
)
DOC = Document(id="d1", source="s", date="2024-01-02", text=TEXT)


def quote(start: int, end: int, status: str = "verified", text: str | None = None) -> Quote:
    return Quote(doc_id="d1", source="s", char_start=start, char_end=end,
                 text=TEXT[start:end] if text is None else text, status=status)  # type: ignore[arg-type]  # fmt: skip


def comparison(quotes: list[Quote], dropped: int = 0, claim: str = "a claim") -> Comparison:
    view = SourceView(source="s", stance=Stance(label="neutral", target="t", confidence=0.5),
                      claims=[Claim(id="c1", text=claim, quotes=quotes)])  # fmt: skip
    meta = ComparisonMeta(
        backend="x", settings_hash="h", package_version="0", quotes={"unverified_dropped": dropped}
    )
    return Comparison(question="q", target="t", sources=[view], meta=meta)


# -- quote validity --------------------------------------------------------------------------------------


def test_quote_validity_counts_fabricated_quotes_as_invalid() -> None:
    real = [quote(0, 18), quote(104, 132)]
    clean = quote_validity(comparison(real), {"d1": DOC})
    assert (clean.presented, clean.verified, clean.dropped, clean.validity) == (2, 2, 0, 1.0)
    # the backend dropped one fabricated quote: never shown, yet validity falls to 2 / 3
    fabricated = quote_validity(comparison(real, dropped=1), {"d1": DOC})
    assert fabricated.validity == pytest.approx(2 / 3)
    assert fabricated.dropped == 1


def test_quote_validity_rechecks_presented_quotes_against_the_store() -> None:
    forged = quote(0, 18, text="The president said")  # offsets right, text not the stored one
    repaired = quote(104, 132, status="repaired")
    result = quote_validity(comparison([forged, repaired]), {"d1": DOC})
    assert result.slice_mismatches == 1
    assert result.repaired == 1
    assert result.verified == 0 and result.validity == 0.0


def test_quote_validity_is_not_measured_without_quotes() -> None:
    assert quote_validity(comparison([]), {"d1": DOC}).validity is None


# -- citation support ------------------------------------------------------------------------------------


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    """Bag-of-words vectors over a tiny vocabulary: cosine is word overlap."""
    vocab = ["victory", "negotiating", "aid", "congress", "weather", "rain"]
    rows = np.array([[t.lower().count(w) for w in vocab] for t in texts], dtype=np.float32) + 1e-6
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_citation_support_separates_related_and_unrelated_quotes() -> None:
    pairs = [("victory and negotiating", TEXT[:104]), ("rain and weather", "Aid faces threats in Congress.")]
    result = citation_support(pairs, fake_embed, threshold=0.45)
    assert (result.pairs, result.supported, result.rate) == (2, 1, 0.5)
    assert citation_support([], fake_embed).rate is None


def test_claim_quote_pairs_take_claims_agreements_and_differences() -> None:
    pairs = claim_quote_pairs(comparison([quote(0, 18)], claim="victory"))
    assert [(claim, q.char_start) for claim, q in pairs] == [("victory", 0)]


# -- coverage and stance ---------------------------------------------------------------------------------


def test_source_coverage() -> None:
    assert source_coverage(["a", "b"], ["a", "c"]) == 0.5
    assert source_coverage([], ["a"]) is None


def test_a_wrong_stance_lowers_macro_f1() -> None:
    right = [("neutral", "neutral"), ("negative", "negative"), ("positive", "positive")]
    wrong = [("neutral", "neutral"), ("negative", "neutral"), ("positive", "positive")]
    assert macro_f1(right) == 1.0
    # negative: F1 0; neutral: P 1/2 R 1 -> 2/3; positive 1 -> mean 5/9
    assert macro_f1(wrong) == pytest.approx((0 + 2 / 3 + 1) / 3)


def test_majority_baseline() -> None:
    label, accuracy, f1 = majority_baseline(["neutral", "neutral", "negative"])
    assert label == "neutral"
    assert accuracy == pytest.approx(2 / 3)
    assert f1 == pytest.approx((0.8 + 0) / 2)  # neutral P 2/3 R 1 -> 0.8; negative 0
    assert majority_baseline([]) == (None, None, None)


# -- shifts ----------------------------------------------------------------------------------------------


@dataclass
class Wanted:
    source: str
    before_date: str | None = None
    after_date: str | None = None
    before_text: str | None = None
    after_text: str | None = None
    tolerance_days: int = 0


def view(before: tuple[str | None, str], after: tuple[str | None, str], source: str = "s") -> ShiftView:
    return ShiftView(source, ShiftPointView(*before), ShiftPointView(*after))


def test_shift_recall_and_ordering() -> None:
    wanted = [Wanted("s", "2022-02-26", "2022-08-24", tolerance_days=2), Wanted("t", after_date="2024-11-26")]
    forward = view(("2022-02-24", "emergency aid"), ("2022-08-25", "long-term aid"))
    reversed_ = view(("2022-08-24", "long-term aid"), ("2022-02-26", "emergency aid"))
    assert shift_scores(wanted, [forward]).recall == 0.5
    assert shift_scores(wanted, [forward]).ordering == 1.0
    backwards = shift_scores(wanted, [reversed_])
    assert (backwards.matched, backwards.in_order, backwards.ordering) == (1, 0, 0.0)
    assert (
        shift_scores(wanted, [view(("2022-01-01", "x"), ("2022-08-24", "y"))]).matched == 0
    )  # outside tolerance
    assert shift_scores([], [forward]).recall is None


def test_shift_text_hints() -> None:
    wanted = [Wanted("s", before_text="seeking a decisive victory", after_text="negotiating position")]
    found = view((None, "a shift from seeking a decisive victory over Russia"), ("2024-01-02", TEXT[78:132]))
    assert shift_scores(wanted, [found]).matched == 1
    assert text_matches("decisive victory over Russia", "victory")  # the hint contains the quote
    assert not text_matches("longer-range missiles", "Officials denied any change.")


# -- span overlap ----------------------------------------------------------------------------------------


def test_span_precision_recall_and_random_base_rate() -> None:
    sentences = [("d1", 0, 10), ("d1", 10, 20), ("d1", 20, 30), ("d1", 30, 40)]
    expected = [("d1", 2, 5), ("d1", 22, 25)]
    predicted = [("d1", 0, 10), ("d1", 30, 40), ("d2", 0, 5)]  # d2 has no expected spans: not judged
    scores = span_scores(predicted, expected, sentences)
    assert (scores.predicted, scores.precision, scores.recall) == (2, 0.5, 0.5)
    # 2 of 4 sentences overlap a span; drawing 2 sentences, each span is hit with 1 - C(3,2)/C(4,2) = 1/2
    assert scores.base_precision == 0.5
    assert scores.base_recall == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))
    assert random_sentence_base_rate([], sentences, 2) == (None, None)


# -- ROUGE-L and percentiles -----------------------------------------------------------------------------


def test_rouge_l_on_known_strings() -> None:
    assert lcs_length("a b c d".split(), "a c d e".split()) == 3
    score = rouge_l("the cat sat on the mat", "the cat lay on the mat")
    assert score.precision == score.recall == pytest.approx(5 / 6)
    assert score.f1 == pytest.approx(5 / 6)
    # Lin (2004): reference "police killed the gunman", candidate "police kill the gunman": LCS 3
    lin = rouge_l("police kill the gunman", "police killed the gunman")
    assert lin.f1 == pytest.approx(0.75)
    assert rouge_l("", "anything").f1 == 0.0
    assert rouge_l("Same Words!", "same words").f1 == 1.0


def test_percentile_matches_numpy() -> None:
    values = [0.3, 1.2, 0.1, 5.0, 2.2]
    for q in (50, 95):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None
