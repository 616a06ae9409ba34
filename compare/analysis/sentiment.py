"""Local stance toward a target: VADER tone of the sentences about the target, weighted by their relevance.

This is a lexicon method, measured against BASIL's `author_feeling_main_event` labels by
`scripts/eval_basil_stance.py` (figures in the README and `compare/resources/basil_stance.metrics.json`). It
reads tone, not argument: an article can report criticism of an event in negative words while the author
approves of the criticism. A low confidence is reported as such (`Stance.low_confidence`), not as a firm label.

The thresholds live in one `StanceParams`; `DEFAULT_PARAMS` holds the values chosen on BASIL's development
events (never on its held-out events); the evaluation script can try others without editing this module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from compare.types import Stance, StanceLabel

METHOD = "vader-relevance-weighted@1"
#: |compound| under this is a neutral sentence (VADER's own convention); used by `tone_label`.
SENTENCE_NEUTRAL = 0.05
#: A sentence with a quotation mark speaks partly in someone else's voice.
_QUOTATION = re.compile('["\u201c\u201d]')


@dataclass(frozen=True)
class StanceParams:
    """How sentence tones become one stance. Field comments say what each threshold does."""

    #: Weighted mean tone at or beyond which a source reads positive or negative.
    leaning: float = 0.12
    #: Both polarities at least this share of the weight, with |mean| under 2 * leaning, is `mixed`.
    mixed_share: float = 0.3
    #: Only sentences with weight >= this share of the best weight count (0 keeps every weighted sentence).
    relative_floor: float = 0.0
    #: Weight multiplier of sentences containing a quotation (1 = like the author's own words).
    quote_weight: float = 1.0
    #: Sentences needed for full support; fewer scale the confidence down.
    full_support: int = 5
    #: Confidence below this is flagged low_confidence.
    low_confidence: float = 0.5


#: What `scripts/eval_basil_stance.py` chose on BASIL's development events: the original thresholds, because
#: re-tuning them on so few events did worse than leaving them alone in a cross-validation inside those events.
DEFAULT_PARAMS = StanceParams()


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=20000)
def tone(sentence: str) -> float:
    """VADER compound score in [-1, 1]."""
    return float(_analyzer().polarity_scores(sentence)["compound"])


def tone_label(score: float) -> StanceLabel:
    """The label of one sentence's tone: beyond +-SENTENCE_NEUTRAL is positive or negative."""
    if score >= SENTENCE_NEUTRAL:
        return "positive"
    if score <= -SENTENCE_NEUTRAL:
        return "negative"
    return "neutral"


def stance_toward(
    target: str,
    sentences: Sequence[str],
    weights: Sequence[float],
    params: StanceParams = DEFAULT_PARAMS,
) -> Stance:
    """Aggregate sentence tones into one stance; weights are relevances to the target (negatives count as 0)."""
    pairs = _weighted_tones(sentences, weights, params)
    total = sum(w for _, w in pairs)
    if not pairs or total <= 0:
        return Stance(
            label="not_addressed", target=target, confidence=0.5, low_confidence=True, method=METHOD
        )
    mean = sum(t * w for t, w in pairs) / total
    positive = sum(w for t, w in pairs if t >= SENTENCE_NEUTRAL) / total
    negative = sum(w for t, w in pairs if t <= -SENTENCE_NEUTRAL) / total
    label, confidence = _decide(mean, positive, negative, len(pairs), params)
    return Stance(
        label=label,
        target=target,
        confidence=round(confidence, 3),
        low_confidence=confidence < params.low_confidence,
        method=METHOD,
    )


def _weighted_tones(
    sentences: Sequence[str], weights: Sequence[float], params: StanceParams
) -> list[tuple[float, float]]:
    """(tone, weight) of the sentences that count: positive weight at or above the relative floor."""
    kept = [(s, w) for s, w in zip(sentences, weights, strict=True) if w > 0]
    if not kept:
        return []
    floor = params.relative_floor * max(w for _, w in kept)
    scaled = [(s, w * (params.quote_weight if _QUOTATION.search(s) else 1.0)) for s, w in kept if w >= floor]
    return [(tone(s), w) for s, w in scaled if w > 0]


def _decide(
    mean: float, positive: float, negative: float, count: int, params: StanceParams
) -> tuple[StanceLabel, float]:
    support = min(1.0, count / params.full_support)  # few sentences: less sure of anything
    leaning = params.leaning
    if positive >= params.mixed_share and negative >= params.mixed_share and abs(mean) < leaning * 2:
        return "mixed", (0.4 + min(positive, negative)) * support
    if mean >= leaning:
        return "positive", min(1.0, 0.45 + abs(mean)) * (0.5 + 0.5 * positive) * support
    if mean <= -leaning:
        return "negative", min(1.0, 0.45 + abs(mean)) * (0.5 + 0.5 * negative) * support
    calm = 1.0 - max(positive, negative)
    return "neutral", (0.4 + 0.5 * calm) * support
