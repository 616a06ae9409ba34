from __future__ import annotations

import json
from itertools import pairwise

from compare.chunking import Chunker, get_encoding, sentence_spans
from tests.conftest import FIXTURES

SEED = (
    "Many U.S. officials now acknowledge that Ukraine could be pushed into talks within months, the "
    "Washington Post (WP) reported on Nov. 26. In mid-November, Biden authorized Ukraine to use the ATACMS "
    "to strike deeper inside Russia. “It gives Russia a sense of impunity,” Volker told the WP.\n\n"
    "Secretary of State Antony Blinken has urged NATO allies to increase support for Ukraine."
)


def _articles() -> list[dict[str, str]]:
    lines = (FIXTURES / "corpus" / "basil_triplet.jsonl").read_text().splitlines()
    lines += (FIXTURES / "corpus" / "us_gov_small.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_sentences_respect_abbreviations_dates_and_quotes() -> None:
    sentences = [SEED[start:end] for start, end in sentence_spans(SEED)]
    assert sentences == [
        "Many U.S. officials now acknowledge that Ukraine could be pushed into talks within months, the "
        "Washington Post (WP) reported on Nov. 26.",
        "In mid-November, Biden authorized Ukraine to use the ATACMS to strike deeper inside Russia.",
        "“It gives Russia a sense of impunity,” Volker told the WP.",
        "Secretary of State Antony Blinken has urged NATO allies to increase support for Ukraine.",
    ]


def test_lines_without_punctuation_are_their_own_sentences() -> None:
    text = "A Headline Without A Period\nThe body starts here. It goes on."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "A Headline Without A Period",
        "The body starts here.",
        "It goes on.",
    ]


def test_chunks_slice_the_text_exactly_and_fit_the_budget() -> None:
    chunker = Chunker(max_tokens=120, overlap_tokens=20)
    encoding = get_encoding("cl100k_base")
    for article in _articles():
        chunks = chunker.chunk(article["id"], article["text"])
        assert chunks, article["id"]
        for chunk in chunks:
            assert chunk.text == article["text"][chunk.char_start : chunk.char_end]
            assert len(encoding.encode_ordinary(chunk.text)) <= 120 + 2  # joins may add a token
            assert chunk.text == chunk.text.strip()
        starts = [c.char_start for c in chunks]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        # every sentence of the article is in some chunk: nothing is dropped
        covered = set()
        for chunk in chunks:
            covered.update(range(chunk.char_start, chunk.char_end))
        for start, end in sentence_spans(article["text"]):
            assert start in covered and end - 1 in covered


def test_consecutive_chunks_overlap_by_whole_sentences() -> None:
    article = _articles()[0]
    chunks = Chunker(max_tokens=100, overlap_tokens=40).chunk(article["id"], article["text"])
    assert len(chunks) > 2
    overlapping = sum(1 for a, b in pairwise(chunks) if b.char_start < a.char_end)
    assert overlapping >= len(chunks) // 2
    sentence_starts = {start for start, _ in sentence_spans(article["text"])}
    assert all(chunk.char_start in sentence_starts for chunk in chunks)


def test_model_token_limit_is_respected() -> None:
    """A model counter that sees more tokens than tiktoken forces smaller chunks."""

    def triple(texts: object) -> list[int]:
        return [3 * len(str(t).split()) for t in texts]  # type: ignore[attr-defined]

    article = _articles()[1]
    chunks = Chunker(max_tokens=180, overlap_tokens=0, model_counter=triple, model_max_tokens=120).chunk(
        "x", article["text"]
    )
    assert all(sum(triple([c.text])) <= 120 + 30 for c in chunks)


def test_a_sentence_longer_than_a_chunk_is_split_with_exact_offsets() -> None:
    text = "Intro sentence here. " + ", ".join(f"item number {i}" for i in range(400)) + ". Final words."
    chunks = Chunker(max_tokens=64, overlap_tokens=8).chunk("long", text)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.char_start : chunk.char_end]
        assert chunk.n_tokens <= 64
    assert chunks[-1].text.endswith("Final words.")


def test_empty_text_gives_no_chunks() -> None:
    assert Chunker().chunk("empty", "") == []
