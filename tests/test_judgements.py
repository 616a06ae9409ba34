"""Judgements from positions: agreements, differences, omissions, shifts and the answer rest on sure positions
only, never on shared words or tone; claims are propositions; positions come from the documents read."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from compare.analysis.judgements import (
    agreements,
    answer,
    differences,
    human_date,
    is_proposition,
    omissions,
    position_shifts,
)
from compare.analysis.positions import (
    Candidate,
    Reading,
    SourceDocs,
    check_silent_sources,
    choose_claims,
    judgements,
    plan_readings,
    read_all,
    source_position,
)
from compare.analysis.reported_shifts import reported_shifts, states_a_change
from compare.analysis.stance_model import Judged
from compare.analysis.stance_passage import Passage
from compare.settings import JudgementSettings
from compare.types import (
    ClaimJudgement,
    DatedPosition,
    Document,
    PositionLabel,
    Quote,
    SourcePosition,
)


def _quote(source: str, text: str = "a sentence.", doc_id: str = "d") -> Quote:
    return Quote(doc_id=doc_id, source=source, char_start=0, char_end=len(text), text=text, status="verified")


def _position(
    source: str, label: PositionLabel, confidence: float = 0.9, *, sure: bool = True, checked: int = 1
) -> SourcePosition:
    quote = None if label == "not_addressed" else _quote(source)
    return SourcePosition(
        source=source, label=label, confidence=confidence, sure=sure, quote=quote, checked_documents=checked
    )


def _claim(*positions: SourcePosition, claim_id: str = "c1", target: bool = False) -> ClaimJudgement:
    return ClaimJudgement(
        id=claim_id, text="The deal was signed.", is_target=target, positions=list(positions)
    )


def _dated(date: str, label: PositionLabel, confidence: float = 0.9, *, sure: bool = True) -> DatedPosition:
    return DatedPosition(
        date=date,
        doc_id=f"d-{date}",
        label=label,
        confidence=confidence,
        sure=sure,
        quote=_quote("s", doc_id=f"d-{date}"),
    )


# -- propositions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "explicit", "expected"),
    [
        ("How did the US position on Ukraine change?", False, False),
        ("US support for Ukraine", True, False),
        ("Russia's missile strikes", True, False),
        ("The US will send longer-range missiles to Ukraine", True, True),
        ("ISIS beheads American journalist", True, True),
        ("Did the US send ATACMS to Ukraine?", False, True),
        ("Apple has delayed the launch of its watch", True, True),
        ("US position on Ukraine", False, False),
        # headline grammar, as FNC-1's claims are written
        ("Microsoft to buy 'Minecraft' creator Mojang for $2.5B", True, True),
        ("Tesla to Choose Nevada for Battery Factory", True, True),
        ("Oil market shrugs off Saudi pipeline blast", True, True),
        ("No gender segregation on Saudia", True, True),
        ("Fei Lin's Penis Stolen By Thieves", True, True),
        ("Missing Kim Jong-un suffering with 'condition' after CHEESE binge", True, True),
        ("Kim Jong-Un 'bans the name Kim Jong-un'", True, True),
        ("How a Reddit user convinced Tim Cook to change Apple's on-hold music", True, True),
        ("What do the outlets say about the summit?", True, False),
        ("Military aid to Ukraine", True, False),
        ("US funding for Ukraine", True, False),
        ("Health care costs for seniors", True, False),
    ],
)
def test_only_statements_and_yes_no_questions_are_propositions(
    text: str, explicit: bool, expected: bool
) -> None:
    assert is_proposition(text, explicit=explicit) is expected


def test_dates_read_as_people_write_them() -> None:
    assert human_date("2024-01-05") == "5 Jan 2024"
    assert human_date(None) == "undated"
    assert human_date("someday") == "someday"


# -- agreements, differences, omissions ------------------------------------------------------------------


def test_agreement_needs_two_sure_backers() -> None:
    claim = _claim(_position("a", "backs", 0.9), _position("b", "backs", 0.7), _position("c", "reports"))
    found = agreements([claim])
    assert len(found) == 1 and found[0].sources == ["a", "b"] and found[0].confidence == 0.7
    assert found[0].claim_id == "c1" and len(found[0].quotes) == 2
    unsure = _claim(_position("a", "backs"), _position("b", "backs", 0.4, sure=False))
    assert agreements([unsure]) == []
    reporting = _claim(_position("a", "reports"), _position("b", "reports"))
    assert agreements([reporting]) == [], "reporting a claim is not agreeing with it"


def test_difference_is_strong_for_backs_against_disputes_and_weak_against_reports() -> None:
    strong = differences([_claim(_position("a", "backs", 0.9), _position("b", "disputes", 0.8))])
    assert [(d.strength, d.confidence) for d in strong] == [("strong", 0.8)]
    assert {p.position for p in strong[0].positions} == {"backs", "disputes"}
    weak = [_claim(_position("a", "backs"), _position("b", "reports", 0.85))]
    assert differences(weak) == [], "backs vs only reports hinges on agree vs discuss: withheld for now"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("compare.analysis.judgements.SHOW_WEAK_CONTRASTS", True)
        assert [d.strength for d in differences(weak)] == ["weak"]
    assert differences([_claim(_position("a", "backs"), _position("b", "disputes", 0.4, sure=False))]) == []
    assert differences([_claim(_position("a", "reports"), _position("b", "not_addressed"))]) == []


def test_strong_differences_come_before_weak_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("compare.analysis.judgements.SHOW_WEAK_CONTRASTS", True)
    weak = _claim(_position("a", "backs", 0.99), _position("b", "reports", 0.99), claim_id="c1")
    strong = _claim(_position("a", "backs", 0.6), _position("b", "disputes", 0.6), claim_id="c2")
    assert [d.claim_id for d in differences([weak, strong])] == ["c2", "c1"]


def test_omission_needs_documents_read_and_another_source_that_addresses_it() -> None:
    claim = _claim(_position("a", "backs"), _position("b", "not_addressed", 0.95, checked=3))
    found = omissions([claim])
    assert [(o.not_reported_by, o.reported_by, o.confidence) for o in found] == [(["b"], ["a"], 0.95)]
    nothing_read = _claim(_position("a", "backs"), _position("b", "not_addressed", checked=0))
    assert omissions([nothing_read]) == []
    unsure = _claim(_position("a", "backs"), _position("b", "not_addressed", 0.5, sure=False, checked=2))
    assert omissions([unsure]) == []
    nobody = _claim(_position("a", "not_addressed", checked=2), _position("b", "not_addressed", checked=2))
    assert omissions([nobody]) == []


# -- shifts ----------------------------------------------------------------------------------------------


def test_a_change_of_position_over_time_is_a_shift_described_in_words() -> None:
    position = _position("s", "disputes")
    position.by_date = [_dated("2024-01-05", "backs", 0.9), _dated("2024-03-05", "disputes", 0.8)]
    shifts = position_shifts([_claim(position)], {"s": "The Outlet"})
    assert len(shifts) == 1
    shift = shifts[0]
    assert (shift.kind, shift.before.stance, shift.after.stance, shift.score) == (
        "position",
        "backs",
        "disputes",
        0.8,
    )
    assert shift.description.startswith("The Outlet backed it on 5 Jan 2024; disputed it on 5 Mar 2024")


def test_a_steady_source_never_shifts() -> None:
    position = _position("s", "backs")
    position.by_date = [
        _dated("2024-01-05", "backs"),
        _dated("2024-02-05", "backs"),
        _dated("2024-03-05", "backs"),
    ]
    assert position_shifts([_claim(position)]) == []


def test_unsure_silent_or_undated_documents_make_no_shift() -> None:
    unsure = _position("s", "backs")
    unsure.by_date = [_dated("2024-01-05", "backs"), _dated("2024-03-05", "disputes", 0.4, sure=False)]
    silent = _position("t", "backs")
    silent.by_date = [_dated("2024-01-05", "backs"), _dated("2024-03-05", "not_addressed")]
    reports_only = _position("u", "reports")
    reports_only.by_date = [_dated("2024-01-05", "reports"), _dated("2024-03-05", "reports")]
    assert position_shifts([_claim(unsure, silent, reports_only)]) == []


def test_backs_then_only_reports_is_withheld_until_the_model_separates_them() -> None:
    position = _position("s", "reports")
    position.by_date = [_dated("2024-01-05", "backs"), _dated("2024-03-05", "reports")]
    assert position_shifts([_claim(position)]) == []


# -- the answer ------------------------------------------------------------------------------------------


def test_answer_states_positions_on_the_proposition_with_their_quotes() -> None:
    target = _claim(
        _position("a", "backs"),
        _position("b", "backs"),
        _position("c", "disputes"),
        _position("d", "not_addressed", checked=2),
        _position("e", "reports", 0.3, sure=False),
        claim_id="target",
        target=True,
    )
    sentences = answer(
        [target], [], [], [], {"a": "Alpha", "b": "Beta", "c": "Gamma", "d": "Delta", "e": "Eps"}
    )
    assert sentences[0].text == "On “The deal was signed.”: Alpha and Beta back it; Gamma disputes it."
    assert len(sentences[0].quotes) == 3
    assert sentences[1].text == "Delta does not address it; for Eps there is not enough evidence to say."


def test_answer_to_a_topic_says_there_is_no_proposition_and_shows_claims() -> None:
    claim = _claim(_position("a", "backs"), _position("b", "disputes"))
    sentences = answer([claim], [], agreements([claim]), differences([claim]), {})
    assert sentences[0].text.startswith(
        "They disagree on “The deal was signed.”: a backs it and b disputes it"
    )
    assert len(sentences) <= 4
    nothing = answer([_claim(_position("a", "reports"))], [], [], [], {})
    assert "topic rather than a claim" in nothing[0].text and not nothing[0].quotes


# -- claims and readings ---------------------------------------------------------------------------------


def _doc(doc_id: str, source: str, text: str, date: str | None = None) -> Document:
    return Document(id=doc_id, source=source, text=text, date=date)


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_claims_are_the_most_relevant_statements_without_restatements() -> None:
    doc = _doc("d1", "a", "The deal was signed. The deal got signed. Prices rose sharply.")
    sentences = [
        (doc, 0, 20, 0.9, _unit(1, 0, 0)),
        (doc, 21, 41, 0.8, _unit(0.99, 0.1, 0)),
        (doc, 42, 62, 0.5, _unit(0, 1, 0)),
    ]
    chosen = choose_claims(sentences, JudgementSettings(max_claims=5))
    assert [c.text for c in chosen] == ["The deal was signed.", "Prices rose sharply."]
    assert [c.id for c in chosen] == ["c1", "c2"]


class _FakeModel:
    """Judges by keywords: 'not' disputes, 'signed' backs, 'talks' reports, else unrelated."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def judge_many(self, items: Sequence[tuple[str, str, Sequence[tuple[int, int]] | None]]) -> list[Judged]:
        self.calls.append(len(items))
        out = []
        for _, text, _ in items:
            label = (
                "disagree"
                if " not " in text
                else "agree"
                if "signed" in text
                else "discuss"
                if "talks" in text
                else "unrelated"
            )
            out.append(
                Judged(label, 0.9, {label: 0.9}, True, (0, len(text)), Passage(((0, len(text)),), text))
            )
        return out


