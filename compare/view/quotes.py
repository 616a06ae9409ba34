"""Quotes as they are shown: stored text, status, date, the paragraph around the span, the document line."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from compare.types import Comparison, Document, Quote, SourceView
from compare.view.model import Context, DocumentLine, QuoteView
from compare.view.words import clip, human_date

KEY_QUOTES = 4
QUOTE_PREVIEW_CHARS = 220
CONTEXT_CHARS = 600
STATUS_TEXT = {"verified": "✓ verified", "repaired": "≈ repaired", "unverified": "✗ unverified"}


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s) with a host, else None (no javascript:, data: or relative links)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def quote_context(document_text: str, start: int, end: int, *, max_chars: int = CONTEXT_CHARS) -> Context:
    """The paragraph around text[start:end], at most `max_chars` either side (cut at a word boundary)."""
    if not 0 <= start <= end <= len(document_text):
        raise ValueError(f"span {start}:{end} is outside a text of {len(document_text)} characters")
    para_start = document_text.rfind("\n", 0, start) + 1
    para_end = document_text.find("\n", end)
    para_end = len(document_text) if para_end < 0 else para_end
    before, cut_before = _clip_left(document_text[para_start:start], max_chars)
    after, cut_after = _clip_right(document_text[end:para_end], max_chars)
    return Context(before, document_text[start:end], after, cut_before, cut_after)


def _clip_left(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    tail = text[-limit:]
    space = tail.find(" ")
    return (tail[space + 1 :] if 0 <= space < limit // 2 else tail), True


def _clip_right(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head), True


def quote_doc_ids(comparison: Comparison) -> list[str]:
    """Ids of the documents the comparison quotes: what to load to show quotes in context."""
    return sorted({quote.doc_id for quote in comparison.presented_quotes()})


def unique_quotes(quotes: Iterable[Quote]) -> list[Quote]:
    seen: set[tuple[str, int, int]] = set()
    kept: list[Quote] = []
    for quote in quotes:
        key = (quote.doc_id, quote.char_start, quote.char_end)
        if key not in seen:
            seen.add(key)
            kept.append(quote)
    return kept


def shown(quotes: Iterable[Quote]) -> list[Quote]:
    """The quotes a reader may see: never an unverified one."""
    return [q for q in quotes if q.status != "unverified"]


def key_quotes(view: SourceView, limit: int = KEY_QUOTES) -> list[Quote]:
    """The quotes to show under a source: its summary quotes, then its claims' quotes, no repeats."""
    quotes = [*view.summary_quotes, *(q for claim in view.claims for q in claim.quotes)]
    return unique_quotes(shown(quotes))[:limit]


def quote_counts(comparison: Comparison, source: str) -> dict[str, int]:
    """Distinct quoted spans of one source, per status."""
    counts = {"verified": 0, "repaired": 0, "unverified": 0}
    for quote in unique_quotes(q for q in comparison.presented_quotes() if q.source == source):
        counts[quote.status] += 1
    return counts


class QuoteMaker:
    """Quote -> QuoteView, with the paragraph and document line when the documents are known."""

    def __init__(self, documents: Mapping[str, Document] | None, names: Mapping[str, str]) -> None:
        self.documents = documents
        self.names = names

    def __call__(self, quote: Quote) -> QuoteView:
        document = None if self.documents is None else self.documents.get(quote.doc_id)
        return QuoteView(
            text=quote.text,
            preview=clip(quote.text, QUOTE_PREVIEW_CHARS),
            status=quote.status,
            status_text=STATUS_TEXT.get(quote.status, quote.status),
            date_text=human_date(quote.date) if quote.date else "",
            source=quote.source,
            source_name=self.name(quote.source),
            doc_id=quote.doc_id,
            char_start=quote.char_start,
            char_end=quote.char_end,
            context=_context(document, quote),
            document=self._line(document, quote),
        )

    def many(self, quotes: Iterable[Quote]) -> list[QuoteView]:
        return [self(q) for q in shown(quotes)]

    def name(self, source: str) -> str:
        return self.names.get(source, source)

    def _line(self, document: Document | None, quote: Quote) -> DocumentLine | None:
        if document is None:
            return None if self.documents is None else DocumentLine(quote.doc_id, missing=True)
        return DocumentLine(
            doc_id=document.id,
            title=document.title or document.id,
            date_text=human_date(document.date),
            source_name=self.name(document.source),
            url=safe_url(document.url),
        )


def _context(document: Document | None, quote: Quote) -> Context | None:
    if document is None or not 0 <= quote.char_start <= quote.char_end <= len(document.text):
        return None
    return quote_context(document.text, quote.char_start, quote.char_end)
