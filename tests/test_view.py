"""compare.view: one view of a comparison, its order and its words, for judged and older comparisons."""

from __future__ import annotations

import pytest

from compare.types import Comparison, Omission, SourcePosition
from compare.view import build_view, human_date, source_colour, source_colours
from compare.view.judgements import listed_cell, omission_cell
from compare.view.words import readable_key
from tests.comparisons import BLOG, DOD, TARGET, WAPO, documents, judged_comparison
from tests.test_render import make_comparison


def test_columns_show_outlet_names_positions_in_words_and_tone_as_tone() -> None:
    view = build_view(judged_comparison(), documents())
    assert [c.name for c in view.columns] == ["U.S. Department of Defense", "The Washington Post", "Blog X"]
    assert [c.key for c in view.columns] == [DOD, WAPO, BLOG]
    positions = [c.position for c in view.columns]
    assert [p.text if p else None for p in positions] == [
        "backs it · 0.86",
        "disputes it · 0.74",
        "not enough evidence (0.41)",
    ]
    assert positions[0] and positions[0].quote and positions[0].quote.date_text == "5 Jan 2024"
    assert positions[2] and positions[2].quote is None and positions[2].detail == ""  # no guess, no hint
    assert [c.tone_text for c in view.columns] == [
        "Tone: positive 0.62",
        "Tone: negative 0.55",
        "Tone: neutral 0.30 (low confidence)",
    ]
    assert (
        view.columns[0].dates_text == "5 Jan 2024 – 5 Mar 2024"
        and view.columns[0].documents_text == "2 documents"
    )
    assert view.columns[1].summary == "The editors oppose the missiles." and view.columns[0].summary is None
    assert view.target_line == f"Each source's position toward: “{TARGET}”"


def test_without_documents_a_key_is_made_readable_never_shown_raw() -> None:
    names = [c.name for c in build_view(judged_comparison()).columns]
    assert names == ["U.S. Department of Defense", "Wapo", "Blog X"]
    assert readable_key("department_of_defense") == "Department of Defense"
    assert readable_key("politico-via-ua-press") == "Politico via Ua Press"


def test_sections_in_one_order_and_old_comparisons_leave_out_what_they_lack() -> None:
    judged = build_view(judged_comparison(), documents())
    assert [s.key for s in judged.sections] == [
        "answer", "sources", "claims", "time", "agreements", "differences", "omissions"
    ]  # fmt: skip
    assert all(not s.empty for s in judged.sections)
    old = build_view(make_comparison())
    assert [s.key for s in old.sections] == ["sources", "time", "agreements", "differences", "omissions"]
    assert old.answer == [] and old.claims == [] and all(c.position is None for c in old.columns)
    assert old.target_line == "Tone toward: “strikes” (tone, not a position)"
    empty = build_view(make_comparison().model_copy(update={"agreements": [], "sources": []}))
    assert empty.section("agreements") and empty.section("agreements").empty == (  # type: ignore[union-attr]
        "No claim backed by two or more sources."
    )
    assert empty.section("sources").empty  # type: ignore[union-attr]


def test_answer_sentences_carry_their_quotes() -> None:
    view = build_view(judged_comparison(), documents())
    assert [len(line.quotes) for line in view.answer] == [2, 2]
    first = view.answer[0].quotes[0]
    assert first.status_text == "✓ verified" and first.document and first.document.title == "Title of dod-jan"
    assert first.context and first.context.span == first.text and "Officials met" not in first.context.before


def test_claims_matrix_puts_the_question_first_with_words_per_cell() -> None:
    view = build_view(judged_comparison(), documents())
    target, aid = view.claims
    assert (target.is_target, target.heading, target.text) == (True, "The question", TARGET)
    assert [c.text for c in target.cells] == [
        "backs it · 0.86",
        "disputes it · 0.74",
        "not enough evidence (0.41)",
    ]
    assert [c.state for c in aid.cells] == ["backs", "backs", "not_addressed"]
    assert (
        aid.cells[2].text == "does not address it · 0.88"
        and aid.cells[2].detail == "checked 3 stored documents"
    )
    assert aid.heading == "Claim" and aid.origin is not None


def test_differences_opposed_first_then_weaker_contrast() -> None:
    comparison = judged_comparison()
    view = build_view(comparison, documents())
    assert [(d.claim, d.strength_text) for d in view.differences] == [
        (TARGET, "opposed"),
        ("Aid to Ukraine will continue", "weaker contrast"),
    ]
    assert [(s.name, s.words, s.state) for s in view.differences[0].sides] == [
        ("U.S. Department of Defense", "backs it", "backs"),
        ("The Washington Post", "disputes it", "disputes"),
    ]
    # "strong" needs one source backing and another disputing: backs vs reports is a weaker contrast
    comparison.differences[0].strength = "strong"
    assert [d.strong for d in build_view(comparison).differences] == [True, False]