def _quote_of(doc: Document, start: int, end: int) -> Quote:
    return Quote(
        doc_id=doc.id,
        source=doc.source,
        char_start=start,
        char_end=end,
        text=doc.text[start:end],
        status="verified",
    )


def test_positions_come_from_documents_and_silent_sources_are_checked_further() -> None:
    a = _doc("a1", "a", "The deal was signed on Monday.", "2024-01-01")
    b1 = _doc("b1", "b", "The deal was signed, officials said.", "2024-01-01")
    b2 = _doc("b2", "b", "The deal was not signed after all.", "2024-03-01")
    c = _doc("c1", "c", "Weather was fine.", "2024-01-01")
    c_more = _doc("c2", "c", "Football results.", "2024-01-02")
    candidates = [Candidate("target", "The deal was signed.", _unit(1, 0), None, is_target=True)]
    sources = [SourceDocs("a", [a]), SourceDocs("b", [b1, b2]), SourceDocs("c", [c])]
    settings = JudgementSettings(omission_docs=1)
    readings, warnings = plan_readings(candidates, sources, settings)
    assert len(readings) == 4 and warnings == []
    model = _FakeModel()
    read_all(model, candidates, readings)  # type: ignore[arg-type]
    asked: list[tuple[str, str, int, set[str]]] = []

    def related(claim: str, source: str, n: int, skip: set[str]) -> list[Document]:
        asked.append((claim, source, n, skip))
        return [c_more] if source == "c" else []

    readings += check_silent_sources(model, candidates, readings, ["a", "b", "c", "d"], related, settings)  # type: ignore[arg-type]
    assert [(source, skip) for _, source, _, skip in asked] == [("c", {"c1"}), ("d", set())]
    claims = judgements(candidates, readings, ["a", "b", "c", "d"], _quote_of)
    by_source = {p.source: p for p in claims[0].positions}
    assert by_source["a"].label == "backs"
    assert by_source["b"].label == "disputes", "the latest dated document gives the current position"
    assert [d.label for d in by_source["b"].by_date] == ["backs", "disputes"]
    assert (by_source["c"].label, by_source["c"].checked_documents, by_source["c"].sure) == (
        "not_addressed",
        2,
        True,
    )
    assert (by_source["d"].label, by_source["d"].sure) == ("not_addressed", False), "nothing read: not sure"
    assert [s.source for s in position_shifts(claims)] == ["b"]
    assert [(o.not_reported_by) for o in omissions(claims)] == [["c"]]


