"""Local stance toward a target: VADER tone of the sentences about the target, weighted by their relevance.

This is a lexicon method, measured honestly against BASIL's `author_feeling_main_event` labels by
`scripts/eval_basil_stance.py` (figures in the README). It reads tone, not argument: a low confidence is
reported as such (`Stance.low_confidence`) rather than presented as a firm label.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from compare.types import Stance, StanceLabel

METHOD = "vader-relevance-weighted@1"
#: |compound| under this is a neutral sentence (VADER's own convention).
SENTENCE_NEUTRAL = 0.05
#: Weighted mean tone beyond which a source reads positive or negative.
LEANING = 0.12
#: Both polarities at least this share of the weight, with a mean inside the band, is `mixed`.
MIXED_SHARE = 0.3
#: Confidence below this is flagged low_confidence.
LOW_CONFIDENCE = 0.5


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=20000)
def tone(sentence: str) -> float:
    """VADER compound score in [-1, 1]."""
    return float(_analyzer().polarity_scores(sentence)["compound"])


def tone_label(score: float) -> StanceLabel:
    if score >= SENTENCE_NEUTRAL:
        return "positive"
    if score <= -SENTENCE_NEUTRAL:
        return "negative"
    return "neutral"


def stance_toward(target: str, sentences: Sequence[str], weights: Sequence[float]) -> Stance:
    """Aggregate sentence tones into one stance; weights are relevances to the target (non-negative)."""
    pairs = [(tone(s), max(0.0, w)) for s, w in zip(sentences, weights, strict=True) if w > 0]
    total = sum(w for _, w in pairs)
    if not pairs or total <= 0:
        return Stance(
            label="not_addressed", target=target, confidence=0.5, low_confidence=True, method=METHOD
        )
    mean = sum(t * w for t, w in pairs) / total
    positive = sum(w for t, w in pairs if t >= SENTENCE_NEUTRAL) / total
    negative = sum(w for t, w in pairs if t <= -SENTENCE_NEUTRAL) / total
    label, confidence = _decide(mean, positive, negative, len(pairs))
    return Stance(
        label=label,
        target=target,
        confidence=round(confidence, 3),
        low_confidence=confidence < LOW_CONFIDENCE,
        method=METHOD,
    )


def _decide(mean: float, positive: float, negative: float, count: int) -> tuple[StanceLabel, float]:
    support = min(1.0, count / 5)  # fewer than five sentences: less sure of anything
    if positive >= MIXED_SHARE and negative >= MIXED_SHARE and abs(mean) < LEANING * 2:
        return "mixed", (0.4 + min(positive, negative)) * support
    if mean >= LEANING:
        return "positive", min(1.0, 0.45 + abs(mean)) * (0.5 + 0.5 * positive) * support + 0.0
    if mean <= -LEANING:
        return "negative", min(1.0, 0.45 + abs(mean)) * (0.5 + 0.5 * negative) * support
    calm = 1.0 - max(positive, negative)
    return "neutral", (0.4 + 0.5 * calm) * support
