"""Document stance toward a target from sentence tones, and the shipped thresholds' provenance."""

from __future__ import annotations

import json

import pytest

from compare.analysis.sentiment import (
    DEFAULT_PARAMS,
    SENTENCE_NEUTRAL,
    StanceParams,
    stance_toward,
    tone,
    tone_label,
)
from tests.conftest import REPO

TARGET = "the new bridge"
POSITIVE = [
    "The new bridge is a wonderful success and residents love it.",
    "Commuters praised the excellent, beautiful design.",
    "Officials were delighted and proud of the great result.",
    "Local businesses are thriving and happy with the improvement.",
    "Everyone agrees it is a brilliant, safe and welcome addition.",
]
NEGATIVE = [
    "The new bridge is a terrible failure and residents hate it.",
    "Commuters condemned the awful, ugly design.",
    "Officials were furious and ashamed of the disastrous result.",
    "Local businesses are suffering and angry about the damage.",
    "Critics say it is a horrible, dangerous and unwelcome mess.",
]
NEUTRAL = [
    "The new bridge opened on Tuesday.",
    "It spans the river between the two districts.",
    "The council published the timetable for buses.",
    "Construction began in the spring of last year.",
    "The structure is 400 metres long.",
]


def test_sentence_tones_have_the_expected_signs() -> None:
    assert all(tone(s) >= 0.5 for s in POSITIVE)
    assert all(tone(s) <= -0.5 for s in NEGATIVE)
    assert all(abs(tone(s)) < SENTENCE_NEUTRAL for s in NEUTRAL)


def test_clearly_positive_text_is_positive_and_confident() -> None:
    stance = stance_toward(TARGET, POSITIVE, [0.8] * 5)
    assert stance.label == "positive"
    assert stance.target == TARGET
    assert not stance.low_confidence
    assert stance.confidence >= DEFAULT_PARAMS.low_confidence


def test_clearly_negative_text_is_negative_and_confident() -> None:
    stance = stance_toward(TARGET, NEGATIVE, [0.8] * 5)
    assert stance.label == "negative"
    assert not stance.low_confidence


def test_calm_text_is_neutral() -> None:
    assert stance_toward(TARGET, NEUTRAL, [0.8] * 5).label == "neutral"


def test_both_tones_in_equal_measure_is_mixed() -> None:
    stance = stance_toward(TARGET, POSITIVE[:3] + NEGATIVE[:3], [0.7] * 6)
    assert stance.label == "mixed"


def test_relevance_weights_decide_between_tones() -> None:
    sentences = POSITIVE[:3] + NEGATIVE[:3]
    assert stance_toward(TARGET, sentences, [0.9] * 3 + [0.05] * 3).label == "positive"
    assert stance_toward(TARGET, sentences, [0.05] * 3 + [0.9] * 3).label == "negative"


def test_no_sentences_or_no_positive_weight_is_not_addressed() -> None:
    for sentences, weights in (([], []), (POSITIVE[:2], [0.0, -0.3])):
        stance = stance_toward(TARGET, sentences, weights)
        assert stance.label == "not_addressed"
        assert stance.low_confidence


def test_a_single_sentence_is_flagged_low_confidence() -> None:
    stance = stance_toward(TARGET, POSITIVE[:1], [0.9])
    assert stance.label == "positive"
    assert stance.low_confidence
    assert stance.confidence < stance_toward(TARGET, POSITIVE, [0.9] * 5).confidence


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError):
        stance_toward(TARGET, POSITIVE, [0.5])


@pytest.mark.parametrize(
    ("score", "label"),
    [
        (0.9, "positive"),
        (SENTENCE_NEUTRAL, "positive"),
        (SENTENCE_NEUTRAL - 0.001, "neutral"),
        (0.0, "neutral"),
        (-SENTENCE_NEUTRAL + 0.001, "neutral"),
        (-SENTENCE_NEUTRAL, "negative"),
        (-0.9, "negative"),
    ],
)
def test_tone_label_thresholds(score: float, label: str) -> None:
    assert tone_label(score) == label


def test_relative_floor_keeps_only_the_most_relevant_sentences() -> None:
    sentences = POSITIVE[:1] + NEGATIVE
    weights = [0.9] + [0.5] * 5
    assert stance_toward(TARGET, sentences, weights).label == "negative"
    focused = StanceParams(relative_floor=0.7)
    assert stance_toward(TARGET, sentences, weights, focused).label == "positive"


def test_quote_weight_discounts_quoted_voices() -> None:
    sentences = ['"It is a terrible, awful disaster," a critic said.', *POSITIVE[:2]]
    weights = [0.9, 0.15, 0.15]
    assert stance_toward(TARGET, sentences, weights).label == "negative"
    assert stance_toward(TARGET, sentences, weights, StanceParams(quote_weight=0.0)).label == "positive"


def test_leaning_threshold_moves_the_neutral_band() -> None:
    sentences = [POSITIVE[0], *NEUTRAL]
    weights = [0.8] * 6
    assert stance_toward(TARGET, sentences, weights, StanceParams(leaning=0.1)).label == "positive"
    assert stance_toward(TARGET, sentences, weights, StanceParams(leaning=0.3)).label == "neutral"


def test_shipped_thresholds_are_the_ones_the_basil_evaluation_chose() -> None:
    metrics = json.loads((REPO / "compare" / "resources" / "basil_stance.metrics.json").read_text())
    assert metrics["chosen_params"] == DEFAULT_PARAMS.__dict__
    assert metrics["shipped_params_match_chosen"] is True
    held_out = metrics["held_out"]["shipped"]
    assert held_out["n"] == sum(sum(row) for row in held_out["confusion_matrix"]["counts"])