def test_the_pair_budget_drops_whole_claims_and_says_so() -> None:
    docs = [SourceDocs(s, [_doc(f"{s}{i}", s, "The deal was signed.") for i in range(3)]) for s in "abc"]
    candidates = [Candidate(f"c{i}", "The deal was signed.", _unit(1, 0)) for i in range(4)]
    readings, warnings = plan_readings(candidates, docs, JudgementSettings(docs_per_source=3, max_pairs=20))
    assert len(readings) == 18 and {r.claim for r in readings} == {0, 1}
    assert warnings == ["2 claim(s) not judged: the pair budget (20) is spent"]


def test_a_source_position_without_readings_is_unsure() -> None:
    position = source_position("x", [], _quote_of)
    assert (position.label, position.sure, position.checked_documents) == ("not_addressed", False, 0)


def test_reading_keeps_the_document() -> None:
    doc = _doc("a1", "a", "text")
    assert Reading(0, "a", doc).document is doc


# -- changes reported in words ---------------------------------------------------------------------------


class _Sentence:
    def __init__(self, doc: Document, text: str, vector: np.ndarray) -> None:
        self.source, self.doc_id, self.text, self.vector = doc.source, doc.id, text, vector
        self.start = doc.text.index(text)
        self.end = self.start + len(text)


