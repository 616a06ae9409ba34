"""The quote gate: a proposed quote becomes (doc_id, char_start, char_end) in the stored text, or is dropped.

Whatever proposes a quote (an LLM, an extractive method, a user), its string is never shown as such. It is
located in one stored document and the quote's text is read back from that document, so
`quote.text == doc.text[quote.char_start:quote.char_end]` holds for every quote this module returns.

Stages, cheapest first:

1. exact: `doc.text.find`, the occurrence nearest `hint_start` when there are several -> `verified`;
2. normalised: the same search after folding typography in both strings (whitespace runs incl. NBSP and
   paragraph breaks -> one space; curly/straight quotes and primes -> ' and "; dashes, " - " and "--" -> -;
   … -> ...; zero-width characters and soft hyphens dropped). The words are verbatim, so -> `verified`, with
   the stored (curly, NBSP, ...) text. A proposal wrapped in quote marks that the text does not have is
   retried without them;
3. case-folded: as 2 but ignoring letter case -> `repaired` (same words, other case), similarity 1.0;
4. fuzzy: word-level seeding finds candidate regions, then a window snapped to word boundaries is tuned to
   maximise the Indel similarity 2*LCS/(len(a)+len(b)) (difflib's and rapidfuzz's `ratio`) on the folded
   strings; >= FUZZY_THRESHOLD -> `repaired` with the stored window, else `unverified`.

Proposals shorter than MIN_WORDS words or MIN_CHARS characters only pass stages 1-2: a short string is too
easy to match by chance. A match overlapping a `forbidden` span (page furniture, boilerplate) is rejected and
the next best occurrence is tried. An unverified quote has char_start == char_end == 0 and text == "".
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache

from compare.types import Document, Quote, QuoteStatus

FUZZY_THRESHOLD = 0.90
"""Lowest similarity (2*LCS/total length, after typography and case folding) for a `repaired` quote.

Measured on the six fixture articles (tests/test_quotes.py, test_threshold_separates_edits_from_fabrications):
- one typo: >= 0.96 even in 6-word sentences;
- one word dropped: >= 0.93 from 16 words up (12-15 words: 1 of 63 at 0.898);
- one word replaced by another: >= 0.91 from 16 words up (12-15 words: 3 of 63 at 0.87-0.90; under 10 words
  most fall below);
- invented but plausible sentences about the same story: <= 0.67; 1,757 sentences from articles on other
  stories: <= 0.72.
