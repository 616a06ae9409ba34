"""The quote gate on real articles: verbatim quotes verify at their offsets, edited ones are repaired with the
stored text, invented ones are dropped, and quote.text == doc.text[char_start:char_end] always holds."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest

from compare.analysis.quotes import (
    FUZZY_THRESHOLD,
    QuoteStats,
    normalise,
    quote_index,
    verify_quote,
    verify_quotes,
)
from compare.types import Document, Quote

FIXTURES = Path(__file__).parent / "fixtures" / "quotes"
SESTAK_NYT = "basil-38f7cbb7-1"
SESTAK_FOX = "basil-38f7cbb7-2"
BASEBALL = "basil-58f414e5-2"
BRUSSELS = "us-gov-2022-10-10-missile-strikes-01"
ZELENSKYY = "us-gov-2022-12-21-zelenskyy-visit-03"
POLITICO = "seed-politico-negotiating-position-2023"
FURNITURE_HEADLINE = "N Korea, Russia Sign Mutual Defence Deal as Kim Pledges Support on Ukraine"

# Plausible sentences about the fixtures' stories that none of them contains.
FABRICATED = {
    SESTAK_NYT: [
        "Mr. Sestak said on Friday that he had accepted the offer from the White House and would leave.",
        "Robert F. Bauer said the White House had never discussed any position with Mr. Sestak or his staff.",
    ],
    BASEBALL: [
        "Steve Scalise threw the first pitch at Nationals Park to a standing ovation from both parties.",
        "Republicans won the annual congressional baseball game by a wide margin on Thursday night.",
    ],
    BRUSSELS: [
        "Secretary Austin will announce a new package of security assistance for Ukraine in Brussels.",
    ],
    ZELENSKYY: [
        "President Biden said the United States would provide Ukraine with fighter jets early next year.",
        "President Zelenskyy told reporters that Ukraine would never negotiate with Putin under any terms.",
    ],
    POLITICO: [
        "The Biden administration has officially ended its support for decisive victory, Politico reported.",
    ],
}


def load_docs() -> dict[str, Document]:
    with (FIXTURES / "articles.jsonl").open(encoding="utf-8") as lines:
        docs = [Document(**json.loads(line)) for line in lines]
    return {doc.id: doc for doc in docs}


DOCS = load_docs()


def assert_reads_from_store(quote: Quote) -> None:
    assert quote.text == DOCS[quote.doc_id].text[quote.char_start : quote.char_end]


def sentences(text: str, min_words: int = 12) -> list[str]:
    """Plain one-line sentences (no abbreviations in the way) long enough to quote."""
    found = re.findall(r"(?<![^\s])[A-Z][^.!?\n]*[a-z][.!?](?=\s|$)", text)
    return [s for s in found if min_words <= len(s.split()) <= 45]


def expect_repaired(proposed: str, doc_id: str, stored: str) -> Quote:
    quote = verify_quote(proposed, DOCS[doc_id])
    assert quote.status == "repaired", quote
    assert quote.text == stored
    assert quote.char_start == DOCS[doc_id].text.index(stored)
    assert quote.proposed == proposed
    assert quote.similarity is not None and FUZZY_THRESHOLD <= quote.similarity < 1
    return quote


def expect_unverified(quote: Quote, proposed: str) -> None:
    assert quote.status == "unverified", quote
    assert (quote.char_start, quote.char_end, quote.text) == (0, 0, "")
    assert quote.proposed == proposed


# -- exact and normalised: verified ------------------------------------------------------------------


def test_every_basil_bias_span_verifies_at_its_annotated_offsets() -> None:
    spans = [json.loads(line) for line in (FIXTURES / "bias_spans.jsonl").read_text("utf-8").splitlines()]
    assert len(spans) >= 15
    for span in spans:
        quote = verify_quote(span["txt"], DOCS[span["doc_id"]], hint_start=span["char_start"])
        assert quote.status == "verified"
        assert (quote.char_start, quote.char_end) == (span["char_start"], span["char_end"])
        assert quote.text == span["txt"] and quote.proposed is None and quote.similarity is None


def test_straight_quotes_verify_with_the_stored_curly_text() -> None:
    stored = "“There was no such impropriety,” Robert F. Bauer, the White House counsel, said"
    proposed = '"There was no such impropriety," Robert F. Bauer, the White House counsel, said'
    quote = verify_quote(proposed, DOCS[SESTAK_NYT])
    assert quote.status == "verified"
    assert quote.text == stored and quote.proposed == proposed
    assert quote.char_start == DOCS[SESTAK_NYT].text.index(stored)


def test_apostrophes_and_quote_marks_around_the_whole_proposal() -> None:
    quote = verify_quote(
        '"President Obama\'s chief of staff used former President Bill Clinton as an intermediary"',
        DOCS[SESTAK_NYT],
    )
    assert quote.status == "verified"
    assert (
        quote.text == "President Obama’s chief of staff used former President Bill Clinton as an intermediary"
    )


def test_plain_space_matches_a_non_breaking_space() -> None:
    stored = "join as Invitees. \xa0Ministers will discuss implementation of decisions endorsed at Madrid"
    quote = verify_quote(
        "join as Invitees. Ministers will discuss implementation of decisions", DOCS[BRUSSELS]
    )
    assert quote.status == "verified"
    assert stored.startswith(quote.text) and "\xa0" in quote.text
    assert_reads_from_store(quote)


def test_a_quote_across_a_paragraph_break() -> None:
    proposed = (
        "the congressman vacating his seat in the House.” Mr. Bauer went on to say that such horse-trading"
    )
    quote = verify_quote(proposed, DOCS[SESTAK_NYT])
    assert quote.status == "verified"
    assert "\n\n" in quote.text
    assert quote.text == proposed.replace(".” Mr.", ".”\n\nMr.")


@pytest.mark.parametrize("dash", ["-", " - ", "--", " -- ", "—"])
def test_dash_variants_match_an_en_dash(dash: str) -> None:
    proposed = f"prior administrations{dash}both Democratic and Republican, and motivated by the same goals"
    quote = verify_quote(proposed, DOCS[SESTAK_NYT])
    assert quote.status == "verified"
    assert (
        quote.text
        == "prior administrations – both Democratic and Republican, and motivated by the same goals"
    )


def test_hyphen_matches_an_em_dash() -> None:
    quote = verify_quote("striking four people - including Steve Scalise, the majority whip", DOCS[BASEBALL])
    assert quote.status == "verified"
    assert quote.text == "striking four people — including Steve Scalise, the majority whip"


def test_ellipsis_character_matches_three_dots() -> None:
    quote = verify_quote(
        "promises any employment, position, compensation…appointment…provided for", DOCS[SESTAK_FOX]
    )
    assert quote.status == "verified"
    assert quote.text == "promises any employment, position, compensation...appointment...provided for"


def test_normalise_folds_typography_but_not_case() -> None:
    assert normalise(" “It’s”\xa0a\n\ntest — of\tthe… Gate ") == '"It\'s" a test-of the... Gate'


# -- fuzzy: repaired with the stored text ------------------------------------------------------------

RAHM = (
    "Rahm Emanuel, the chief of staff, asked Mr. Clinton last summer to explore “options of service” on a "
    "presidential or senior government advisory board with Mr. Sestak, the White House said in a statement."
)


def test_one_word_changed_is_repaired_with_the_stored_text() -> None:
    proposed = RAHM.replace("last summer", "last spring").replace("“", '"').replace("”", '"')
    expect_repaired(proposed, SESTAK_NYT, RAHM)


def test_a_typo_is_repaired() -> None:
    expect_repaired(RAHM.replace("advisory", "advsiory"), SESTAK_NYT, RAHM)


def test_a_dropped_word_is_repaired() -> None:
    expect_repaired(RAHM.replace(" senior", ""), SESTAK_NYT, RAHM)


def test_repair_without_the_closing_full_stop_snaps_to_words() -> None:
    stored = "Some members of Congress had not expected to stay behind for the annual showdown"
    quote = verify_quote(
        "Some members of Congress had not expected to remain behind for the annual showdown", DOCS[BASEBALL]
    )
    assert quote.status == "repaired"
    assert quote.text in (stored, stored + ",")
    assert_reads_from_store(quote)


def test_case_change_is_repaired_not_verified() -> None:
    stored = "the White House disputed Republican claims that the conversations might be illegal or improper"
    quote = verify_quote(stored.upper(), DOCS[SESTAK_NYT])
    assert quote.status == "repaired"
    assert quote.text == "The" + stored[3:]
    assert quote.similarity == 1.0
    assert_reads_from_store(quote)


# -- unverified ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("doc_id", "proposed"), [(d, s) for d, ss in FABRICATED.items() for s in ss])
def test_a_fabricated_sentence_is_unverified(doc_id: str, proposed: str) -> None:
    quote = verify_quote(proposed, DOCS[doc_id])
    expect_unverified(quote, proposed)
    assert quote.similarity is None or quote.similarity < FUZZY_THRESHOLD


def test_a_sentence_from_another_document_is_unverified() -> None:
    borrowed = "Efforts to improve Ukraine’s position include reinforcing air defense systems"
    assert verify_quote(borrowed, DOCS[POLITICO]).status == "verified"
    for doc_id in (ZELENSKYY, BRUSSELS, SESTAK_NYT):
        expect_unverified(verify_quote(borrowed, DOCS[doc_id]), borrowed)


@pytest.mark.parametrize("proposed", ["", "   ", "\n\n"])
def test_an_empty_proposal_is_unverified(proposed: str) -> None:
    expect_unverified(verify_quote(proposed, DOCS[SESTAK_NYT]), proposed)


def test_short_proposals_must_match_verbatim() -> None:
    fox = DOCS[SESTAK_FOX]
    assert verify_quote("dangled", fox).status == "verified"
    assert verify_quote("Batting down", fox).status == "verified"
    assert verify_quote("Obama's", DOCS[SESTAK_NYT]).text == "Obama’s"  # typography only: still verbatim
    for short in ("dangeld", "batting down", "Batting dawn", "hastily arranged!"):
        expect_unverified(verify_quote(short, fox), short)


def test_proposals_spanning_two_stored_documents_are_unverified() -> None:
    end_of_one = "the White House said in a statement."
    start_of_other = "WASHINGTON — The lawmakers trotted from their dugouts at Nationals Park"
    proposed = f"{end_of_one} {start_of_other}"
    for doc_id in (SESTAK_NYT, BASEBALL):
        expect_unverified(verify_quote(proposed, DOCS[doc_id]), proposed)


# -- hints and forbidden spans -------------------------------------------------------------------------


def test_hint_start_picks_the_nearest_occurrence() -> None:
    doc = DOCS[POLITICO]
    first = doc.text.index(FURNITURE_HEADLINE)
    second = doc.text.index(FURNITURE_HEADLINE, first + 1)
    assert verify_quote(FURNITURE_HEADLINE, doc).char_start == first
    assert verify_quote(FURNITURE_HEADLINE, doc, hint_start=second - 50).char_start == second
    assert verify_quote(FURNITURE_HEADLINE, doc, hint_start=first + 10).char_start == first
    spaced = FURNITURE_HEADLINE.replace(" ", "  ")  # same words, found by the normalised stage
    assert verify_quote(spaced, doc).char_start == first
    assert verify_quote(spaced, doc, hint_start=len(doc.text)).char_start == second


def test_hint_start_in_the_normalised_and_fuzzy_stages() -> None:
    doc = DOCS[BRUSSELS]
    phrase = "17:30 – Press conference with Secretary"
    first = doc.text.index(phrase)
    second = doc.text.index(phrase, first + 1)
    hyphen = phrase.replace("–", "-")
    assert verify_quote(hyphen, doc).char_start == first
    assert verify_quote(hyphen, doc, hint_start=second).char_start == second
    typo = "17:30 - Press confrence with Secretary"
    assert verify_quote(typo, doc, hint_start=second).char_start == second


def test_a_quote_inside_a_forbidden_span_is_unverified() -> None:
    doc = DOCS[POLITICO]
    teaser = "The two countries have been allies since North Korea's founding after World War II"
    start = doc.text.index("N Korea")
    furniture = (start, doc.text.index("While the United States desires"))
    assert verify_quote(teaser, doc).status == "verified"
    expect_unverified(verify_quote(teaser, doc, forbidden=[furniture]), teaser)
    edited = teaser.replace("allies", "partners")
    assert verify_quote(edited, doc).status == "repaired"
    expect_unverified(verify_quote(edited, doc, forbidden=[furniture]), edited)


def test_forbidden_spans_skip_to_an_allowed_occurrence() -> None:
    doc = DOCS[POLITICO]
    first = doc.text.index(FURNITURE_HEADLINE)
    second = doc.text.index(FURNITURE_HEADLINE, first + 1)
    quote = verify_quote(FURNITURE_HEADLINE, doc, forbidden=[(first, first + 5)])
    assert quote.char_start == second
    both = [(first, first + 5), (second + 10, second + 11)]
    expect_unverified(verify_quote(FURNITURE_HEADLINE, doc, forbidden=both), FURNITURE_HEADLINE)


# -- invariant and threshold on many generated quotes ----------------------------------------------------

_TYPOGRAPHIC_SWAPS = [
    ("’", "'"),
    ("‘", "'"),
    ("“", '"'),
    ("”", '"'),
    ("\xa0", " "),
    ("\n\n", " "),
    ("\n", " "),
    (" – ", " - "),
    ("–", "-"),
    (" — ", " -- "),
    ("—", "-"),
    ("...", "…"),
    (" ", "  "),
]


def perturb(text: str, rng: random.Random) -> str:
    for old, new in _TYPOGRAPHIC_SWAPS:
        if old in text and rng.random() < 0.7:
            text = text.replace(old, new)
    return text


def random_word_spans(text: str, rng: random.Random, count: int) -> list[tuple[int, int]]:
    """Random spans of 4 to 40 words, starting at a word's first character and ending at a word's last."""
    words = list(re.finditer(r"\w+", text))
    spans = []
    for _ in range(count):
        first = rng.randrange(len(words) - 3)
        last = min(len(words) - 1, first + rng.randrange(3, 40))
        spans.append((words[first].start(), words[last].end()))
    return spans


def test_typographic_variants_of_random_substrings_verify_at_the_same_offsets() -> None:
    rng = random.Random(20240611)
    checked = 0
    for doc in DOCS.values():
        for start, end in random_word_spans(doc.text, rng, 150):
            proposed = perturb(doc.text[start:end], rng)
            quote = verify_quote(proposed, doc, hint_start=start)
            assert quote.status == "verified", (doc.id, proposed)
            assert (quote.char_start, quote.char_end) == (start, end), (doc.id, proposed)
            assert_reads_from_store(quote)
            checked += 1
    assert checked == 150 * len(DOCS)


def one_word_edits(sentence: str, rng: random.Random) -> list[str]:
    words = sentence.split()
    k = rng.randrange(1, len(words) - 1)
    typo = (
        words[k][:1] + words[k][2:3] + words[k][1:2] + words[k][3:] if len(words[k]) > 3 else words[k] + "s"
    )
    return [
        " ".join([*words[:k], "reportedly", *words[k + 1 :]]),
        " ".join([*words[:k], *words[k + 1 :]]),
        " ".join([*words[:k], typo, *words[k + 1 :]]),
    ]


def some(items: list[str], k: int, rng: random.Random) -> list[str]:
    return rng.sample(items, min(k, len(items)))


def event(doc_id: str) -> str:
    return doc_id.rsplit("-", 1)[0]


def test_threshold_separates_edits_from_fabrications() -> None:
    """The evidence for FUZZY_THRESHOLD: one-word edits of 16+ word sentences and typos in 6+ word sentences
    all score above it; invented sentences and sentences from other stories' articles score far below."""
    rng = random.Random(7)
    edited: list[float] = []
    for doc in DOCS.values():
        for sentence in some(sentences(doc.text, min_words=6), 40, rng):
            edits = one_word_edits(sentence, rng)
            for proposed in edits if len(sentence.split()) >= 16 else edits[2:]:
                quote = verify_quote(proposed, doc)
                assert quote.status in ("repaired", "verified"), (doc.id, proposed, quote.similarity)
                assert_reads_from_store(quote)
                edited.append(quote.similarity or 1.0)
    invented: list[float] = []
    for doc in DOCS.values():
        proposals = list(FABRICATED.get(doc.id, []))
        for other in DOCS.values():
            if event(other.id) != event(doc.id):
                proposals += some(sentences(other.text, min_words=6), 12, rng)
        for proposed in proposals:
            quote = verify_quote(proposed, doc)
            assert quote.status == "unverified", (doc.id, proposed)
            invented.append(quote.similarity or 0.0)
    assert len(edited) > 300 and len(invented) > 300
    assert min(edited) >= FUZZY_THRESHOLD
    assert max(invented) < FUZZY_THRESHOLD - 0.15


