"""What the stance cross-encoder reads of a document: the lead sentence plus the sentences that share most
content words with the claim, in document order, within a word budget.

Training (`scripts/stance_data.py`) and inference (`compare/analysis/stance_model.py`) both call
`passage_spans`, so the passages a model was trained on and the ones it judges cannot drift apart.
`PASSAGE_SPEC` changes whenever the selection changes; a model trained on another spec is refused at load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compare.analysis.lexicon import CUE_WORDS, content_stems, words
from compare.chunking import sentence_spans

PASSAGE_SPEC = "lead1+overlap+refute-cue.words120.v2"
#: The spec of passages chosen with no refute bonus (the first training stage of the shipped model read these).
PASSAGE_SPEC_NO_BONUS = "lead1+overlap.words120.v1"
#: Sentences always kept from the start of the text (FNC-1 bodies, like news articles, state their line early).
LEAD_SENTENCES = 1
#: Words of passage read per pair; the tokenizer truncates the rest (claim + passage <= MAX_PAIR_TOKENS).
PASSAGE_WORDS = 120
#: A sentence with a refuting word ("hoax", "denied", "false") ranks as if it shared this many more claim
#: words: a text that disputes a claim often says so in words of its own ("the story turned out to be a hoax").
REFUTE_BONUS = 1.5


@dataclass(frozen=True)
class Passage:
    """Selected sentences of a text: `spans` index into that text, `text` is them joined by spaces."""

    spans: tuple[tuple[int, int], ...]
    text: str


def claim_terms(claim: str) -> frozenset[str]:
    return frozenset(content_stems(words(claim)))


def _rank(terms: frozenset[str], tokens: list[str], refute_bonus: float) -> float:
    shared = len(terms & frozenset(content_stems(tokens)))
    return shared + (refute_bonus if any(t in CUE_WORDS["refute"] for t in tokens) else 0.0)


def passage_spans(
    claim: str,
    text: str,
    spans: Sequence[tuple[int, int]] | None = None,
    budget: int = PASSAGE_WORDS,
    refute_bonus: float = REFUTE_BONUS,
) -> Passage:
    """The lead plus the sentences sharing most claim terms (ties: earlier first), kept while the word budget
    lasts, in document order. `spans` restricts the choice (e.g. to retrieved chunks); default: all sentences."""
    spans = list(spans) if spans is not None else sentence_spans(text)
    if not spans:
        return Passage((), "")
    terms = claim_terms(claim)
    sizes = [len(text[start:end].split()) for start, end in spans]
    overlap = [_rank(terms, words(text[start:end]), refute_bonus) for start, end in spans]
    lead = list(range(min(LEAD_SENTENCES, len(spans))))
    ranked = sorted(range(len(lead), len(spans)), key=lambda i: (-overlap[i], i))
    chosen: list[int] = []
    used = 0
    for index in [*lead, *ranked]:
        if chosen and used + sizes[index] > budget:
            continue
        chosen.append(index)
        used += sizes[index]
    kept = tuple(spans[i] for i in sorted(chosen))
    return Passage(kept, " ".join(text[start:end] for start, end in kept))