0.90 keeps a margin of ~0.18 over anything invented, so a repair never rests on a loose match; the price is
that a whole-word substitution in a short sentence is dropped rather than repaired, which is the safe side."""

MIN_WORDS = 3
MIN_CHARS = 12
MAX_FUZZY_CHARS = 2000
"""Longer proposals are not quotes; they skip the fuzzy stage (exact and normalised matches still count)."""

_MAX_POSTINGS = 64  # words more frequent than this in a document are too common to seed a candidate
_MAX_CANDIDATES = 4  # candidate regions per proposal
_REFINE_MARGIN = 0.2  # candidate regions scoring this far below the best (or the threshold) are not refined
_DASHES = frozenset("-‐‑‒–—―")
_QUOTES = str.maketrans({c: "'" for c in "‘’‚‛′"} | {c: '"' for c in "“”„‟″"})
_TYPOGRAPHY = re.compile(
    r"\s*(?:[‐‑‒–—―]|(?<=\s)-{1,3}(?=\s)|-{2,3})\s*"  # dashes, " - ", "--", with the spaces around them
    r"|(?: (?=\s)|[^\S ])\s*"  # whitespace runs other than one plain space; \s includes NBSP, newlines
    r"|[‘’‚‛′“”„‟″…\u00ad\u200b\u200c\u200d\u2060\ufeff]"
)
_WORD = re.compile(r"\w+")


@dataclass
class QuoteStats:
    """What the gate did with a batch. verified + repaired + unverified == proposed;
    unknown_document counts the unverified proposals whose doc_id is not in the store."""

    proposed: int = 0
    verified: int = 0
    repaired: int = 0
    unverified: int = 0
    unknown_document: int = 0

    def add(self, status: QuoteStatus) -> None:
        self.proposed += 1
        setattr(self, status, getattr(self, status) + 1)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# -- normalisation -------------------------------------------------------------------------------------


def _typographic_replacement(run: str) -> str:
    if run.strip()[:1] in _DASHES:
        return "-"
    if run.isspace():
        return " "
    if run == "…":
        return "..."
    return run.translate(_QUOTES) if run in "‘’‚‛′“”„‟″" else ""


def normalise(text: str) -> str:
    """Typography-folded copy of `text` (see the module docstring); letter case is kept."""
    return _TYPOGRAPHY.sub(lambda m: _typographic_replacement(m.group()), text).strip()


class OffsetMap:
    """Normalised text and the way back: normalised positions -> offsets in the original text.

    Stored as segments (normalised start, original start, original end, copied?): a copied segment maps
    character by character, a replaced one (a folded whitespace run, a dash, an ellipsis) maps every one of
    its characters to the whole original run. A few hundred segments for a 30k-character article.
    """

    def __init__(self, text: str) -> None:
        parts: list[str] = []
        self._norm_starts: list[int] = []
        self._segments: list[tuple[int, int, bool]] = []
        length = cursor = 0
        for match in _TYPOGRAPHY.finditer(text):
            begin, stop = match.span()
            length = self._add(parts, length, text[cursor:begin], (cursor, begin, True))
            length = self._add(parts, length, _typographic_replacement(match.group()), (begin, stop, False))
            cursor = stop
        self._add(parts, length, text[cursor:], (cursor, len(text), True))
        self.normalised = "".join(parts)

    def _add(self, parts: list[str], length: int, piece: str, segment: tuple[int, int, bool]) -> int:
        if piece:  # empty pieces (dropped zero-width characters) need no way back
            parts.append(piece)
            self._norm_starts.append(length)
            self._segments.append(segment)
        return length + len(piece)

    def start(self, position: int) -> int:
        """Original offset where the normalised character at `position` begins."""
        k = bisect_right(self._norm_starts, position) - 1
        begin, _, copied = self._segments[k]
        return begin + position - self._norm_starts[k] if copied else begin

    def end(self, position: int) -> int:
        """Original offset just after the normalised character at `position`."""
        k = bisect_right(self._norm_starts, position) - 1
        begin, stop, copied = self._segments[k]
        return begin + position - self._norm_starts[k] + 1 if copied else stop


def fold_case(text: str) -> str:
    """Lower-case `text` without changing its length (characters whose lower form is longer are kept)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


# -- similarity ----------------------------------------------------------------------------------------


class _Pattern:
    """A proposal prepared for bit-parallel LCS (Hyyrö 2004): one big-int step per character of a window.

    Scoring every prefix of a text costs one pass, so all window ends for one start (and, on the reversed
    strings, all window starts for one end) are scored together.
    """

    def __init__(self, text: str) -> None:
        self.length = len(text)
        self.full = (1 << len(text)) - 1
        masks: dict[str, int] = defaultdict(int)
        for i, char in enumerate(text):
            masks[char] |= 1 << i
        self.masks = dict(masks)

    def prefix_similarities(self, text: str, lengths: Iterable[int]) -> dict[int, float]:
        """Indel similarity 2*LCS/(len(a)+len(b)) (difflib's and rapidfuzz's `ratio`) of text[:n], per n."""
        wanted = set(lengths)
        scores = {0: 0.0} if 0 in wanted else {}
        v, full, masks, m = self.full, self.full, self.masks, self.length
        for n, char in enumerate(text[: max(wanted, default=0)], 1):
            u = v & masks.get(char, 0)
            v = ((v + u) | (v - u)) & full
            if n in wanted:
                scores[n] = 2 * (m - v.bit_count()) / (m + n)
        return scores

    def similarity(self, text: str) -> float:
        return self.prefix_similarities(text, [len(text)])[len(text)] if text else 0.0


# -- per-document index --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    """A candidate match in normalised coordinates."""

    start: int
    end: int
    similarity: float