def test_a_reported_shift_needs_a_change_of_position_not_a_mention_of_the_past() -> None:
    text = (
        "Officials describe a shift from seeking a decisive victory to enhancing Ukraine's negotiating position. "
        "Previously, I had recommended more COVID funding. "
        "His administration previously resisted supplying such weapons over escalation concerns. "
        "Biden has reversed key policies on providing advanced weapons to Ukraine."
    )
    doc = _doc("w", "wapo", text, "2024-11-26")
    sentences = [
        _Sentence(doc, text.split(". ")[0] + ".", _unit(1, 0, 0)),
        _Sentence(doc, "Previously, I had recommended more COVID funding.", _unit(0, 1, 0)),
        _Sentence(
            doc,
            "His administration previously resisted supplying such weapons over escalation concerns.",
            _unit(0, 0, 1),
        ),
        _Sentence(
            doc, "Biden has reversed key policies on providing advanced weapons to Ukraine.", _unit(0, 0.3, 1)
        ),
    ]
    shifts = reported_shifts(sentences, {"w": doc}, _quote_of)
    described = sorted((s.before.quote.text, s.after.quote.text) for s in shifts)
    assert described == [
        (
            "His administration previously resisted supplying such weapons over escalation concerns.",
            "Biden has reversed key policies on providing advanced weapons to Ukraine.",
        ),
        ("seeking a decisive victory", "enhancing Ukraine's negotiating position"),
    ]
    assert all(s.kind == "reported" for s in shifts)
    assert not states_a_change("Previously, I had recommended more COVID funding.")
    military = (
        "They discussed the transition of their forces from a failed counteroffensive to defensive lines."
    )
    moved = _doc("p", "politico", military)
    assert reported_shifts([_Sentence(moved, military, _unit(1, 0, 0))], {"p": moved}, _quote_of) == []


def test_a_shift_needs_two_confident_positions_and_is_listed_once() -> None:
    weak = _position("s", "disputes")
    weak.by_date = [_dated("2024-01-05", "backs", 0.55), _dated("2024-03-05", "disputes", 0.9)]
    assert position_shifts([_claim(weak)]) == [], "a sure but weak position is not enough to contrast"
    strong = _position("s", "disputes")
    strong.by_date = [_dated("2024-01-05", "backs", 0.9), _dated("2024-03-05", "disputes", 0.9)]
    twice = [_claim(strong, claim_id="c1"), _claim(strong.model_copy(deep=True), claim_id="c2")]
    assert len(position_shifts(twice)) == 1, "the same two quotes under two claims are one shift"
