"""Token-aware chunks aligned to sentence boundaries that keep exact character offsets.

Invariant, checked by tests: chunk.text == document.text[chunk.char_start:chunk.char_end].
Chunks are measured in tiktoken tokens, and, when the embedder reports its own tokenizer, also in the
embedder's word pieces, so no chunk is silently truncated by the embedding model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import tiktoken

from compare.offline import ensure_tiktoken_files
from compare.types import Chunk

# Titles, months and initials that end with a period without ending a sentence.
_ABBREVIATIONS = frozenset(
    (
        "mr mrs ms dr prof sen rep gov gen lt col sgt capt cmdr adm maj st jr sr rev hon pres amb "
        "u.s u.k u.n e.u e.g i.e vs etc al no nos inc corp co ltd dept est approx fig vol pp "
        "jan feb mar apr jun jul aug sep sept oct nov dec"
    ).split()
)
_BOUNDARY = re.compile(r"""[.!?…]+["”’'\)\]]*(?=\s+["“‘'\(\[]?[A-Z0-9])""")
_PARAGRAPH = re.compile(r"\n+")

TokenCounter = Callable[[Sequence[str]], list[int]]


def _is_abbreviation(text: str, period_at: int) -> bool:
    start = period_at
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] == "."):
        start -= 1
    word = text[start:period_at].lower()
    if not word:
        return False
    return word in _ABBREVIATIONS or (len(word) == 1 and text[start].isupper())


def _line_sentence_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        if (
            match.group().startswith(".")
            and len(match.group()) == 1
            and _is_abbreviation(text, match.start())
        ):
            continue
        spans.append((cursor, match.end()))
        cursor = match.end()
        while cursor < end and text[cursor].isspace():
            cursor += 1
    if cursor < end:
        spans.append((cursor, end))
    return spans


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every sentence; lines are never joined, surrounding whitespace excluded."""
    spans: list[tuple[int, int]] = []
    line_start = 0
    for match in [*_PARAGRAPH.finditer(text), None]:
        line_end = match.start() if match else len(text)
        stripped_start, stripped_end = line_start, line_end
        while stripped_start < stripped_end and text[stripped_start].isspace():
            stripped_start += 1
        while stripped_end > stripped_start and text[stripped_end - 1].isspace():
            stripped_end -= 1
        if stripped_start < stripped_end:
            spans.extend(_line_sentence_spans(text, stripped_start, stripped_end))
        line_start = match.end() if match else len(text)
    return spans


@lru_cache(maxsize=4)
def get_encoding(name: str) -> tiktoken.Encoding:
    ensure_tiktoken_files()
    return tiktoken.get_encoding(name)


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    tokens: int
    model_tokens: int


class Chunker:
    """Packs sentences greedily into windows of at most `max_tokens`, repeating up to `overlap_tokens`."""

    def __init__(
        self,
        *,
        encoding: str = "cl100k_base",
        max_tokens: int = 180,
        overlap_tokens: int = 30,
        model_counter: TokenCounter | None = None,
        model_max_tokens: int | None = None,
    ) -> None:
        if overlap_tokens >= max_tokens:
            raise ValueError("overlap_tokens must be smaller than max_tokens")
        self.encoding = get_encoding(encoding)
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.model_counter = model_counter
        self.model_max_tokens = model_max_tokens or 10**9

    def chunk(self, doc_id: str, text: str) -> list[Chunk]:
        pieces = self._pieces(text)
        chunks: list[Chunk] = []
        first = 0
        while first < len(pieces):
            last = self._pack_end(pieces, first)
            span = pieces[first:last]
            start, end = span[0].start, span[-1].end
            chunks.append(
                Chunk(
                    doc_id=doc_id,
                    index=len(chunks),
                    char_start=start,
                    char_end=end,
                    text=text[start:end],
                    n_tokens=sum(piece.tokens for piece in span),
                )
            )
            if last >= len(pieces):
                break
            first = self._overlap_start(pieces, first, last)
        return chunks

    def _pack_end(self, pieces: list[_Piece], first: int) -> int:
        tokens = model_tokens = 0
        last = first
        while last < len(pieces):
            piece = pieces[last]
            if last > first and (
                tokens + piece.tokens > self.max_tokens
                or model_tokens + piece.model_tokens > self.model_max_tokens
            ):
                break
            tokens += piece.tokens
            model_tokens += piece.model_tokens
            last += 1
        return last

    def _overlap_start(self, pieces: list[_Piece], first: int, last: int) -> int:
        """Start of the next window: step back over whole sentences worth at most overlap_tokens."""
        start, budget = last, self.overlap_tokens
        while start - 1 > first and pieces[start - 1].tokens <= budget:
            budget -= pieces[start - 1].tokens
            start -= 1
        return start

    def _pieces(self, text: str) -> list[_Piece]:
        spans = sentence_spans(text)
        sentences = [text[start:end] for start, end in spans]
        # One call per sentence: encode_ordinary_batch starts a thread pool per call, which costs more than
        # it saves on the few dozen short sentences of an article.
        token_ids = [self.encoding.encode_ordinary(sentence) for sentence in sentences]
        model_counts = self.model_counter(sentences) if self.model_counter else [0] * len(sentences)
        pieces: list[_Piece] = []
        for (start, end), ids, model_count in zip(spans, token_ids, model_counts, strict=True):
            if len(ids) <= self.max_tokens and model_count <= self.model_max_tokens:
                pieces.append(_Piece(start, end, len(ids), model_count))
            else:
                pieces.extend(self._split_long(start, end, ids, model_count))
        return pieces

    def _split_long(self, start: int, end: int, ids: list[int], model_count: int) -> list[_Piece]:
        """A sentence longer than a whole chunk is cut into token windows (rare: tables, run-on lists)."""
        ratio = max(1.0, model_count / max(1, len(ids)))
        window = max(1, min(self.max_tokens, int(self.model_max_tokens / ratio * 0.9)))
        _, offsets = self.encoding.decode_with_offsets(ids)
        pieces: list[_Piece] = []
        for index in range(0, len(ids), window):
            piece_start = start + offsets[index]
            piece_end = start + offsets[index + window] if index + window < len(ids) else end
            count = len(ids[index : index + window])
            pieces.append(_Piece(piece_start, piece_end, count, int(count * ratio)))
        return pieces