class QuoteIndex:
    """Everything the normalised and fuzzy stages need about one document's text, built once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._offsets = OffsetMap(text)
        self.normalised = self._offsets.normalised
        self.folded = fold_case(self.normalised)
        words = list(_WORD.finditer(self.folded))
        self.word_starts = [w.start() for w in words]
        self.word_ends = [w.end() for w in words]
        self.postings: dict[str, list[int]] = defaultdict(list)
        for position, word in enumerate(words):
            self.postings[word.group()].append(position)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) of normalised [start, end), trimmed of whitespace at both edges."""
        first, last = self._offsets.start(start), self._offsets.end(end - 1)
        while first < last and self.text[first].isspace():
            first += 1
        while last > first and self.text[last - 1].isspace():
            last -= 1
        return first, last

    def occurrences(self, needle: str, *, folded: bool) -> Iterator[tuple[int, int]]:
        """Original spans of every occurrence of a normalised (or normalised and folded) needle."""
        haystack = self.folded if folded else self.normalised
        at = haystack.find(needle)
        while at >= 0 and needle:
            yield self.original_span(at, at + len(needle))
            at = haystack.find(needle, at + 1)

    def word_at(self, original_offset: int) -> int:
        """Index of the first word starting at or after an original offset (for hints)."""
        low, high = 0, len(self.word_starts)
        while low < high:
            mid = (low + high) // 2
            if self._offsets.start(self.word_starts[mid]) < original_offset:
                low = mid + 1
            else:
                high = mid
        return low


@lru_cache(maxsize=64)
def quote_index(text: str) -> QuoteIndex:
    """The index of a document text, cached: the same text is indexed once however many quotes it gets."""
    return QuoteIndex(text)


# -- choosing among occurrences ------------------------------------------------------------------------


def _overlaps(span: tuple[int, int], forbidden: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < stop and start < span[1] for start, stop in forbidden)


def _pick(
    spans: Iterable[tuple[int, int]], hint_start: int | None, forbidden: Sequence[tuple[int, int]]
) -> tuple[int, int] | None:
    """The allowed span nearest the hint (the first one without a hint)."""
    allowed = [span for span in spans if span[0] < span[1] and not _overlaps(span, forbidden)]
    if not allowed:
        return None
    if hint_start is None:
        return allowed[0]
    return min(allowed, key=lambda span: abs(span[0] - hint_start))


def _exact_occurrences(text: str, needle: str) -> Iterator[tuple[int, int]]:
    at = text.find(needle)
    while at >= 0:
        yield at, at + len(needle)
        at = text.find(needle, at + 1)


def _unwrapped(normalised: str) -> list[str]:
    """The proposal, and the proposal without quote marks around it (models add them)."""
    inner = normalised.strip("\"' ")
    return [normalised, inner] if inner and inner != normalised else [normalised]


def _is_short(proposal: str) -> bool:
    return len(proposal) < MIN_CHARS or len(_WORD.findall(proposal)) < MIN_WORDS


# -- fuzzy stage ---------------------------------------------------------------------------------------


def _seed_windows(index: QuoteIndex, words: list[str], hint_word: int | None) -> list[tuple[int, int]]:
    """Candidate word windows: diagonals (doc word - proposal word) on which many shared words agree."""
    n = len(words)
    pairs: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i, word in enumerate(words):
        positions = index.postings.get(word, ())
        if len(positions) <= _MAX_POSTINGS:
            for j in positions:
                pairs[j - i].append((i, j))
    band = 2 + n // 20  # an inserted or dropped word moves the diagonal by one
    busiest = heapq.nlargest(4 * _MAX_CANDIDATES, pairs, key=lambda d: len(pairs[d]))
    score = {d: sum(len(pairs.get(d + k, ())) for k in range(-band, band + 1)) for d in busiest}
    windows: list[tuple[int, int]] = []
    chosen: list[int] = []
    for diagonal in sorted(score, key=lambda d: (-score[d], d)):
        if len(chosen) < _MAX_CANDIDATES and all(abs(diagonal - other) > n for other in chosen):
            chosen.append(diagonal)
            windows.append(_window_from_pairs(pairs, diagonal, band, n))
    if hint_word is not None:
        windows.append((hint_word, hint_word + n))
    total = len(index.word_starts)
    return [(max(0, s), min(total, e)) for s, e in windows if min(total, e) > max(0, s)]