def test_omissions_have_one_state_model() -> None:
    view = build_view(judged_comparison(), documents())
    (row,) = view.omissions
    assert [c.text for c in row.cells] == [
        "addresses it",
        "addresses it",
        "does not address it (checked 3 stored documents)",
    ]
    assert row.confidence_text == "confidence 0.70"
    unsure = SourcePosition(source=BLOG, label="not_addressed", confidence=0.3, sure=False)
    assert omission_cell(unsure).text == omission_cell(None).text == "not enough evidence"
    old = Omission(claim="x", reported_by=["a"], not_reported_by=["b"])
    assert [listed_cell(old, s).text for s in ("a", "b", "c")] == [
        "addresses it",
        "does not address it (in the retrieved passages)",
        "not enough evidence",
    ]
    assert [c.state for c in build_view(make_comparison()).omissions[0].cells] == [
        "addresses",
        "not_addressed",
    ]


def test_shifts_ranked_by_confidence_in_a_readers_words() -> None:
    view = build_view(judged_comparison(), documents())
    assert [(s.kind, s.confidence) for s in view.shifts] == [
        ("reported", 0.9),
        ("position", 0.81),
        ("tone", 0.3),
    ]
    reported, position, tone = view.shifts
    assert position.sentence == f"backed “{TARGET}” on 5 Jan 2024; disputed it on 5 Mar 2024"
    assert position.kind_text == "change of position" and position.before.words == "backs it"
    assert reported.sentence.startswith("reports a change: from “Sending longer-range missiles")
    assert reported.sentence.endswith(
        "to “Biden reversed his policy on missiles, a shift from refusal to approval.”"
    )
    assert (
        tone.sentence
        == "wrote about “missiles” in a positive tone on 5 Jan 2024; in a negative tone on 5 Mar 2024"
    )
    assert not any("->" in s.sentence or "positive ->" in s.sentence for s in view.shifts)


def test_timeline_rows_are_words_positions_first() -> None:
    view = build_view(judged_comparison(), documents())
    timeline = view.timeline
    assert timeline.rows[:4] == ["backs it", "reports, no side", "disputes it", "not enough evidence"]
    assert timeline.rows[4:] == ["tone: positive", "tone: negative"]  # the old tone shift's ends
    bands = {b.source: b for b in timeline.bands}
    assert bands[BLOG].row == "not enough evidence" and bands[BLOG].dashed and not bands[DOD].dashed
    assert bands[DOD].row == "backs it" and "position: backs it · 0.86" in bands[DOD].tip
    assert timeline.undated == 0 and len(timeline.dots) == 6
    assert "position toward the question" in timeline.notes[0]
    old = build_view(make_comparison()).timeline
    assert [b.row for b in old.bands] == ["tone: mixed", "tone: positive"] and old.undated == 1
    assert "tone, not a position" in old.notes[0]


def test_a_question_without_a_proposition_says_so_and_shows_claims() -> None:
    comparison = judged_comparison().model_copy(update={"target_is_proposition": False})
    view = build_view(comparison, documents())
    assert "states no proposition" in view.target_line and "claims the sources make" in view.target_line
    assert all(c.position is None for c in view.columns) and view.claims
    assert all(b.row.startswith("tone: ") for b in view.timeline.bands)  # no position: bands show tone


@pytest.mark.parametrize(
    ("iso", "text"),
    [("2024-01-05", "5 Jan 2024"), ("2024-03", "Mar 2024"), (None, "undated"), ("soon", "soon"),
     ("2024-11-26T10:00:00Z", "26 Nov 2024")],
)  # fmt: skip
def test_dates_are_for_people(iso: str | None, text: str) -> None:
    assert human_date(iso) == text


def test_source_colours_come_from_the_key_not_the_position() -> None:
    keys = ["nyt", "fox", "wapo"]
    assert len({source_colour(k) for k in [*keys, "reuters"]}) == 4  # no collision among these
    before = source_colours(keys)
    after = source_colours(["reuters", *keys])  # a new source, first in the list
    assert all(before[k] == after[k] == source_colour(k) for k in keys)
    assert source_colour("fox") == source_colour("hpo")  # a collision within one comparison ...
    assert len(set(source_colours(["fox", "hpo", "nyt"]).values())) == 3  # ... is told apart
    assert len(set(source_colours([f"s{i}" for i in range(8)]).values())) == 8


def test_unverified_quotes_are_never_in_the_view() -> None:
    comparison: Comparison = judged_comparison()
    comparison.agreements[0].quotes[0] = (
        comparison.agreements[0].quotes[0].model_copy(update={"status": "unverified"})
    )
    assert len(build_view(comparison).agreements[0].quotes) == 1