def test_repaired_and_verified_quotes_always_read_from_the_store() -> None:
    rng = random.Random(11)
    for doc in DOCS.values():
        for sentence in rng.sample(sentences(doc.text, min_words=6), 6):
            for proposed in [sentence, sentence.lower(), *one_word_edits(sentence, rng)]:
                quote = verify_quote(proposed, doc)
                assert_reads_from_store(quote)
                if quote.status != "unverified":
                    assert quote.text.strip() == quote.text and quote.text


# -- batches ---------------------------------------------------------------------------------------------


def test_verify_quotes_counts_every_outcome() -> None:
    proposals = [
        (
            SESTAK_NYT,
            "Mr. Sestak said no and went on to win last week’s primary against Senator Arlen Specter.",
        ),
        (
            SESTAK_NYT,
            "Mr. Sestak said no and went on to win last week's primary against Senator Arlen Specter.",
        ),
        (SESTAK_NYT, RAHM.replace("last summer", "last spring")),
        (SESTAK_NYT, FABRICATED[SESTAK_NYT][0]),
        ("no-such-document", "Mr. Sestak said no and went on to win last week’s primary."),
        (BASEBALL, ""),
    ]
    quotes, stats = verify_quotes(proposals, DOCS)
    assert [q.status for q in quotes] == [
        "verified",
        "verified",
        "repaired",
        "unverified",
        "unverified",
        "unverified",
    ]
    assert stats == QuoteStats(proposed=6, verified=2, repaired=1, unverified=3, unknown_document=1)
    assert stats.as_dict() == {
        "proposed": 6,
        "verified": 2,
        "repaired": 1,
        "unverified": 3,
        "unknown_document": 1,
    }
    assert quotes[4].doc_id == "no-such-document" and quotes[4].text == ""


def test_twenty_proposals_on_the_longest_article_are_fast() -> None:
    doc = max(DOCS.values(), key=lambda d: len(d.text))
    rng = random.Random(3)
    picked = rng.sample(sentences(doc.text), 20)
    mixed = [
        perturb(s, rng) if i % 3 == 0 else one_word_edits(s, rng)[i % 3] if i % 3 == 1 else s
        for i, s in enumerate(picked)
    ]
    quote_index.cache_clear()
    began = time.perf_counter()
    quotes = [verify_quote(proposed, doc) for proposed in mixed]
    elapsed = time.perf_counter() - began
    assert all(q.status != "unverified" for q in quotes)
    assert elapsed < 1.0, f"{elapsed:.3f}s for 20 proposals on {len(doc.text)} characters"