def _window_from_pairs(
    pairs: dict[int, list[tuple[int, int]]], diagonal: int, band: int, n: int
) -> tuple[int, int]:
    """Word window covering the matched words on a band, extended by the unmatched words at either end."""
    near = [pair for d in range(diagonal - band, diagonal + band + 1) for pair in pairs.get(d, ())]
    first_i, first_j = min(near)
    last_i, last_j = max(near)
    return first_j - first_i, last_j + (n - last_i)


class _WindowScorer:
    """Finds the best window of one document for one proposal, around a candidate word window."""

    def __init__(self, index: QuoteIndex, folded_proposal: str) -> None:
        self.index = index
        self.forward = _Pattern(folded_proposal)
        self.backward = _Pattern(folded_proposal[::-1])

    def _best_end(self, first_word: int, ends: range, current: int) -> tuple[int, float]:
        start = self.index.word_starts[first_word]
        lengths = {e: self.index.word_ends[e - 1] - start for e in ends}
        text = self.index.folded[start : start + max(lengths.values())]
        scores = self.forward.prefix_similarities(text, lengths.values())
        best = max(ends, key=lambda e: (scores[lengths[e]], -abs(e - current)))
        return best, scores[lengths[best]]

    def _best_start(self, end_word: int, starts: range, current: int) -> int:
        end = self.index.word_ends[end_word - 1]
        lengths = {s: end - self.index.word_starts[s] for s in starts}
        text = self.index.folded[end - max(lengths.values()) : end][::-1]
        scores = self.backward.prefix_similarities(text, lengths.values())
        return max(starts, key=lambda s: (scores[lengths[s]], -abs(s - current)))

    def refine(self, first_word: int, end_word: int) -> tuple[int, int]:
        """Coordinate ascent on the window's first and last word, a few words either way."""
        total = len(self.index.word_starts)
        radius = 2 + (end_word - first_word) // 15
        for _ in range(3):
            before = (first_word, end_word)
            starts = range(max(0, first_word - radius), min(end_word, first_word + radius + 1))
            first_word = self._best_start(end_word, starts, first_word)
            ends = range(max(first_word + 1, end_word - radius), min(total, end_word + radius) + 1)
            end_word, _ = self._best_end(first_word, ends, end_word)
            if (first_word, end_word) == before:
                break
        return first_word, end_word

    def initial_score(self, first_word: int, end_word: int) -> float:
        return self._best_end(first_word, range(end_word, end_word + 1), end_word)[1]

    def with_punctuation(self, first_word: int, end_word: int) -> _Span:
        """The word window, widened over adjacent punctuation (quote marks, full stop) if that fits better."""
        folded = self.index.folded
        start, end = self.index.word_starts[first_word], self.index.word_ends[end_word - 1]
        wider_start, wider_end = start, end
        while wider_start > 0 and _is_punctuation(folded[wider_start - 1]):
            wider_start -= 1
        while wider_end < len(folded) and _is_punctuation(folded[wider_end]):
            wider_end += 1
        spans = [(start, end), (wider_start, end), (start, wider_end), (wider_start, wider_end)]
        scored = [_Span(s, e, self.forward.similarity(folded[s:e])) for s, e in spans]
        return max(scored, key=lambda span: span.similarity)  # the first (narrowest) of equals


def _is_punctuation(char: str) -> bool:
    return not char.isspace() and not char.isalnum()


def _fuzzy_spans(index: QuoteIndex, folded_proposal: str, hint_start: int | None) -> list[_Span]:
    """Best window per candidate region, best first."""
    words = _WORD.findall(folded_proposal)
    hint_word = index.word_at(hint_start) if hint_start is not None else None
    scorer = _WindowScorer(index, folded_proposal)
    windows = _seed_windows(index, words, hint_word)
    if not windows:
        return []
    initial = [scorer.initial_score(*window) for window in windows]
    # Refining moves a window's ends by a few words; it cannot lift a region this far below the best one.
    floor = min(max(initial), FUZZY_THRESHOLD) - _REFINE_MARGIN
    promising = [window for window, score in zip(windows, initial) if score >= floor]
    spans = {scorer.with_punctuation(*scorer.refine(*window)) for window in promising}

    def rank(span: _Span) -> tuple[float, int, int]:
        distance = (
            abs(index.original_span(span.start, span.end)[0] - hint_start) if hint_start is not None else 0
        )
        return -span.similarity, distance, span.start

    return sorted(spans, key=rank)


