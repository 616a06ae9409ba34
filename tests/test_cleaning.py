"""Page furniture goes by mechanism (patterns, repetition, related-story blocks); article text survives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compare.ingest.cleaning import RepeatedLines, clean_text, is_furniture, is_headline_like

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
POLITICO = FIXTURES / "politico-negotiating-position-2023.txt"
WP = FIXTURES / "wp-biden-reversals-2024-11.txt"

FURNITURE_STRINGS = (
    "Other Topics of Interest",
    "N Korea, Russia Sign",
    "The two countries have been allies",
    "To suggest a correction",
    "Ctrl + Enter",
)
# The furniture lines of the politico seed, as the seeds README lists them; everything else is article text.
POLITICO_FURNITURE_PREFIXES = (
    "N Korea, Russia Sign Mutual Defence Deal",
    "Other Topics of Interest",
    "The two countries have been allies",
    "To suggest a correction",
    "You can also highlight the text",
)


def _article_paragraphs(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [line for line in lines if not line.startswith(POLITICO_FURNITURE_PREFIXES)]


@pytest.mark.parametrize("path", [POLITICO, WP], ids=["politico", "wp"])
def test_seed_furniture_removed_and_every_article_paragraph_kept_verbatim(path: Path) -> None:
    result = clean_text(path.read_text(encoding="utf-8"))

    for furniture in FURNITURE_STRINGS:
        assert furniture not in result.text
    assert result.text.split("\n\n") == _article_paragraphs(path)


def test_politico_related_block_dropped_up_to_the_teaser_only() -> None:
    result = clean_text(POLITICO.read_text(encoding="utf-8"))

    assert "While the United States desires Ukraine to enter negotiations" in result.text
    assert (
        "from a “failed counteroffensive” to more robust defensive positions" in result.text
    )  # curly quotes
    assert result.removed == [
        "N Korea, Russia Sign Mutual Defence Deal as Kim Pledges Support on Ukraine",
        "Other Topics of Interest",
        "N Korea, Russia Sign Mutual Defence Deal as Kim Pledges Support on Ukraine",
        "The two countries have been allies since North Korea's founding after World War II, and have drawn "
        "even closer after Russia's invasion of Ukraine in 2022 isolated Putin on the global stage.",
        "To suggest a correction or clarification, write to us here",
        "You can also highlight the text and press Ctrl + Enter",
    ]


def test_single_newline_seed_becomes_one_paragraph_per_line() -> None:
    raw = WP.read_text(encoding="utf-8")

    result = clean_text(raw)

    assert result.removed == []
    assert result.text == "\n\n".join(line for line in raw.splitlines() if line.strip())
    assert "Ukraine’s negotiating position" in result.text


def test_generic_related_block_in_a_made_up_article() -> None:
    text = (
        "Grain exports through the Black Sea corridor rose for a third month running, officials said.\n"
        "Read also:\n"
        "Poland Extends Ban on Ukrainian Grain Imports Until Spring\n"
        "Warsaw said the measure protects its farmers while transit to the Baltic ports stays open.\n"
        "Shipping insurers have cut premiums as attacks on the ports became less frequent.\n"
        "RELATED STORIES\n"
        "Odesa Port Reopens After Drone Strike\n"
        "Officials said cranes were repaired within a week.\n"
        "Traders expect volumes to hold through the winter.\n"
    )

    result = clean_text(text)

    assert result.text == (
        "Grain exports through the Black Sea corridor rose for a third month running, officials said.\n\n"
        "Shipping insurers have cut premiums as attacks on the ports became less frequent.\n\n"
        "Traders expect volumes to hold through the winter."
    )


def test_related_marker_followed_by_prose_drops_only_the_marker() -> None:
    text = "First paragraph of the story.\n\nRelated\n\nThe minister said talks would resume on Monday."

    assert (
        clean_text(text).text
        == "First paragraph of the story.\n\nThe minister said talks would resume on Monday."
    )


@pytest.mark.parametrize(
    "line",
    [
        "Read more",
        "Read also: Ukraine Strikes Russian Airfield With ATACMS",
        "Related: Zelensky visits Washington",
        "Share this article",
        "Share on Facebook",
        "Facebook Twitter Email",
        "Advertisement",
        "Sign up for our newsletter to get the latest news from Ukraine.",
        "Subscribe to our daily briefing",
        "Follow us on Telegram",
        "© 2024 Kyiv Herald. All rights reserved.",
        "All rights reserved.",
        "Click here to read the full statement",
        "We use cookies to improve your experience. By continuing you accept our cookie policy.",
        "To suggest a correction or clarification, write to us here",
        "You can also highlight the text and press Ctrl + Enter",
        "Other Topics of Interest",
        "###",
        "Tags: Ukraine, Russia, NATO",
    ],
)
def test_furniture_patterns(line: str) -> None:
    assert is_furniture(line)
    text = f"The talks opened in Geneva on Monday with both delegations present.\n{line}\nThey ended late."

    result = clean_text(text)

    assert line not in result.text
    assert (
        result.text
        == "The talks opened in Geneva on Monday with both delegations present.\n\nThey ended late."
    )


@pytest.mark.parametrize(
    "line",
    [
        "The advertisement campaign cost the party $2 million, according to filings.",
        "Read the full statement, he told reporters, before judging the deal.",
        "Related to the talks, a second round of sanctions is expected next week.",
        "THE PRESIDENT: Thank you. Please, sit down.",
        "Q Mr. President —",
    ],
)
def test_article_sentences_that_mention_furniture_words_stay(line: str) -> None:
    text = f"Opening paragraph of the report.\n\n{line}\n\n{line}\n\nClosing paragraph of the report."

    assert line in clean_text(text).text


def test_headline_like_lines() -> None:
    assert is_headline_like("N Korea, Russia Sign Mutual Defence Deal as Kim Pledges Support on Ukraine")
    assert not is_headline_like("While the United States desires Ukraine to enter negotiations.")
    assert not is_headline_like("“It gives Russia a sense of impunity,” Volker said.”")
    assert not is_headline_like("THE PRESIDENT:")


def test_headline_repeated_within_document_is_dropped_but_a_lone_subheading_stays() -> None:
    text = (
        "Kyiv Metro Extends Hours During Blackouts\n"
        "The city said trains would run until midnight while power cuts continue.\n"
        "A new timetable\n"
        "Stations will double as shelters during air raid alerts, officials added.\n"
        "Kyiv Metro Extends Hours During Blackouts\n"
    )

    result = clean_text(text)

    assert "Kyiv Metro Extends Hours" not in result.text
    assert "A new timetable" in result.text


def test_layout_normalisation() -> None:
    text = (
        "  First\u00a0paragraph  has\tspaces.  \r\nSecond paragraph.\r\n\r\n\r\n   Third \u200bparagraph.\n"
    )

    assert clean_text(text).text == "First paragraph has spaces.\n\nSecond paragraph.\n\nThird paragraph."


def test_curly_quotes_and_dashes_kept_exactly() -> None:
    text = "“We will not give up,” she said — and the ministry’s statement agreed – in part."

    assert clean_text(text).text == text


def _article(body: str) -> str:
    return (
        f"{body}\n\n"
        "Kyiv Herald — independent journalism since 1995\n\n"
        "Support our reporting and become a member today\n"
    )


def test_repeated_lines_across_documents_of_one_source() -> None:
    first = _article(
        "The parliament approved the budget on Thursday after a long debate over defence spending."
    )
    second = _article(
        "Air defence units shot down most of the drones launched overnight, the air force said."
    )
    repeated = RepeatedLines()
    repeated.observe("herald", first)
    repeated.observe("herald", second)
    repeated.observe("other", "Kyiv Herald — independent journalism since 1995\n\nSome unrelated text here.")

    furniture = repeated.furniture_for("herald")

    assert furniture == frozenset(
        {"Kyiv Herald — independent journalism since 1995", "Support our reporting and become a member today"}
    )
    assert repeated.furniture_for("other") == frozenset()
    assert repeated.furniture_for("unknown") == frozenset()
    cleaned = clean_text(second, repeated=furniture)
    assert (
        cleaned.text
        == "Air defence units shot down most of the drones launched overnight, the air force said."
    )


def test_repeated_lines_ignore_a_document_seen_twice() -> None:
    text = POLITICO.read_text(encoding="utf-8")
    repeated = RepeatedLines()
    repeated.observe("kyivpost", text)
    repeated.observe("kyivpost", text)
    repeated.observe("kyivpost", text.replace("citing its sources", "citing unnamed sources"))

    assert repeated.furniture_for("kyivpost") == frozenset()


def test_real_corpus_texts_survive_cleaning_unchanged() -> None:
    lines = (FIXTURES / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]

    for record in records:
        result = clean_text(record["text"])
        # White House releases end with a "###" line: the only furniture in these texts. Sentences a crawler
        # glued together ("readout:Secretary") are parted: only whitespace may differ.
        assert result.removed in ([], ["###"])
        expected = record["text"].removesuffix("\n\n###")
        assert "".join(result.text.split()) == "".join(expected.split())


DOD_TAILS = (
    "Through PDA and USAI, DoD continues to work with Ukraine to meet its security assistance needs.To meet "
    "Ukraine's evolving battlefield requirements, the United States will continue to work with its allies.",
    "Secretary Austin spoke with Minister Reznikov today.Both committed to close coordination at NATO HQ.",
)
DOD_FOOTER = (
    "Choose which Defense.gov products you want delivered to your inbox.The Department of Defense provides the "
    "military forces needed to deter war and ensure our nation's security."
)


def test_paragraphs_a_crawler_ran_together_are_parted_and_their_footer_dropped() -> None:
    """Defense.gov releases (us_gov_ukraine) arrive as one line: sentences glued ("needs.To meet") and a site
    footer glued to the last one. Parted again, the footer repeats across the source and is dropped."""
    texts = [f"{body}{DOD_FOOTER}" for body in DOD_TAILS]
    repeated = RepeatedLines()
    for text in texts:
        repeated.observe("department_of_defense", text)
    cleaned = [clean_text(text, repeated=repeated.furniture_for("department_of_defense")) for text in texts]

    assert "Choose which" not in cleaned[0].text + cleaned[1].text and "deter war" not in cleaned[1].text
    assert cleaned[0].text.split("\n\n") == [
        "Through PDA and USAI, DoD continues to work with Ukraine to meet its security assistance needs.",
        "To meet Ukraine's evolving battlefield requirements, the United States will continue to work with its "
        "allies.",
    ]
    assert cleaned[1].text.endswith("close coordination at NATO HQ.")


@pytest.mark.parametrize(
    "text",
    ["the U.S.Army said", "at 5 p.m.The", "Dr.Smith spoke", "see defense.gov/News now", "at 17:30 – Press"],
)
def test_initials_titles_urls_and_times_are_not_parted(text: str) -> None:
    assert clean_text(text).text == text