# -- the gate ------------------------------------------------------------------------------------------


def _quote(
    doc: Document, span: tuple[int, int], status: QuoteStatus, proposed: str, similarity: float | None = None
) -> Quote:
    text = doc.text[span[0] : span[1]]
    return Quote(
        doc_id=doc.id,
        source=doc.source,
        date=doc.date,
        char_start=span[0],
        char_end=span[1],
        text=text,
        status=status,
        proposed=proposed if proposed != text else None,
        similarity=similarity,
    )


def _unverified(doc: Document, proposed: str, similarity: float | None = None) -> Quote:
    """A dropped proposal: no span, no text, the proposal kept for the record (even when it is empty)."""
    return _quote(doc, (0, 0), "unverified", proposed, similarity).model_copy(update={"proposed": proposed})


def _normalised_match(
    index: QuoteIndex,
    needle: str,
    *,
    folded: bool,
    hint_start: int | None,
    forbidden: Sequence[tuple[int, int]],
) -> tuple[int, int] | None:
    for candidate in _unwrapped(needle):
        span = _pick(index.occurrences(candidate, folded=folded), hint_start, forbidden)
        if span:
            return span
    return None


def _fuzzy_match(
    index: QuoteIndex, folded: str, hint_start: int | None, forbidden: Sequence[tuple[int, int]]
) -> tuple[tuple[int, int] | None, float | None]:
    """(original span, similarity) of the best allowed window, or (None, best similarity seen)."""
    spans = _fuzzy_spans(index, folded, hint_start)
    if not spans:
        return None, None
    for span in spans:
        if span.similarity < FUZZY_THRESHOLD:
            break
        original = index.original_span(span.start, span.end)
        if not _overlaps(original, forbidden):
            return original, span.similarity
    return None, spans[0].similarity


def verify_quote(
    proposed: str,
    doc: Document,
    *,
    hint_start: int | None = None,
    forbidden: Sequence[tuple[int, int]] = (),
) -> Quote:
    """Locate `proposed` in `doc.text`; the returned quote's text is always read from the document.

    `hint_start` (an offset into doc.text) picks among several occurrences; `forbidden` spans (offsets into
    doc.text) may not overlap a returned quote.
    """
    clean = proposed.strip()
    if not clean:
        return _unverified(doc, proposed)
    span = _pick(_exact_occurrences(doc.text, clean), hint_start, forbidden)
    if span:
        return _quote(doc, span, "verified", proposed)
    index = quote_index(doc.text)
    needle = normalise(clean)
    span = _normalised_match(index, needle, folded=False, hint_start=hint_start, forbidden=forbidden)
    if span:
        return _quote(doc, span, "verified", proposed)
    if _is_short(clean):
        return _unverified(doc, proposed)
    folded = fold_case(needle)
    span = _normalised_match(index, folded, folded=True, hint_start=hint_start, forbidden=forbidden)
    if span:
        return _quote(doc, span, "repaired", proposed, 1.0)
    if len(folded) > MAX_FUZZY_CHARS:
        return _unverified(doc, proposed)
    span, similarity = _fuzzy_match(index, folded, hint_start, forbidden)
    if span:
        return _quote(doc, span, "repaired", proposed, similarity)
    return _unverified(doc, proposed, similarity)


def verify_quotes(
    proposals: Iterable[tuple[str, str]], docs: Mapping[str, Document]
) -> tuple[list[Quote], QuoteStats]:
    """Verify (doc_id, proposed) pairs; one quote per proposal, in order, unverified ones included."""
    quotes: list[Quote] = []
    stats = QuoteStats()
    for doc_id, proposed in proposals:
        doc = docs.get(doc_id)
        if doc is None:
            quote = Quote(
                doc_id=doc_id,
                source="",
                char_start=0,
                char_end=0,
                text="",
                status="unverified",
                proposed=proposed,
            )
            stats.unknown_document += 1
        else:
            quote = verify_quote(proposed, doc)
        stats.add(quote.status)
        quotes.append(quote)
    return quotes, stats
